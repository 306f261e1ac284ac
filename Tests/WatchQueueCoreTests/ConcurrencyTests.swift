import Testing
@testable import WatchQueueCore
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Rule 6: the engine is called from many threads at once. Several posters, several
/// consumers, fan-out to several small queues with different filters, so that
/// records are filtered and lost; every queue's stream must account for every record.
@Suite("6. Concurrency")
struct ConcurrencyTests {
    static let posters = 4
    static let recordsPerPoster = 3_000

    /// One queue of the run: its size, filter, the watch ID it gives each source
    /// (nil: not watched), and whether a consumer reads it while posters run.
    struct QueueSpec: Sendable {
        let name: String
        let size: Int
        let filter: String
        let watchIDs: [UInt8?]
        let readConcurrently: Bool
        let readBuffer: Int
        /// Whether a record with this subtype, delivered with this watch ID, passes the filter.
        let admits: @Sendable (_ subtype: UInt8, _ watchID: UInt8) -> Bool
    }

    static let specs: [QueueSpec] = [
        QueueSpec(name: "all", size: 4, filter: "none", watchIDs: [10, 11, 12, 13],
                  readConcurrently: true, readBuffer: 24, admits: { _, _ in true }),
        QueueSpec(name: "subtypes", size: 6, filter: "type=user subtypes=0,1", watchIDs: [20, 21, 22, 23],
                  readConcurrently: true, readBuffer: 100, admits: { subtype, _ in subtype <= 1 }),
        QueueSpec(name: "watches", size: 8, filter: "type=user info=0x1600/0xff00\ntype=user subtypes=0 info=0x1500/0xff00",
                  watchIDs: [20, 21, 22, 23], readConcurrently: true, readBuffer: 433,
                  admits: { subtype, watchID in watchID == 22 || (watchID == 21 && subtype == 0) }),
        QueueSpec(name: "late", size: 4, filter: "none", watchIDs: [nil, 31, nil, 33],
                  readConcurrently: false, readBuffer: 64, admits: { _, _ in true }),
    ]

    /// A 24-byte user record: subtype seq % 3, then u64 seq and u64 poster index.
    static func record(poster: Int, seq: UInt64) -> [UInt8] {
        userRecord(subtype: UInt8(seq % 3), payload: Records.littleEndianBytes(seq) + Records.littleEndianBytes(UInt64(poster)))
    }

    /// Results the threads hand back.
    final class Results: Sendable {
        let streams = Locked<[String: [UInt8]]>([:])
        let postersRunning = Atomic<Int>(ConcurrencyTests.posters)
    }

    @Test(.timeLimit(.minutes(1)))
    func everyRecordIsReadOrReportedLostAndEachSourceKeepsItsOrder() throws {
        let f = Fixture()
        let engine = f.engine
        var sources: [SourceID] = []
        for poster in 0..<Self.posters { sources.append(try f.source("s\(poster)")) }
        var queues: [String: QueueID] = [:]
        for spec in Self.specs {
            let queue = try f.queue(spec.name, size: spec.size)
            try engine.setFilter(of: queue, Grammar.filter(spec.filter, maxEntries: 16), append: false)
            queues[spec.name] = queue
            for (poster, watchID) in spec.watchIDs.enumerated() {
                if let watchID { try f.watches("\(spec.name) \(watchID)", on: sources[poster]) }
            }
        }
        let queueIDs = queues
        let sourceIDs = sources
        let results = Results()
        let group = DispatchGroup()

        // Consumers: one thread per concurrently read queue, non-blocking reads.
        for spec in Self.specs where spec.readConcurrently {
            group.enter()
            let queue = queueIDs[spec.name]!
            Thread {
                var stream: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: spec.readBuffer)
                while true {
                    let postersDone = results.postersRunning.load(ordering: .acquiring) == 0
                    do {
                        let count = try buffer.withUnsafeMutableBytes { try engine.read(from: queue, into: $0) }
                        stream += buffer.prefix(count)
                    } catch let error as WQError where error.errno == EAGAIN {
                        if postersDone { break } // drained after the last post
                        sched_yield()
                    } catch {
                        Issue.record("read failed: \(error)")
                        break
                    }
                }
                results.streams.withLock { $0[spec.name] = stream }
                group.leave()
            }.start()
        }

