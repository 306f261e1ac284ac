import FuseBinding
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

// Needs /dev/fuse and permission to mount (root, or fusermount3 setuid).
// Package.swift: .testTarget(name: "FuseBindingTests", dependencies: ["FuseBinding"])

@Suite struct ArgumentTests {
    @Test func customOptionsAndCommandLine() throws {
        var args = FuseArguments(["prog", "/tmp", "-f", "-o", "max_size=9,allow_other,flag", "-ofsname=x"])
        let mine = try args.extractOptions(named: ["max_size", "flag"])
        #expect(mine.map(\.name) == ["max_size", "flag"])
        #expect(mine.map(\.value) == ["9", nil])
        let cmd = try args.parseCommandLine()
        #expect(cmd.mountpoint == "/tmp")
        #expect(cmd.foreground)
        #expect(!cmd.singleThreaded)
        #expect(cmd.maxIdleThreads == nil)
        let rest = args.arguments
        #expect(rest.first == "prog")
        #expect(!rest.contains("/tmp") && !rest.contains("-f"))
        #expect(rest.joined(separator: " ").contains("allow_other"))
        #expect(!rest.joined(separator: " ").contains("max_size"))
    }
}

/// Root with "file" (reads "hi\n" once per open offset 0) and "queue"
/// (stream; reads park until `deliver`; ioctl 0x5760 takes a value).
final class MiniFS: FuseFilesystem {
    struct State {
        var parked: [UInt64] = []
        var ioctlArgs: [UInt64] = []
    }
    let state = Mutex(State())

    func attr(_ ino: Inode) -> stat {
        var st = stat()
        st.st_ino = ino_t(ino)
        st.st_nlink = 1
        st.st_mode = ino == rootInode ? (S_IFDIR | 0o755) : (S_IFREG | 0o644)
        return st
    }
    func lookup(_ request: consuming Request, parent: Inode, name: String) {
        let ino: Inode? = name == "file" ? 2 : name == "queue" ? 3 : name == "dropped" ? 4 : nil
        guard parent == rootInode, let ino else { request.reply(error: ENOENT); return }
        request.reply(entry: EntryReply(inode: ino, attributes: attr(ino), attributeTimeout: 0, entryTimeout: 0))
    }
    func getattr(_ request: consuming Request, inode: Inode, file: FileInfo?) {
        request.reply(attr: attr(inode), timeout: 0)
    }
    func open(_ request: consuming Request, inode: Inode, file: FileInfo) {
        request.reply(open: OpenOptions(handle: inode, directIO: true, nonseekable: true, stream: inode == 3))
    }
    func readdir(_ request: consuming Request, inode: Inode, size: Int, offset: Int64, file: FileInfo) {
        request.reply(directoryEntries: [
            DirectoryEntry(name: ".", inode: 1, mode: S_IFDIR), DirectoryEntry(name: "..", inode: 1, mode: S_IFDIR),
            DirectoryEntry(name: "file", inode: 2, mode: S_IFREG), DirectoryEntry(name: "queue", inode: 3, mode: S_IFREG),
        ], size: size, offset: offset)
    }
    func read(_ request: consuming Request, inode: Inode, size: Int, offset: Int64, file: FileInfo) {
        if inode == 2 { request.reply(data: offset == 0 ? Array("hi\n".utf8) : []); return }
        if inode == 4 { _ = consume request; return }  // deinit must answer EIO
        request.registerInterruptCallback()
        let token = request.token
        let interrupted = request.isInterrupted
        if interrupted { request.reply(error: EINTR); return }
        state.withLock { $0.parked.append(token) }
        _ = request.park()
    }
    func interrupted(token: UInt64) {
        let mine = state.withLock { s -> Bool in
            guard let i = s.parked.firstIndex(of: token) else { return false }
            s.parked.remove(at: i)
            return true
        }
        if mine { ParkedRequest(unsafeReclaimingToken: token).reclaim().reply(error: EINTR) }
    }
    func ioctl(_ request: consuming Request, inode: Inode, command: UInt32, argument: UInt64,
               file: FileInfo, flags: UInt32, input: UnsafeRawBufferPointer, outputSize: Int) {
        guard command == 0x5760 else { request.reply(error: ENOTTY); return }
        state.withLock { $0.ioctlArgs.append(argument) }
        request.reply(ioctl: 0)
    }
    /// Answer every parked read with `bytes`; returns how many were answered.
    func deliver(_ bytes: [UInt8]) -> Int {
        let tokens = state.withLock { s in defer { s.parked = [] }; return s.parked }
        for t in tokens { ParkedRequest(unsafeReclaimingToken: t).reclaim().reply(data: bytes) }
        return tokens.count
    }
    var parkedCount: Int { state.withLock { $0.parked.count } }
}

@Suite(.serialized) struct MountTests {
    @Test func inProcessMount() throws {
        var template = Array("/tmp/fusebinding-XXXXXX".utf8CString)
        guard let dir = mkdtemp(&template) else { Issue.record("mkdtemp"); return }
        let mountpoint = String(cString: dir)
        defer { rmdir(mountpoint) }

        let fs = MiniFS()
        let session = try FuseSession(arguments: ["test", "-o", "fsname=fusebindingtest"], filesystem: fs)
        try session.mount(at: mountpoint)
        try session.startLoopThread(multiThreaded: true)
        var stopped = false
        defer {
            if !stopped { _ = fs.deliver([]); session.stop() }
        }

        // Plain read.
        let fd = Glibc.open(mountpoint + "/file", O_RDONLY)
        #expect(fd >= 0)
        var buf = [UInt8](repeating: 0, count: 64)
        let n = Glibc.read(fd, &buf, buf.count)
        #expect(n == 3 && Array(buf[0..<3]) == Array("hi\n".utf8))
        close(fd)

        // A request dropped without a reply is answered EIO by its deinit.
        let d = Glibc.open(mountpoint + "/dropped", O_RDONLY)
        #expect(d >= 0)
        #expect(Glibc.read(d, &buf, buf.count) == -1 && errno == EIO)
        close(d)

        // ioctl by value, unknown ioctl.
        let q = Glibc.open(mountpoint + "/queue", O_RDONLY)
        #expect(q >= 0)
        #expect(Glibc.ioctl(q, 0x5760, 64) == 0)
        #expect(fs.state.withLock { $0.ioctlArgs } == [64])
        #expect(Glibc.ioctl(q, 0x7809, 0) == -1 && errno == ENOTTY)

        // Deferred read: a reader blocks until another thread delivers.
        let reader = Mutex<Int>(-2)
        let readerThread = try startThread {
            var b = [UInt8](repeating: 0, count: 16)
            let r = Glibc.read(q, &b, b.count)
            reader.withLock { $0 = r }
        }
        var waited = 0
        while fs.parkedCount == 0 && waited < 500 { usleep(10_000); waited += 1 }
        #expect(fs.deliver(Array("rec".utf8)) == 1)
        pthread_join(readerThread, nil)
        #expect(reader.withLock { $0 } == 3)
        close(q)

        stopped = true
        let outcome = session.stop()
        #expect(outcome == .ended)
    }
}

private final class ThreadBody: @unchecked Sendable {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

private func startThread(_ body: @escaping () -> Void) throws -> pthread_t {
    let arg = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var t = pthread_t()
    let rc = pthread_create(&t, nil, { p in
        Unmanaged<ThreadBody>.fromOpaque(p!).takeRetainedValue().body()
        return nil
    }, arg)
    if rc != 0 { throw FuseError("pthread_create \(rc)") }
    return t
}
