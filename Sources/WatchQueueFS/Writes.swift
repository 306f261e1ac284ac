import FuseBinding
import SystemSources
import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

extension WatchQueueFileSystem {
    public func write(_ request: consuming Request, inode: Inode, data: UnsafeRawBufferPointer,
                      offset: Int64, file: FileInfo) {
        guard let node = Node(inode: inode) else {
            _ = request.reply(error: ENOENT)
            return
        }
        if case .queue(_, .queue) = node {
            // As the kernel: a watch queue is written only by its sources.
            _ = request.reply(error: EXDEV)
            return
        }
        guard let stream = openFiles.with(file.handle, { $0.stream }) ?? nil else {
            _ = request.reply(error: EBADF)
            return
        }
        // Only a watch needs the caller's groups (to check read access).
        var caller = Credentials(uid: request.uid, gid: request.gid)
        if case .source(_, .watches) = node { caller.groups = request.supplementaryGroups() }
        let appending = file.flags & O_APPEND != 0
        let (code, wakeups) = feed(stream, node: node, caller: caller, input: data) { (assembler) throws(WQError) in
            try assembler.write(data) { (chunk) throws(WQError) in
                try self.apply(chunk, to: node, appending: appending, caller: caller)
            }
        }
        // The writer is answered before the readers its records woke: its next
        // write need not wait for their replies to be copied out.
        _ = code == 0 ? request.reply(write: data.count) : request.reply(error: code)
        deliver(wakeups)
    }

    /// `close(2)` of a descriptor: applies what the open file's writes left
    /// unfinished, so close fails when that is rejected; `: > NAME.filter` (opened
    /// with O_TRUNC, nothing written) clears the filter.
    public func flush(_ request: consuming Request, inode: Inode, file: FileInfo) {
        guard let open = openFiles.with(file.handle, { $0 }), let stream = open.stream else {
            _ = request.reply(error: 0)
            return
        }
        let caller = Credentials(uid: request.uid, gid: request.gid)
        let truncated = open.flags & O_TRUNC != 0
        let (code, wakeups) = feed(stream, node: open.node, caller: caller, input: nil) { (assembler) throws(WQError) in
            if case .queue(let queue, .filter) = open.node, truncated, assembler.rejection == nil,
               !assembler.applied, assembler.heldCount == 0 {
                try engine.setFilter(of: queue, .clear, append: false)
                return nil
            }
            return try assembler.finish { (chunk) throws(WQError) in
                try self.apply(chunk, to: open.node, appending: false, caller: caller)
            }
        }
        _ = request.reply(error: code)
        deliver(wakeups)
    }

    /// Runs one step of an open file's write stream under its lock. A new rejection
    /// is logged with `input` (the write's bytes, or nil for what close applied); a
    /// repeat of an earlier one is only answered. Returns the errno for the reply
    /// (0 on success) and what the step made due, to deliver after the reply.
    private func feed(_ stream: WriteStream, node: Node, caller: Credentials, input: UnsafeRawBufferPointer?,
                      _ step: (inout WriteAssembler) throws(WQError) -> Wakeups?) -> (Int32, Wakeups) {
        let outcome = stream.assembler.withLock { assembler -> (Result<Wakeups, WQError>, repeated: Bool) in
            let repeated = assembler.rejection != nil
            do throws(WQError) {
                return (.success(try step(&assembler) ?? Wakeups()), repeated)
            } catch {
                return (.failure(error), repeated)
            }
        }
        switch outcome.0 {
        case .success(let wakeups):
            return (0, wakeups)
        case .failure(let error):
            if !outcome.repeated {
                let quoted = input.map { Grammar.quoted(String(decoding: $0, as: UTF8.self)) } ?? "(unfinished at close)"
                errors.record(path: path(of: node), uid: caller.uid, input: quoted, error: error)
            }
            return (error.errno, Wakeups())
        }
    }

    /// Applies one chunk of whole lines or records, all or nothing, and says how much
    /// of it was whole. `appending`: the file was opened with O_APPEND, so even a
    /// first chunk extends a filter.
    private func apply(_ chunk: WriteAssembler.Chunk, to node: Node, appending: Bool,
                       caller: Credentials) throws(WQError) -> WriteAssembler.Applied<Wakeups> {
        if case .source(let source, .postBinary) = node {
            let (wakeups, taken) = try engine.postBinary(chunk.bytes, to: source, firstByte: chunk.firstByte, partial: !chunk.isFinal)
            return .init(wakeups, taken: taken)
        }
        return .init(try applyLines(chunk, to: node, appending: appending, caller: caller), taken: chunk.bytes.count)
    }

