import CFuse
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Sends kernel notifications for one session (`fuse_lowlevel_notify_*`).
///
/// Copy it freely and use it from any thread. Calls made before the session
/// exists or after it is destroyed do nothing and return `-ENOTCONN`.
///
/// Deadlock rule (from libfuse): never send an invalidation from inside the
/// handling of a request the kernel may be holding a lock for — e.g.
/// `invalidateEntry` for a directory from within that directory's UNLINK.
/// Send them after replying, or from another thread.
///
/// All methods return 0 or a negative errno (`-ENOENT`: the kernel does not
/// know that inode/name, which is normally harmless).
public struct FuseNotifier: Sendable {
    let handle: SessionHandle

    /// Invalidate cached data of `inode` in `[offset, offset+length)`
    /// (`length` 0: to the end) and its attributes. A negative `offset`
    /// invalidates the attributes only. The kernel does not fetch anything
    /// now; the next stat (or cached read) asks again.
    @discardableResult
    public func invalidateInode(_ inode: Inode, offset: Int64 = 0, length: Int64 = 0) -> Int32 {
        handle.with { fuse_lowlevel_notify_inval_inode($0, inode, off_t(offset), off_t(length)) }
    }

    /// Forget the cached name `name` in directory `parent` (and the parent's
    /// attributes).
    @discardableResult
    public func invalidateEntry(parent: Inode, name: String) -> Int32 {
        handle.with { se in
            name.withCString { fuse_lowlevel_notify_inval_entry(se, parent, $0, strlen($0)) }
        }
    }

    /// Tell the kernel that `name` in `parent`, pointing to `child`, was
    /// deleted (invalidates the entry and, if `child` matches, the inode).
    @discardableResult
    public func notifyDelete(parent: Inode, child: Inode, name: String) -> Int32 {
        handle.with { se in
            name.withCString { fuse_lowlevel_notify_delete(se, parent, child, $0, strlen($0)) }
        }
    }

    /// Put `data` into the kernel's page cache of `inode` at `offset`; grows
    /// the kernel's idea of the file size (`i_size`) if the data ends past it.
    /// With empty `data`, only the size grows (to `offset`); it never shrinks.
    @discardableResult
    public func store(inode: Inode, offset: Int64, data: UnsafeRawBufferPointer) -> Int32 {
        handle.with { cfuse_notify_store($0, inode, off_t(offset), data.baseAddress, data.count) }
    }

    /// Wake pollers of a poll handle and free it (same as ``PollHandle/notify()``).
    @discardableResult
    public func notifyPoll(_ pollHandle: consuming PollHandle) -> Int32 {
        pollHandle.notify()
    }
}

/// The session pointer, published once the session exists, cleared before
/// it is destroyed.
final class SessionHandle: Sendable {
    private let bits = Atomic<UInt>(0)

    func set(_ se: OpaquePointer?) { bits.store(UInt(bitPattern: se), ordering: .releasing) }

    func with(_ body: (OpaquePointer) -> Int32) -> Int32 {
        guard let se = OpaquePointer(bitPattern: bits.load(ordering: .acquiring)) else { return -ENOTCONN }
        return body(se)
    }
}

/// How a session loop ended.
public enum LoopOutcome: Sendable, Equatable {
    /// The filesystem was unmounted (or the connection aborted), or
    /// ``FuseSession/exit()`` was called.
    case ended
    /// A signal caught by libfuse's handlers ended it (the signal number).
    case signal(Int32)
    /// The loop failed (positive errno).
    case failed(Int32)

    init(_ rc: Int32) {
        if rc == 0 { self = .ended } else if rc > 0 { self = .signal(rc) } else { self = .failed(-rc) }
    }

    /// `false` only for ``failed(_:)``: ending by unmount or signal is normal.
    public var isSuccess: Bool {
        if case .failed = self { return false }
        return true
    }
}

/// A libfuse low-level session serving one ``FuseFilesystem``.
///
/// Executable:
/// ```
/// let session = try FuseSession(arguments: args, filesystem: fs)
/// try session.mount(at: cmd.mountpoint!)
/// try session.installSignalHandlers()
/// let outcome = session.run(multiThreaded: !cmd.singleThreaded)
/// fs.answerAllParkedRequests()        // the channel is still open
/// session.removeSignalHandlers()
/// session.unmount()
/// // the session is destroyed when released (filesystem.destroy() runs then)
/// ```
/// In-process test mount: ``mount(at:)``, ``startLoopThread(multiThreaded:maxIdleThreads:)``,
/// drive the mount, then ``stop()``.
///
/// The session keeps the filesystem alive; libfuse reaches it through the
/// session userdata, so no global state is involved. libfuse's signal
/// handlers are process-wide: install them only in a server process.
public final class FuseSession: @unchecked Sendable {
    // `raw` and `context` are immutable; the rest is behind `state`.
    private let raw: OpaquePointer
    private let context: SessionContext
    private let handle: SessionHandle
    private let state = Mutex(State())

