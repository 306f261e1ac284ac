import FuseBinding
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
        // A write continues what an earlier write through this open file began.
        let first = openFiles.with(file.handle) { open -> Bool in
            defer { open.wrote = true }
            return !open.wrote
        } ?? true
        let caller = Credentials(uid: request.uid, gid: request.gid)
        do {
            let wakeups = try apply(data, to: node, replacing: first && file.flags & O_APPEND == 0, caller: caller) {
                Credentials(uid: request.uid, gid: request.gid, groups: request.supplementaryGroups())
            }
            _ = request.reply(write: data.count)
            deliver(wakeups)
        } catch {
            errors.record(path: path(of: node), uid: caller.uid, input: Grammar.quoted(String(decoding: data, as: UTF8.self)), error: error)
            _ = request.reply(error: error.errno)
        }
    }

    /// Carries out one write, all or nothing. `fullCaller` gives the caller with
    /// supplementary groups, fetched only where a permission check needs them.
    private func apply(_ data: UnsafeRawBufferPointer, to node: Node, replacing: Bool, caller: Credentials,
                       fullCaller: () -> Credentials) throws(WQError) -> Wakeups {
        if case .source(let source, .postBinary) = node {
            return try engine.postBinary(data, to: source)
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw WQError(EINVAL, "input is not UTF-8 text")
        }
        switch node {
        case .queue(let queue, .size):
            try engine.setSize(of: queue, to: Grammar.size(text, max: engine.limits.maxSize))
        case .queue(let queue, .filter):
            try engine.setFilter(of: queue, Grammar.filter(text, maxEntries: engine.limits.maxFilters), append: !replacing)
        case .source(let source, .id):
            try engine.setObjectID(of: source, to: Grammar.objectID(text))
        case .source(let source, .type):
            try engine.setType(of: source, to: Grammar.typeFile(text))
        case .source(let source, .post):
            return try engine.postText(text, to: source)
        case .source(let source, .watches):
            return try engine.applyWatches(Grammar.watches(text), to: source, caller: fullCaller())
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
        case .queue(let queue, let file): return "queues/\(engine.name(of: queue) ?? "?")\(file.suffix)"
        case .source(let source, let file):
            let name = engine.sourceName(of: source) ?? "?"
            return file == .directory ? "sources/\(name)" : "sources/\(name)/\(file.name)"
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
                guard argument <= UInt64(Int32.max) else { throw WQError(EINVAL, "size \(argument) is outside 1..\(engine.limits.maxSize)") }
                try engine.setSize(of: queue, to: Int(argument))
                _ = request.reply(ioctl: 0)
            } catch {
                errors.record(path: path(of: .queue(queue, .queue)), uid: request.uid,
                              input: "ioctl IOC_WATCH_QUEUE_SET_SIZE \(argument)", error: error)
                _ = request.reply(error: error.errno)
            }
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
