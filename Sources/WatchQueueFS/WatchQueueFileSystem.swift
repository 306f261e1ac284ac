import FuseBinding
import SystemSources
import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// The wqfs filesystem: the layout of DESIGN.md §2 mapped onto an `Engine`.
///
/// It holds no inode table (inode numbers are computed from engine handles) and no
/// locks of its own beyond the open-file table and the error log; replies that an
/// engine operation makes due are sent after the engine's lock is released.
public final class WatchQueueFileSystem: FuseFilesystem {
    /// The engine behind the mount.
    public let engine: Engine
    let errors = ErrorLog()
    let openFiles = OpenFiles()
    /// Owner of the fixed nodes (root, `queues/`, `sources/`, `README`, `errors`).
    let owner: Credentials
    let mountTime: Timestamp
    /// The mount's system sources (DESIGN.md §6), if any were asked for.
    let system: SystemSources?

    /// Attributes and names are never cached: queues and sources come and go, and
    /// a queue file's size is its queued bytes.
    static let cacheTimeout = 0.0

    public init(engine: Engine, owner: Credentials, system: SystemSources? = nil) {
        self.engine = engine
        self.owner = owner
        self.system = system
        mountTime = Timestamp.now()
    }

    /// Starts the system sources' event thread (after the server daemonized) and
    /// logs which sources run and why the others do not.
    public func startSystemSources() throws(WQError) {
        guard let system else { return }
        try system.start { [weak self] wakeups in self?.deliver(wakeups) }
        for line in system.report { Log.write("system source " + line) }
    }

    public func initialize(connection: inout ConnectionSettings, notifier: FuseNotifier) {
        // O_TRUNC arrives in open's flags, so `echo … > NAME.filter` can replace the
        // filter with its write instead of clearing it first (no unfiltered moment).
        connection.want |= FuseCapability.atomicOTrunc & connection.capable
    }

    /// Answers every parked read with end of file and notifies every poller; for
    /// unmount, while the channel is still open.
    public func shutdown() {
        system?.stop()
        deliver(engine.shutdown())
    }

    public func destroy() {
        shutdown()
    }

    // MARK: replies that wait

    /// Sends the replies and poll notifications an engine operation made due.
    func deliver(_ wakeups: Wakeups) {
        for answer in wakeups.reads {
            let request = ParkedRequest(unsafeReclaimingToken: answer.token).reclaim()
            switch answer.result {
            case .data(let bytes): _ = request.reply(data: bytes)
            case .endOfFile: _ = request.reply(data: [])
            case .failure(let code): _ = request.reply(error: code)
            }
        }
        for token in wakeups.polls {
            _ = PollHandle(unsafeReclaimingToken: token).notify()
        }
    }

    public func interrupted(token: UInt64) {
        // Only the one that takes the read off the parked list may answer it.
        if engine.cancelRead(token: token) {
            _ = ParkedRequest(unsafeReclaimingToken: token).reclaim().reply(error: EINTR)
        }
    }

    // MARK: names

    public func lookup(_ request: consuming Request, parent: Inode, name: String) {
        guard let node = child(of: parent, named: name), let attributes = attributes(of: node) else {
            _ = request.reply(error: ENOENT)
            return
        }
        _ = request.reply(entry: entry(node, attributes))
    }

    /// The node `name` names in `parent`, if it exists.
    func child(of parent: Inode, named name: String) -> Node? {
        switch Node(inode: parent) {
        case .root?:
            switch name {
            case "README": return .readme
            case "errors": return .errors
            case "queues": return .queuesDirectory
            case "sources": return .sourcesDirectory
            case "keys": return .keysDirectory
            default: return nil
            }
        case .keysDirectory?:
            return keySource(named: name).map { .source($0, .directory) }
        case .queuesDirectory?:
            for file in QueueFile.allCases where file != .queue && name.hasSuffix(file.suffix) {
                guard let queue = engine.queue(named: String(name.dropLast(file.suffix.count))) else { return nil }
                return .queue(queue, file)
            }
            return engine.queue(named: name).map { .queue($0, .queue) }
        case .sourcesDirectory?:
            return engine.source(named: name).map { .source($0, .directory) }
        case .source(let source, .directory)?:
            guard let file = files(of: source).first(where: { $0.name == name }),
                  engine.metadata(of: source, file: .directory) != nil else { return nil }
            return .source(source, file)
        default:
            return nil
        }
    }

