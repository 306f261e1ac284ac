import SystemSources
import WQCatKit
import WatchQueueCore
import Glibc

/// One opened input and the partial record it may be holding.
struct Input {
    /// The name used in error messages.
    let displayName: String
    /// The `QUEUE: ` prefix of its lines; nil with a single input.
    let label: String?
    let fd: Int32
    let isStandardInput: Bool
    /// A pipe or socket: its writer, not poll, says when it is empty.
    let isStream: Bool
    var records = RecordReassembler()
    var ended = false
    /// The mount table of the wqfs mount the queue is on; nil for standard input and
    /// for files that are not at `MOUNT/queues/NAME`.
    var mountTable: MountTableFile?

    /// Opens `argument` (`-` is standard input, never made non-blocking: its file
    /// description is shared with other processes).
    init(argument: String, label: String?, nonBlocking: Bool) throws(Failure) {
        self.label = label
        if argument == "-" {
            displayName = "standard input"
            fd = STDIN_FILENO
            isStandardInput = true
        } else {
            displayName = argument
            fd = open(argument, O_RDONLY | O_CLOEXEC | (nonBlocking ? O_NONBLOCK : 0))
            if fd < 0 { throw Failure(message: "\(argument): \(systemError())", status: ExitStatus.failure) }
            isStandardInput = false
            mountTable = MountTableFile(queuePath: argument)
        }
        var status = stat()
        let kind = fstat(fd, &status) == 0 ? status.st_mode & S_IFMT : 0
        isStream = kind == S_IFIFO || kind == S_IFSOCK
    }
}

/// `MOUNT/sources/mounts/table` for a queue at `MOUNT/queues/NAME`: the names of the
/// mounts MOUNT records give only ids for. Read lazily, and again only when a record
/// needs what the copy in hand cannot say, since mount records are rare and the
/// table may be long.
struct MountTableFile {
    let path: String
    /// The table as last read; nil before the first read, or when it cannot be read.
    private var snapshot: MountTableSnapshot?

    /// The table file of the mount `queuePath` is on, or nil when the path (after
    /// resolving symbolic links and `..`) is not inside a `queues` directory.
    init?(queuePath: String) {
        guard let resolved = realpath(queuePath, nil) else { return nil }
        defer { free(resolved) }
        let components = String(cString: resolved).split(separator: "/", omittingEmptySubsequences: true)
        guard components.count >= 2, components[components.count - 2] == "queues" else { return nil }
        path = "/" + components.dropLast(2).map { $0 + "/" }.joined() + "sources/mounts/table"
    }

    /// The table to name `record`'s mount with, or nil for records that are not MOUNT
    /// records. Re-read when the record names a mount the copy does not know, and
    /// for remounts, whose options the copy has from before the change.
    mutating func snapshot(for record: CapturedRecord) -> MountTableSnapshot? {
        guard case .mount(let mount) = record.meaning else { return nil }
        let changedOptions = mount.subtype == .readOnly || mount.subtype == .setattr
        if snapshot?[mount.subjectMount] == nil || changedOptions {
            snapshot = readText(path).map(MountTableSnapshot.init(text:))
        }
        return snapshot
    }
}

/// The whole of a small file as text, or nil when it cannot be opened or read.
private func readText(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16 * 1024)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count > 0 {
            bytes += chunk[..<count]
        } else if count == 0 {
            return String(decoding: bytes, as: UTF8.self)
        } else if errno != EINTR {
            return nil
        }
    }
}

/// What one read() gave.
enum ReadOutcome {
    case bytes(Int)
    case endOfFile
    /// Nothing queued (O_NONBLOCK).
    case empty
}

/// Reads the inputs, prints their records, and counts them against `--count`.
struct Session {
    var inputs: [Input]
    let formatter: RecordFormatter
    let timestamps: Bool
    /// Records still to print before exiting; nil without `--count`.
    var remaining: Int?
    /// A record is at most 127 bytes, so a read into this never fails with ENOBUFS,
    /// and one read takes hundreds of records.
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    init(inputs: [Input], formatter: RecordFormatter, timestamps: Bool, remaining: Int?) {
        self.inputs = inputs
        self.formatter = formatter
        self.timestamps = timestamps
        self.remaining = remaining
    }