        // Posters: each its own source, in batches of 1–3 records; one posts text.
        for poster in 0..<Self.posters {
            group.enter()
            let source = sourceIDs[poster]
            Thread {
                var seq: UInt64 = 0
                while seq < UInt64(Self.recordsPerPoster) {
                    let batch = min(UInt64(1 + (seq + UInt64(poster)) % 3), UInt64(Self.recordsPerPoster) - seq)
                    do {
                        if poster == 3 {
                            let text = (seq..<seq + batch).map { "\($0 % 3) u64=\($0) u64=\(poster)" }.joined(separator: "\n")
                            _ = try engine.postText(text, to: source)
                        } else {
                            let bytes = (seq..<seq + batch).flatMap { Self.record(poster: poster, seq: $0) }
                            _ = try bytes.withUnsafeBytes { try engine.postBinary($0, to: source) }
                        }
                    } catch {
                        Issue.record("post failed: \(error)")
                    }
                    seq += batch
                    if seq % 64 == 0 { sched_yield() }
                }
                results.postersRunning.subtract(1, ordering: .releasing)
                group.leave()
            }.start()
        }

        group.wait()

        // The queue nobody read while posting: drain it now.
        for spec in Self.specs where !spec.readConcurrently {
            var stream: [UInt8] = []
            while true {
                let chunk = try f.read(queueIDs[spec.name]!, capacity: spec.readBuffer)
                if chunk.isEmpty { break }
                stream += chunk
                if try engine.status(of: queueIDs[spec.name]!).queued == 0 && !(try engine.status(of: queueIDs[spec.name]!).lossPending) { break }
            }
            results.streams.withLock { $0[spec.name] = stream }
        }

        let streams = results.streams.withLock { $0 }
        var totalLost: UInt64 = 0
        for spec in Self.specs {
            let status = try engine.status(of: queueIDs[spec.name]!)
            let stream = try #require(streams[spec.name])
            let parsed = records(in: stream)
            let dataRecords = parsed.filter { !isLoss($0.header) }

            // What each queue should have been offered and let through.
            var expectedPosted: UInt64 = 0
            var expectedPassing: [Int: [UInt64]] = [:]
            for (poster, watchID) in spec.watchIDs.enumerated() {
                guard let watchID else { continue }
                expectedPosted += UInt64(Self.recordsPerPoster)
                expectedPassing[poster] = (0..<UInt64(Self.recordsPerPoster)).filter { spec.admits(UInt8($0 % 3), watchID) }
            }
            let passing = UInt64(expectedPassing.values.reduce(0) { $0 + $1.count })

            // Counters: read + lost == posted - filtered, and they match the stream.
            #expect(status.queued == 0 && !status.lossPending, "\(spec.name) not drained")
            #expect(status.counters.posted == expectedPosted, "\(spec.name)")
            #expect(status.counters.posted - status.counters.filtered == passing, "\(spec.name)")
            #expect(status.counters.read + status.counters.lost == passing, "\(spec.name): read \(status.counters.read) lost \(status.counters.lost)")
            #expect(UInt64(dataRecords.count) == status.counters.read, "\(spec.name)")
            totalLost += status.counters.lost
            if spec.size < 8 && !spec.readConcurrently { #expect(status.counters.lost > 0, "\(spec.name) should lose records") }
            if status.counters.lost > 0 { #expect(parsed.contains { isLoss($0.header) }, "\(spec.name) lost records without a loss record") }

            // Per source: strictly increasing, and every gap covered by a loss record.
            var lossesSeen = 0
            var lastIndex: [Int: Int] = [:]     // index into expectedPassing of the last record seen
            var lossesAtLast: [Int: Int] = [:]
            for record in parsed {
                if isLoss(record.header) { lossesSeen += 1; continue }
                #expect(record.header.type == NotificationType.user && record.header.length == 24)
                let (seq, poster) = record.bytes.withUnsafeBytes {
                    ($0.loadUnaligned(fromByteOffset: 8, as: UInt64.self), Int($0.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
                }
                guard let watchID = spec.watchIDs[safe: poster] ?? nil, let seqs = expectedPassing[poster] else {
                    Issue.record("\(spec.name): record from unwatched poster \(poster)"); continue
                }
                #expect(record.header.watchID == watchID)
                #expect(record.header.subtype == UInt8(seq % 3))
                #expect(spec.admits(record.header.subtype, watchID), "\(spec.name): a filtered record got through")
                guard let index = seqs.firstIndex(of: seq) else {
                    Issue.record("\(spec.name): unexpected seq \(seq)"); continue
                }
                let previous = lastIndex[poster] ?? -1
                #expect(index > previous, "\(spec.name): poster \(poster) seq \(seq) out of order")
                if index > previous + 1 {
                    #expect(lossesSeen > lossesAtLast[poster, default: 0],
                            "\(spec.name): poster \(poster) records \(previous + 1)..<\(index) missing with no loss record")
                }
                lastIndex[poster] = index
                lossesAtLast[poster] = lossesSeen
            }
            for (poster, seqs) in expectedPassing where (lastIndex[poster] ?? -1) < seqs.count - 1 {
                #expect(lossesSeen > lossesAtLast[poster, default: 0],
                        "\(spec.name): poster \(poster)'s last records missing with no loss record after them")
            }
        }
        #expect(totalLost > 0)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