    public func getattr(_ request: consuming Request, inode: Inode, file: FileInfo?) {
        // A queue file's size is its queued bytes (FIONREAD): key changes made
        // before the stat count, as the kernel's would.
        if case .queue(let queue, .queue)? = Node(inode: inode) { system?.synchronizeKeys(for: queue) }
        guard let node = Node(inode: inode), let attributes = attributes(of: node) else {
            _ = request.reply(error: ENOENT)
            return
        }
        _ = request.reply(attr: attributes, timeout: Self.cacheTimeout)
    }

    func entry(_ node: Node, _ attributes: stat) -> EntryReply {
        EntryReply(inode: node.inode, attributes: attributes,
                   attributeTimeout: Self.cacheTimeout, entryTimeout: Self.cacheTimeout)
    }

    /// Owner, mode and times of a node; nil when it no longer exists.
    func metadata(of node: Node) -> Metadata? {
        switch node {
        case .root: Metadata(owner: owner, mode: 0o755, at: mountTime)
        // Like /tmp: anyone may create, only the owner may remove.
        case .queuesDirectory, .sourcesDirectory: Metadata(owner: owner, mode: 0o1777, at: mountTime)
        case .keysDirectory: Metadata(owner: owner, mode: 0o755, at: mountTime)
        case .readme, .errors: Metadata(owner: owner, mode: 0o444, at: mountTime)
        case .queue(let queue, let file): engine.metadata(of: queue, file: file)
        case .source(let source, let file): engine.metadata(of: source, file: file)
        }
    }

    func attributes(of node: Node) -> stat? {
        guard let metadata = metadata(of: node) else { return nil }
        var attributes = stat()
        attributes.st_ino = ino_t(node.inode)
        attributes.st_mode = (node.isDirectory ? S_IFDIR : S_IFREG) | mode_t(metadata.mode)
        attributes.st_nlink = node.isDirectory ? 2 : 1
        attributes.st_uid = metadata.uid
        attributes.st_gid = metadata.gid
        attributes.st_blksize = 4096
        attributes.st_atim = timespec(tv_sec: Int(metadata.accessed.seconds), tv_nsec: Int(metadata.accessed.nanoseconds))
        attributes.st_mtim = timespec(tv_sec: Int(metadata.modified.seconds), tv_nsec: Int(metadata.modified.nanoseconds))
        attributes.st_ctim = timespec(tv_sec: Int(metadata.changed.seconds), tv_nsec: Int(metadata.changed.nanoseconds))
        switch node {
        case .root: attributes.st_nlink = 5
        case .queue(let queue, .queue):
            // The queued bytes, which is what FIONREAD reports for a regular file.
            attributes.st_size = off_t((try? engine.queuedBytes(of: queue)) ?? 0)
        case .source(_, .post), .source(_, .postBinary), .queuesDirectory, .sourcesDirectory, .keysDirectory, .source(_, .directory):
            break
        default:
            attributes.st_size = off_t(content(of: node)?.count ?? 0)
        }
        return attributes
    }

    public func readdir(_ request: consuming Request, inode: Inode, size: Int, offset: Int64, file: FileInfo) {
        guard let node = Node(inode: inode) else {
            _ = request.reply(error: ENOENT)
            return
        }
        // The listing is made once per open directory (at offset 0) and served from
        // there, so `ls` of a large directory costs one pass, and one listing is never
        // two versions torn together.
        var entries = offset == 0 ? nil : openFiles.keptListing(file.handle)
        if entries == nil {
            // Made outside the open-file table's lock, which every write takes; kept
            // only when a listing begins, so a kept one is always whole.
            entries = listing(of: node)
            if offset == 0, let entries { openFiles.keep(entries, for: file.handle) }
        }
        guard let entries else {
            _ = request.reply(error: ENOTDIR)
            return
        }
        _ = request.reply(directoryEntries: entries, size: size, offset: offset)
    }