    /// Applies whole lines to a text control file.
    private func applyLines(_ chunk: WriteAssembler.Chunk, to node: Node, appending: Bool,
                            caller: Credentials) throws(WQError) -> Wakeups {
        guard let text = String(validating: chunk.bytes, as: UTF8.self) else {
            throw WQError(EINVAL, "line \(chunk.firstLine) or one after it is not UTF-8 text")
        }
        switch node {
        case .queue(let queue, .size):
            try engine.setSize(of: queue, to: Grammar.size(text, max: engine.limits.maxSize))
        case .queue(let queue, .filter):
            let filter = try Grammar.filter(text, maxEntries: engine.limits.maxFilters,
                                            firstLine: chunk.firstLine, continuing: !chunk.isFirst)
            try engine.setFilter(of: queue, filter, append: appending || !chunk.isFirst)
        case .source(let source, .id):
            try engine.setObjectID(of: source, to: Grammar.objectID(text))
        case .source(let source, .type):
            try engine.setType(of: source, to: Grammar.typeFile(text))
        case .source(let source, .post):
            return try engine.postText(text, to: source, firstLine: chunk.firstLine)
        case .source(let source, .watches):
            let commands = try Grammar.watches(text, firstLine: chunk.firstLine)
            if let serial = engine.keySerial(of: source), commands.contains(where: { if case .add = $0 { true } else { false } }) {
                try admitKeyWatch(serial, caller: caller)
            }
            return try engine.applyWatches(commands, to: source, caller: caller)
        default:
            throw WQError(EACCES, "the file is read-only")
        }
        return Wakeups()
    }

    /// The node's path inside the mount, for messages.
    func path(of node: Node) -> String {
        switch node {
        case .root: return "/"
        case .queuesDirectory: return "queues"
        case .sourcesDirectory: return "sources"
        case .readme: return "README"
        case .errors: return "errors"
        case .keysDirectory: return "keys"
        case .queue(let queue, let file): return "queues/\(engine.name(of: queue) ?? "?")\(file.suffix)"
        case .source(let source, let file):
            let name = engine.sourceName(of: source) ?? "?"
            let directory = engine.keySerial(of: source) == nil ? "sources/\(name)" : "keys/\(name)"
            return file == .directory ? directory : "\(directory)/\(file.name)"
        }
    }

    // MARK: ioctl and poll

    /// `FIONREAD`: bytes of queued records.
    static let fionread: UInt32 = 0x541B
    /// `IOC_WATCH_QUEUE_SET_SIZE`, `_IO('W', 0x60)`: the record count by value.
    static let setSizeCommand: UInt32 = 0x5760

    public func ioctl(_ request: consuming Request, inode: Inode, command: UInt32, argument: UInt64,
                      file: FileInfo, flags: UInt32, input: UnsafeRawBufferPointer, outputSize: Int) {
        guard case .queue(let queue, .queue)? = Node(inode: inode) else {
            _ = request.reply(error: ENOTTY)
            return
        }
        switch command {
        case Self.fionread:
            let bytes = Int32(clamping: (try? engine.queuedBytes(of: queue)) ?? 0)
            _ = request.reply(ioctl: 0, bytes: Records.littleEndianBytes(bytes))
        case Self.setSizeCommand:
            do throws(WQError) {
                // The kernel's rules for an anonymous queue, the mount's for a named one.
                try engine.setSizeByIoctl(of: queue, to: argument)
                _ = request.reply(ioctl: 0)
            } catch {
                errors.record(path: path(of: .queue(queue, .queue)), uid: request.uid,
                              input: "ioctl IOC_WATCH_QUEUE_SET_SIZE \(argument)", error: error)
                _ = request.reply(error: error.errno)
            }
        case let command where Self.compatCommands.contains(command):
            compatIoctl(request, queue: queue, command: command, input: input)
        default:
            _ = request.reply(error: ENOTTY)
        }
    }

    public func poll(_ request: consuming Request, inode: Inode, file: FileInfo, handle: PollHandle?) {
        guard case .queue(let queue, .queue)? = Node(inode: inode) else {
            handle?.destroy()
            _ = request.reply(poll: PollEvents.readable)
            return
        }
        let (events, released) = engine.poll(queue, token: handle?.token, owner: file.handle)
        for token in released { PollHandle(unsafeReclaimingToken: token).destroy() }
        _ = request.reply(poll: events)
    }
}