    private var countReached: Bool { remaining == 0 }

    /// `--drain`: each input in turn, until it has nothing more to give right now.
    mutating func drainAll() throws(Failure) {
        for index in inputs.indices {
            while !countReached {
                // Standard input stays blocking; unless it is a pipe (read to its end),
                // poll decides whether anything is queued.
                if inputs[index].isStandardInput && !inputs[index].isStream
                    && !isReadable(inputs[index].fd, timeout: 0) {
                    break
                }
                guard case .bytes(let count) = try read(index) else { break }
                try consume(count, from: index)
            }
            if countReached { return }
            try endInput(index)
        }
    }

    /// The default: wait for records until every input has ended.
    mutating func follow() throws(Failure) {
        if inputs.count == 1 {
            while !countReached {
                switch try read(0) {
                case .bytes(let count): try consume(count, from: 0)
                case .endOfFile: return try endInput(0)
                case .empty: _ = isReadable(inputs[0].fd, timeout: -1)  // Stdin set non-blocking by someone else.
                }
            }
            return
        }
        while !countReached, inputs.contains(where: { !$0.ended }) {
            let open = inputs.indices.filter { !inputs[$0].ended }
            var polled = open.map { pollfd(fd: inputs[$0].fd, events: Int16(POLLIN), revents: 0) }
            while poll(&polled, nfds_t(polled.count), -1) < 0 {
                guard errno == EINTR else { throw Failure(message: "poll: \(systemError())", status: ExitStatus.failure) }
            }
            for (index, entry) in zip(open, polled) where entry.revents != 0 && !countReached {
                switch try read(index) {
                case .bytes(let count): try consume(count, from: index)
                case .endOfFile: try endInput(index)
                case .empty: break  // Another reader got there first.
                }
            }
        }
    }

    /// One read() from input `index` into the buffer, retried after signals.
    private mutating func read(_ index: Int) throws(Failure) -> ReadOutcome {
        let fd = inputs[index].fd
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count > 0 { return .bytes(count) }
            if count == 0 { return .endOfFile }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .empty
            default:
                throw Failure(message: "\(inputs[index].displayName): \(systemError())", status: ExitStatus.failure)
            }
        }
    }

    /// Prints the records completed by the `count` bytes just read into the buffer.
    /// Records before a malformed one are printed before the error is reported.
    private mutating func consume(_ count: Int, from index: Int) throws(Failure) {
        inputs[index].records.append(contentsOf: buffer[..<count])
        let time = timestamps ? Timestamp.now() : nil
        var output: [UInt8] = []
        var malformed: RecordStreamError?
        do {
            while !countReached, let record = try inputs[index].records.next() {
                let mounts = inputs[index].mountTable?.snapshot(for: record)
                formatter.write(record, queue: inputs[index].label, time: time, mounts: mounts, to: &output)
                remaining? -= 1
            }
        } catch {
            malformed = error
        }
        // One write per read: nothing waits in a buffer for later input.
        try writeAll(output, to: STDOUT_FILENO)
        if let malformed { throw malformedFailure(malformed, in: index) }
    }

    /// Input `index` has no more bytes for now or ever: a partial record is an error.
    private mutating func endInput(_ index: Int) throws(Failure) {
        inputs[index].ended = true
        do {
            try inputs[index].records.finish()
        } catch {
            throw malformedFailure(error, in: index)
        }
    }

    private func malformedFailure(_ error: RecordStreamError, in index: Int) -> Failure {
        Failure(message: "\(inputs[index].displayName): malformed input: \(error.message)", status: ExitStatus.malformed)
    }
}

/// Whether `fd` polls readable (or hung up, or in error: a read will say which)
/// within `timeout` milliseconds; -1 waits for ever.
private func isReadable(_ fd: Int32, timeout: Int32) -> Bool {
    var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    while true {
        let ready = poll(&entry, 1, timeout)
        if ready >= 0 { return ready > 0 }
        if errno != EINTR { return true }  // Let the read report the problem.
    }
}