    /// The files in a source's directory.
    func files(of source: SourceID) -> [SourceFile] {
        guard engine.isSystemSource(source) else { return SourceFile.userFiles }
        if engine.keySerial(of: source) != nil { return SourceFile.systemFiles.filter { $0 != .table } }
        return system?.hasTable(source) == true ? SourceFile.systemFiles : SourceFile.systemFiles.filter { $0 != .table }
    }

    /// The entries of a directory, `.` and `..` first; nil when `node` is not one.
    private func listing(of node: Node) -> [DirectoryEntry]? {
        var entries = [DirectoryEntry(name: ".", inode: node.inode, mode: S_IFDIR),
                       DirectoryEntry(name: "..", inode: parent(of: node).inode, mode: S_IFDIR)]
        switch node {
        case .root:
            entries += [DirectoryEntry(name: "README", inode: Node.readme.inode, mode: S_IFREG),
                        DirectoryEntry(name: "errors", inode: Node.errors.inode, mode: S_IFREG),
                        DirectoryEntry(name: "queues", inode: Node.queuesDirectory.inode, mode: S_IFDIR),
                        DirectoryEntry(name: "sources", inode: Node.sourcesDirectory.inode, mode: S_IFDIR),
                        DirectoryEntry(name: "keys", inode: Node.keysDirectory.inode, mode: S_IFDIR)]
        case .keysDirectory:
            for (serial, source) in engine.watchedKeys() {
                entries.append(DirectoryEntry(name: "\(serial)", inode: Node.source(source, .directory).inode, mode: S_IFDIR))
            }
        case .queuesDirectory:
            for (name, queue) in engine.queues() {
                for file in QueueFile.allCases {
                    entries.append(DirectoryEntry(name: name + file.suffix, inode: Node.queue(queue, file).inode, mode: S_IFREG))
                }
            }
        case .sourcesDirectory:
            for (name, source) in engine.sources() {
                entries.append(DirectoryEntry(name: name, inode: Node.source(source, .directory).inode, mode: S_IFDIR))
            }
        case .source(let source, .directory):
            for file in files(of: source) {
                entries.append(DirectoryEntry(name: file.name, inode: Node.source(source, file).inode, mode: S_IFREG))
            }
        default:
            return nil
        }
        return entries
    }

    public func opendir(_ request: consuming Request, inode: Inode, file: FileInfo) {
        guard let node = Node(inode: inode), node.isDirectory, metadata(of: node) != nil else {
            _ = request.reply(error: ENOENT)
            return
        }
        _ = request.reply(open: OpenOptions(handle: openFiles.open(OpenFile(node: node, flags: file.flags))))
    }

    public func releasedir(_ request: consuming Request, inode: Inode, file: FileInfo) {
        _ = openFiles.close(file.handle)
        _ = request.reply(error: 0)
    }

    public func statfs(_ request: consuming Request, inode: Inode) {
        var stats = statvfs()
        stats.f_bsize = 4096
        stats.f_frsize = 4096
        stats.f_namemax = UInt(Grammar.maxNameLength)
        _ = request.reply(statfs: stats)
    }

    // MARK: creating and removing

    public func create(_ request: consuming Request, parent: Inode, name: String, mode: mode_t, file: FileInfo) {
        let caller = Credentials(uid: request.uid, gid: request.gid)
        switch makeQueue(parent: parent, name: name, caller: caller) {
        case .failure(let error):
            _ = request.reply(error: error.errno)
        case .success(let (node, attributes)):
            guard case .queue(let queue, _) = node else { return }
            engine.openedQueueFile(queue, reading: Self.opensForReading(file.flags), writing: Self.opensForWriting(file.flags))
            _ = request.reply(create: entry(node, attributes), open: queueOpenOptions(for: node, flags: file.flags))
        }
    }

    public func mknod(_ request: consuming Request, parent: Inode, name: String, mode: mode_t, device: dev_t) {
        guard mode & S_IFMT == S_IFREG else {
            refuse(request, "mknod", at: parent, name, "only regular files (queues) can be made", ifMissing: EPERM)
            return
        }
        let caller = Credentials(uid: request.uid, gid: request.gid)
        switch makeQueue(parent: parent, name: name, caller: caller) {
        case .failure(let error): _ = request.reply(error: error.errno)
        case .success(let (node, attributes)): _ = request.reply(entry: entry(node, attributes))
        }
    }

