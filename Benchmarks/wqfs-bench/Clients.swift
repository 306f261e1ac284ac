// The client side of parts 2-4: the same code drives wqfs, the C floor and the
// pipe; only the file descriptors differ. Plain read(2)/write(2) on pthreads.
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Where one test writes and reads. `writers` has one descriptor except for the
/// pipe fan-out, which writes each pipe.
struct Endpoints {
    var writers: [Int32]
    var readers: [Int32]

    func close() {
        for fd in writers + readers { _ = Glibc.close(fd) }
    }
}

final class SampleBuffer: @unchecked Sendable {
    let starts: UnsafeMutablePointer<UInt64>
    let ends: UnsafeMutablePointer<UInt64>
    let count: Int
    var readerTIDs: [pid_t]

    init(_ count: Int, readers: Int = 1) {
        self.count = count
        starts = .allocate(capacity: count)
        ends = .allocate(capacity: count)
        starts.initialize(repeating: 0, count: count)
        ends.initialize(repeating: 0, count: count)
        readerTIDs = Array(repeating: 0, count: readers)
    }

    deinit {
        starts.deallocate()
        ends.deallocate()
    }

    var samples: [UInt64] { (0..<count).map { ends[$0] &- starts[$0] } }
}

final class StreamState: @unchecked Sendable {
    let readRecords = Progress()
    let total = Atomic<Int>(Int.max)
    var end: UInt64 = 0
    var bytes = 0
}

final class FanoutState: @unchecked Sendable {
    let remaining = Atomic<Int>(0)
    let tids: UnsafeMutablePointer<pid_t>
    let readers: Int
    var lastReadEnd: UInt64 = 0

    init(readers: Int) {
        self.readers = readers
        tids = .allocate(capacity: readers)
        tids.initialize(repeating: 0, count: readers)
    }

    deinit { tids.deallocate() }
}

enum Clients {
    static let readSize = 65536

    /// Ping-pong: the writer waits until the reader is asleep in read(), stamps the
    /// time and writes one record; the reader stamps the time read() returns, and
    /// tells the writer. Returns one sample (ns) per round and how many rounds
    /// could not confirm the reader was blocked first.
    static func latency(_ endpoints: Endpoints, record: [UInt8], rounds: Int, pause: UInt32 = 0) -> (samples: [UInt64], unverified: Int) {
        let buffer = SampleBuffer(rounds)
        let ready = Semaphore()
        let done = Semaphore()
        let readerFD = endpoints.readers[0]
        let expected = record.count
        let reader = JoinableThread {
            buffer.readerTIDs[0] = currentTID()
            ready.post()
            let data = UnsafeMutableRawPointer.allocate(byteCount: readSize, alignment: 16)
            defer { data.deallocate() }
            for round in 0..<rounds {
                var n: Int
                repeat { n = read(readerFD, data, readSize) } while n < 0 && errno == EINTR
                buffer.ends[round] = nanotime()
                if n != expected { fail("latency: read gave \(n) bytes, expected \(expected) (\(n < 0 ? String(cString: strerror(errno)) : ""))") }
                done.post()
            }
        }
        ready.wait()
        let tid = buffer.readerTIDs[0]
        var unverified = 0
        record.withUnsafeBytes { bytes in
            for round in 0..<rounds {
                if pause > 0 { usleep(pause) }
                if !waitUntilBlocked(tid) { unverified += 1 }
                buffer.starts[round] = nanotime()
                writeAll(endpoints.writers[0], bytes)
                done.wait()
            }
        }
        reader.join()
        return (buffer.samples, unverified)
    }

    /// Batched throughput: the writer writes `batch` (holding `recordsPerBatch`
    /// records) again and again for `duration` seconds, never more than `window`
    /// records ahead of the reader (so a wqfs queue of `window` records never drops);
    /// the reader reads with 64 KiB buffers and counts `readUnit` bytes per record.
    /// Returns records per second, first write to last read.
    static func stream(_ endpoints: Endpoints, batch: [UInt8], recordsPerBatch: Int, readUnit: Int,
                       window: Int, duration: Double) -> Double {
        precondition(recordsPerBatch <= window)
        let state = StreamState()
        let readerFD = endpoints.readers[0]
        let reader = JoinableThread {
            let data = UnsafeMutableRawPointer.allocate(byteCount: readSize, alignment: 16)
            defer { data.deallocate() }
            var bytes = 0
            while true {
                let n = read(readerFD, data, readSize)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { fail("stream: read gave \(n) (\(n < 0 ? String(cString: strerror(errno)) : "end of file"))") }
                bytes += n
                let records = bytes / readUnit
                state.readRecords.set(records)
                if records >= state.total.load(ordering: .acquiring) {
                    state.end = nanotime()
                    state.bytes = bytes
                    break
                }
            }
        }
        let start = nanotime()
        let deadline = start + UInt64(duration * 1e9)
        var written = 0
        batch.withUnsafeBytes { bytes in
            while true {
                state.readRecords.wait(atLeast: written + recordsPerBatch - window)
                let last = nanotime() >= deadline
                if last { state.total.store(written + recordsPerBatch, ordering: .releasing) }
                writeAll(endpoints.writers[0], bytes)
                written += recordsPerBatch
                if last { break }
            }
        }
        reader.join()
        if state.bytes != written * readUnit {
            fail("stream: read \(state.bytes) bytes for \(written) records of \(readUnit) bytes (records lost or merged)")
        }
        return Double(written) / seconds(start, state.end)
    }

    /// Fan-out: one reader thread per queue, each asleep in read(); one post (or,
    /// for pipes, one write per pipe) and the time until every reader has its copy.
    static func fanout(_ endpoints: Endpoints, record: [UInt8], rounds: Int) -> (samples: [UInt64], unverified: Int) {
        let count = endpoints.readers.count
        let state = FanoutState(readers: count)
        let buffer = SampleBuffer(rounds)
        let ready = Semaphore()
        let done = Semaphore()
        let expected = record.count
        var threads = [JoinableThread]()
        for index in 0..<count {
            let fd = endpoints.readers[index]
            threads.append(JoinableThread {
                state.tids[index] = currentTID()
                ready.post()
                let data = UnsafeMutableRawPointer.allocate(byteCount: readSize, alignment: 16)
                defer { data.deallocate() }
                for round in 0..<rounds {
                    var n: Int
                    repeat { n = read(fd, data, readSize) } while n < 0 && errno == EINTR
                    let now = nanotime()
                    if n != expected { fail("fan-out: reader \(index) read \(n) bytes, expected \(expected)") }
                    if state.remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                        buffer.ends[round] = now
                        done.post()
                    }
                }
            })
        }
        for _ in 0..<count { ready.wait() }
        var unverified = 0
        record.withUnsafeBytes { bytes in
            for round in 0..<rounds {
                for index in 0..<count where !waitUntilBlocked(state.tids[index]) { unverified += 1 }
                state.remaining.store(count, ordering: .releasing)
                buffer.starts[round] = nanotime()
                for fd in endpoints.writers { writeAll(fd, bytes) }
                done.wait()
            }
        }
        for thread in threads { thread.join() }
        return (buffer.samples, unverified)
    }
}

// MARK: statistics

func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    let mid = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

func percentile(_ values: [UInt64], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    let index = min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)
    return Double(sorted[max(0, index)])
}