    private struct State: ~Copyable {
        var mountpoint: String?
        var signalHandlers = false
        var loopThread: pthread_t?
        var loopBox: LoopBox?
    }

    /// Notifications for this session; also handed to
    /// ``FuseFilesystem/initialize(connection:notifier:)``.
    public var notifier: FuseNotifier { context.notifier }

    /// The libfuse session (`struct fuse_session *`), for calls this binding
    /// does not wrap.
    public var unsafeSessionPointer: OpaquePointer { raw }

    /// Create the session (`fuse_session_new`, called through the shim so that
    /// libfuse ≥ 3.17 works too). `arguments` must hold only
    /// argv[0] and FUSE mount options (`-o …`, `-d`): run
    /// ``FuseArguments/parseCommandLine()`` first to remove the mount point.
    /// The ops table is copied by libfuse; `arguments` is used up.
    public init(arguments: consuming FuseArguments, filesystem: any FuseFilesystem) throws(FuseError) {
        let handle = SessionHandle()
        let context = SessionContext(filesystem: filesystem, notifier: FuseNotifier(handle: handle))
        var ops = makeOperations()
        let userdata = Unmanaged.passUnretained(context).toOpaque()
        // fuse_session_new parses (and may reallocate) the argument list.
        guard let se = cfuse_session_new(&arguments.raw, &ops, MemoryLayout<fuse_lowlevel_ops>.size, userdata) else {
            throw FuseError("fuse_session_new failed (unknown option?): \(arguments.arguments.dropFirst())")
        }
        self.raw = se
        self.context = context
        self.handle = handle
        handle.set(se)
    }

    /// Convenience: build the session from argv-style `arguments`
    /// (argv[0] first, then FUSE options only).
    public convenience init(arguments: [String], filesystem: any FuseFilesystem) throws(FuseError) {
        let args = FuseArguments(arguments)
        try self.init(arguments: args, filesystem: filesystem)
    }

    deinit {
        let hasThread = state.withLock { $0.loopThread != nil }
        if hasThread { stop() }
        unmount()
        // Calls filesystem.destroy() if the kernel did not send DESTROY.
        handle.set(nil)
        fuse_session_destroy(raw)
        _ = context
    }

    /// Mount at `path` (`fuse_session_mount`).
    public func mount(at path: String) throws(FuseError) {
        guard fuse_session_mount(raw, path) == 0 else {
            throw FuseError("cannot mount at \(path)")
        }
        state.withLock { $0.mountpoint = path }
    }

    /// Unmount (`fuse_session_unmount`). Call after the loop has returned.
    /// Does nothing if not mounted.
    public func unmount() {
        let was = state.withLock { s -> Bool in
            defer { s.mountpoint = nil }
            return s.mountpoint != nil
        }
        if was { fuse_session_unmount(raw) }
    }

    /// Serve requests on the calling thread until unmount, ``exit()`` or a
    /// handled signal. Multi-threaded uses `fuse_session_loop_mt` with up to
    /// `maxThreads` workers of which `maxIdleThreads` may stay idle;
    /// otherwise `fuse_session_loop`.
    public func run(multiThreaded: Bool = true, maxIdleThreads: Int = 4, maxThreads: Int = 16) -> LoopOutcome {
        Self.runLoop(raw, multiThreaded: multiThreaded, maxIdleThreads: maxIdleThreads, maxThreads: maxThreads)
    }

    fileprivate static func runLoop(_ raw: OpaquePointer, multiThreaded: Bool, maxIdleThreads: Int,
                                    maxThreads: Int) -> LoopOutcome {
        if !multiThreaded { return LoopOutcome(fuse_session_loop(raw)) }
        guard let config = fuse_loop_cfg_create() else { return .failed(ENOMEM) }
        defer { fuse_loop_cfg_destroy(config) }
        fuse_loop_cfg_set_idle_threads(config, UInt32(clamping: maxIdleThreads))
        fuse_loop_cfg_set_max_threads(config, UInt32(clamping: max(maxThreads, 1)))
        return LoopOutcome(fuse_session_loop_mt(raw, config))
    }