    private func makeQueue(parent: Inode, name: String, caller: Credentials) -> Result<(Node, stat), WQError> {
        guard Node(inode: parent) == .queuesDirectory else {
            let error = WQError(EPERM, "files are created only in queues/")
            errors.record(path: path(in: parent, name), uid: caller.uid, input: "create", error: error)
            return .failure(error)
        }
        do {
            let queue = try engine.createQueue(named: name, owner: caller)
            let node = Node.queue(queue, .queue)
            guard let attributes = attributes(of: node) else { return .failure(WQError(ENOENT, "the queue is gone")) }
            return .success((node, attributes))
        } catch {
            errors.record(path: "queues/\(name)", uid: caller.uid, input: "create", error: error)
            return .failure(error)
        }
    }

    public func mkdir(_ request: consuming Request, parent: Inode, name: String, mode: mode_t) {
        let caller = Credentials(uid: request.uid, gid: request.gid)
        guard Node(inode: parent) == .sourcesDirectory else {
            refuse(request, "mkdir", at: parent, name, "directories are made only in sources/", ifMissing: EPERM)
            return
        }
        do {
            let node = Node.source(try engine.createSource(named: name, owner: caller, mode: UInt32(mode & 0o7777)), .directory)
            guard let attributes = attributes(of: node) else {
                _ = request.reply(error: ENOENT)
                return
            }
            _ = request.reply(entry: entry(node, attributes))
        } catch {
            errors.record(path: "sources/\(name)", uid: caller.uid, input: "mkdir", error: error)
            _ = request.reply(error: error.errno)
        }
    }

    public func unlink(_ request: consuming Request, parent: Inode, name: String) {
        guard Node(inode: parent) == .queuesDirectory, case .queue(_, .queue)? = child(of: parent, named: name) else {
            refuse(request, "unlink", at: parent, name, "only a queue can be removed; its companion files go with it")
            return
        }
        do {
            let wakeups = try engine.removeQueue(named: name)
            _ = request.reply(error: 0)
            deliver(wakeups)
        } catch {
            _ = request.reply(error: error.errno)
        }
    }

    public func rmdir(_ request: consuming Request, parent: Inode, name: String) {
        guard Node(inode: parent) == .sourcesDirectory else {
            refuse(request, "rmdir", at: parent, name, "only a source's directory can be removed")
            return
        }
        do {
            let wakeups = try engine.removeSource(named: name)
            _ = request.reply(error: 0)
            deliver(wakeups)
        } catch {
            _ = request.reply(error: error.errno)
        }
    }

    public func rename(_ request: consuming Request, parent: Inode, name: String,
                       newParent: Inode, newName: String, flags: UInt32) {
        // Names are how watches refer to queues: they do not change under them.
        refuse(request, "rename to \(Grammar.quoted(newName))", at: parent, name, "names never change: watches refer to them")
    }

    public func symlink(_ request: consuming Request, target: String, parent: Inode, name: String) {
        refuse(request, "symlink to \(Grammar.quoted(target))", at: parent, name, "wqfs holds no symbolic links", ifMissing: EPERM)
    }

    public func link(_ request: consuming Request, inode: Inode, newParent: Inode, newName: String) {
        refuse(request, "link", at: newParent, newName, "wqfs holds no hard links", ifMissing: EPERM)
    }

    /// Answers an operation the layout does not allow: ENOENT when `name` does not
    /// exist in `parent` (unless `ifMissing` says otherwise), else EPERM with the
    /// reason in `errors`, as for a rejected write.
    private func refuse(_ request: consuming Request, _ operation: String, at parent: Inode, _ name: String,
                        _ reason: String, ifMissing: Int32 = ENOENT) {
        let code = child(of: parent, named: name) == nil ? ifMissing : EPERM
        if code == EPERM {
            errors.record(path: path(in: parent, name), uid: request.uid, input: operation, error: WQError(EPERM, reason))
        }
        _ = request.reply(error: code)
    }

    /// The path of `name` in directory `parent`, for messages.
    private func path(in parent: Inode, _ name: String) -> String {
        switch Node(inode: parent) {
        case .root?, nil: name
        case let node?: "\(path(of: node))/\(name)"
        }
    }

    // MARK: attributes

    public func setattr(_ request: consuming Request, inode: Inode, attributes new: stat,
                        fields: SetAttributeFields, file: FileInfo?) {
        guard let node = Node(inode: inode) else {
            _ = request.reply(error: ENOENT)
            return
        }
        var change = MetadataChange()
        if fields.contains(.mode) { change.mode = UInt32(new.st_mode) & 0o7777 }
        if fields.contains(.uid) { change.uid = new.st_uid }
        if fields.contains(.gid) { change.gid = new.st_gid }
        let now = Timestamp.now()
        if fields.contains(.accessTimeNow) { change.accessed = now } else if fields.contains(.accessTime) {
            change.accessed = Timestamp(seconds: Int64(new.st_atim.tv_sec), nanoseconds: Int32(new.st_atim.tv_nsec))
        }
        if fields.contains(.modificationTimeNow) { change.modified = now } else if fields.contains(.modificationTime) {
            change.modified = Timestamp(seconds: Int64(new.st_mtim.tv_sec), nanoseconds: Int32(new.st_mtim.tv_nsec))
        }
        do {
            switch node {
            case .queue(let queue, let queueFile):
                // truncate(2) of a filter clears it; other sizes mean nothing here.
                if fields.contains(.size), new.st_size == 0, queueFile == .filter {
                    try engine.setFilter(of: queue, .clear, append: false)
                }
                _ = try engine.changeMetadata(of: queue, file: queueFile, change)
            case .source(let source, let sourceFile):
                _ = try engine.changeMetadata(of: source, file: sourceFile, change)
            default:
                _ = request.reply(error: EPERM)
                return
            }
        } catch {
            _ = request.reply(error: error.errno)
            return
        }
        guard let attributes = attributes(of: node) else {
            _ = request.reply(error: ENOENT)
            return
        }
        _ = request.reply(attr: attributes, timeout: Self.cacheTimeout)
    }

    // MARK: opening

    /// Queue files: no page cache, no seeking, and a stream so that several reads
    /// on one open file may wait at once. The handle tells open files apart, so a
    /// poll replaces the earlier poll of the same open file.
    func queueOpenOptions(for node: Node, flags: Int32) -> OpenOptions {
        OpenOptions(handle: openFiles.open(OpenFile(node: node, flags: flags)), directIO: true, nonseekable: true,
                    stream: true, noFlush: true)
    }

    static func opensForReading(_ flags: Int32) -> Bool {
        flags & O_ACCMODE != O_WRONLY
    }

    static func opensForWriting(_ flags: Int32) -> Bool {
        flags & O_ACCMODE != O_RDONLY
    }

    public func open(_ request: consuming Request, inode: Inode, file: FileInfo) {
        guard let node = Node(inode: inode), metadata(of: node) != nil else {
            _ = request.reply(error: ENOENT)
            return
        }
        if node.isDirectory {
            _ = request.reply(error: EISDIR)
            return
        }
        if case .queue(let queue, .queue) = node {
            engine.openedQueueFile(queue, reading: Self.opensForReading(file.flags), writing: Self.opensForWriting(file.flags))
            _ = request.reply(open: queueOpenOptions(for: node, flags: file.flags))
            return
        }
        // The kernel skips mode checks for root: keep read-only files read-only.
        if Self.opensForWriting(file.flags) && !node.isWritable {
            _ = request.reply(error: EACCES)
            return
        }
        // Only an open file that may be written needs FLUSH: its close applies what
        // its writes left unfinished.
        let writing = Self.opensForWriting(file.flags)
        let stream = writing ? WriteStream(node.isBinary ? .records : .lines) : nil
        let handle = openFiles.open(OpenFile(node: node, flags: file.flags, stream: stream))
        _ = request.reply(open: OpenOptions(handle: handle, directIO: true, noFlush: !writing))
    }