    /// Ask the loop to end (`fuse_session_exit`). Threads blocked reading
    /// the device notice at their next request, or when the mount goes away.
    public func exit() { fuse_session_exit(raw) }

    /// Whether the session was asked to end.
    public var hasExited: Bool { fuse_session_exited(raw) != 0 }

    /// Install libfuse's SIGINT/SIGTERM/SIGHUP (exit the loop) and SIGPIPE
    /// (ignore) handlers. Also unblocks SIGINT, SIGTERM and SIGHUP on the
    /// calling thread (a process started from a test thread may inherit them
    /// blocked); call it on the thread that will call ``run(multiThreaded:maxIdleThreads:maxThreads:)``.
    /// Process-wide: only one session may have them.
    public func installSignalHandlers() throws(FuseError) {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGHUP)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        guard fuse_set_signal_handlers(raw) == 0 else {
            throw FuseError("cannot install signal handlers")
        }
        state.withLock { $0.signalHandlers = true }
    }

    /// Restore the signal handlers replaced by ``installSignalHandlers()``.
    public func removeSignalHandlers() {
        let had = state.withLock { s -> Bool in
            defer { s.signalHandlers = false }
            return s.signalHandlers
        }
        if had { fuse_remove_signal_handlers(raw) }
    }

    // MARK: In-process loop (tests)

    /// Run the loop on a new pthread (not Swift's cooperative pool), for an
    /// in-process mount. Mount first. End it with ``stop()``.
    public func startLoopThread(multiThreaded: Bool = true, maxIdleThreads: Int = 4) throws(FuseError) {
        let box = LoopBox(session: raw, multiThreaded: multiThreaded, maxIdleThreads: maxIdleThreads)
        let arg = Unmanaged.passRetained(box).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { arg in
            guard let arg else { return nil }
            let box = Unmanaged<LoopBox>.fromOpaque(arg).takeRetainedValue()
            box.runLoop()
            return nil
        }, arg)
        guard rc == 0 else {
            Unmanaged<LoopBox>.fromOpaque(arg).release()
            throw FuseError("pthread_create failed: \(rc)")
        }
        state.withLock { s in
            s.loopThread = thread
            s.loopBox = box
        }
    }

    /// End an in-process mount started with ``startLoopThread(multiThreaded:maxIdleThreads:)``:
    /// lazily unmount the mount point (`umount2(MNT_DETACH)`), ask the loop
    /// to exit, and join its thread. Returns the loop's outcome.
    ///
    /// The loop ends when the kernel drops the connection, i.e. once no file
    /// on the mount is open any more: answer the filesystem's parked
    /// requests and close test file descriptors first, or this waits for them.
    @discardableResult
    public func stop() -> LoopOutcome? {
        let (thread, box, mountpoint) = state.withLock { s in
            defer { s.loopThread = nil; s.loopBox = nil; s.mountpoint = nil }
            return (s.loopThread, s.loopBox, s.mountpoint)
        }
        if let mountpoint { _ = umount2(mountpoint, Int32(MNT_DETACH)) }
        guard let thread else { return nil }
        fuse_session_exit(raw)
        pthread_join(thread, nil)
        // The device fd is closed (and the session left unmounted) by
        // fuse_session_unmount; call it now that the loop is over.
        if mountpoint != nil { fuse_session_unmount(raw) }
        return box?.outcome
    }
}

/// Carries a loop thread's parameters in and its outcome out.
private final class LoopBox: @unchecked Sendable {
    // The session joins the thread before it destroys `session`.
    let session: OpaquePointer
    let multiThreaded: Bool
    let maxIdleThreads: Int
    private let result = Mutex<LoopOutcome?>(nil)

    init(session: OpaquePointer, multiThreaded: Bool, maxIdleThreads: Int) {
        self.session = session
        self.multiThreaded = multiThreaded
        self.maxIdleThreads = maxIdleThreads
    }

    func runLoop() {
        let outcome = FuseSession.runLoop(session, multiThreaded: multiThreaded,
                                          maxIdleThreads: maxIdleThreads, maxThreads: 16)
        result.withLock { $0 = outcome }
    }

    var outcome: LoopOutcome? { result.withLock { $0 } }
}