    public func release(_ request: consuming Request, inode: Inode, file: FileInfo) {
        if let open = openFiles.close(file.handle) {
            if case .queue(let queue, .queue) = open.node {
                // A poll kept for this open file would otherwise outlive it.
                for token in engine.closeFile(of: queue, owner: file.handle) {
                    PollHandle(unsafeReclaimingToken: token).destroy()
                }
            }
            if case .queue(let queue, .queue) = open.node {
                // The last release of an anonymous queue destroys it.
                deliver(engine.releasedQueueFile(queue, reading: Self.opensForReading(open.flags),
                                                 writing: Self.opensForWriting(open.flags)))
            }
        }
        _ = request.reply(error: 0)
    }

    // MARK: reading

    public func read(_ request: consuming Request, inode: Inode, size: Int, offset: Int64, file: FileInfo) {
        guard let node = Node(inode: inode) else {
            _ = request.reply(error: ENOENT)
            return
        }
        if case .queue(let queue, .queue) = node {
            readQueue(request, queue: queue, size: size, nonblocking: file.flags & O_NONBLOCK != 0)
            return
        }
        let bytes = openFiles.with(file.handle) { open -> [UInt8] in
            if offset == 0 || open.snapshot.isEmpty { open.snapshot = content(of: node) ?? [] }
            guard offset < open.snapshot.count else { return [] }
            return Array(open.snapshot[Int(offset)..<min(open.snapshot.count, Int(offset) + size)])
        }
        _ = request.reply(data: bytes ?? [])
    }

    private func readQueue(_ request: consuming Request, queue: QueueID, size: Int, nonblocking: Bool) {
        // The kernel has posted a key change's records before its system call
        // returns: a read after the call must find them queued, not still in the
        // observer's ring (a 433-byte read after 64 updates takes 27 records).
        system?.synchronizeKeys(for: queue)
        if nonblocking {
            reply(request, engine.read(from: queue, capacity: size, parkingAs: nil))
            return
        }
        // Registered before parking and outside the engine's lock: libfuse may run
        // the callback at once, and the callback takes that lock.
        request.registerInterruptCallback()
        let token = request.token
        let attempt = engine.read(from: queue, capacity: size, parkingAs: token) { request.isInterrupted }
        if attempt == .parked {
            _ = request.park()
        } else {
            reply(request, attempt)
        }
    }

    private func reply(_ request: consuming Request, _ attempt: ReadAttempt) {
        switch attempt {
        case .data(let bytes): _ = request.reply(data: bytes)
        case .endOfFile: _ = request.reply(data: [])
        case .wouldBlock: _ = request.reply(error: EAGAIN)
        case .failure(let code): _ = request.reply(error: code)
        case .parked: _ = request.reply(error: EIO) // not reached: parking is handled by the caller
        }
    }

    /// The text a generated file shows now; nil when its object is gone.
    func content(of node: Node) -> [UInt8]? {
        let text: String?
        switch node {
        case .readme: text = Readme.text(limits: engine.limits, systemSources: system?.report ?? [])
        case .errors: text = errors.text
        case .queue(let queue, .size): text = (try? engine.size(of: queue)).map { "\($0)\n" }
        case .queue(let queue, .filter): text = (try? engine.filter(of: queue)).map(Grammar.format(filter:))
        case .queue(let queue, .status): text = (try? engine.status(of: queue))?.text
        case .source(let source, .id): text = (try? engine.objectID(of: source)).map { "\($0)\n" }
        case .source(let source, .type): text = (try? engine.type(of: source)).map { "\($0)\n" }
        case .source(let source, .watches): text = try? engine.watchesText(of: source)
        case .source(let source, .status):
            text = engine.keySerial(of: source).map { system?.keyStatus(serial: $0) ?? "mechanism none\n" } ?? system?.status(of: source)
        case .source(let source, .table): text = system?.table(of: source)
        default: text = ""
        }
        return text.map { Array($0.utf8) }
    }
}

extension Node {

    /// `post.bin`, written in packed records rather than lines.
    var isBinary: Bool {
        if case .source(_, .postBinary) = self { true } else { false }
    }

    /// Files whose writes mean something (the queue file itself answers EXDEV).
    var isWritable: Bool {
        switch self {
        case .queue(_, .size), .queue(_, .filter), .queue(_, .queue): true
        case .source(_, let file): ![.directory, .status, .table].contains(file)
        default: false
        }
    }
}
