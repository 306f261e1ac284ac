import CFuse
#if canImport(Glibc)
import Glibc
#endif

/// One kernel request (`fuse_req_t`) that must be answered exactly once.
///
/// `Request` is non-copyable and every reply is `consuming`, so answering
/// twice does not compile. Dropping a request without replying is also
/// impossible to get wrong silently: `deinit` answers EIO and writes a
/// one-line bug note to fd 2.
///
/// A request may be answered from any thread, after the callback that
/// received it has returned. To keep one for later (a read on an empty
/// queue), turn it into a copyable ``ParkedRequest`` with ``park()``.
///
/// Every reply returns libfuse's result: 0, or a negative errno when the
/// reply could not be delivered (e.g. `-ENOENT` when the kernel no longer
/// waits for it). The request is finished either way.
public struct Request: ~Copyable, @unchecked Sendable {
    let raw: OpaquePointer

    init(_ raw: OpaquePointer) { self.raw = raw }

    deinit {
        let note = "wqfs: BUG: a FUSE request was dropped without a reply; answering EIO\n"
        note.utf8CString.withUnsafeBufferPointer { buf in
            _ = Glibc.write(2, buf.baseAddress, buf.count - 1)
        }
        fuse_reply_err(raw, EIO)
    }

    // MARK: Caller

    private var context: fuse_ctx { fuse_req_ctx(raw).pointee }

    /// User id of the calling process.
    public var uid: uid_t { context.uid }
    /// Group id of the calling process.
    public var gid: gid_t { context.gid }
    /// Thread id of the calling process (0 if outside our pid namespace).
    public var pid: pid_t { context.pid }
    /// The caller's umask (meaningful for MKNOD, MKDIR, CREATE).
    public var umask: mode_t { context.umask }

    /// The caller's supplementary groups (read from `/proc/PID/task/…/status`
    /// by libfuse; empty if it cannot be read, e.g. the caller exited).
    public func supplementaryGroups() -> [gid_t] {
        var capacity = 32
        while true {
            var groups = [gid_t](repeating: 0, count: capacity)
            let n = groups.withUnsafeMutableBufferPointer {
                fuse_req_getgroups(raw, Int32(capacity), $0.baseAddress)
            }
            if n < 0 { return [] }
            if Int(n) <= capacity { return Array(groups.prefix(Int(n))) }
            capacity = Int(n)
        }
    }

    /// The kernel has sent an INTERRUPT for this request (the caller got a
    /// signal). The request must still be answered; EINTR is the usual answer.
    public var isInterrupted: Bool { fuse_req_interrupted(raw) != 0 }

    /// The value this request's ``ParkedRequest/token`` and the token passed to
    /// ``FuseFilesystem/interrupted(token:)`` will have.
    public var token: UInt64 { UInt64(UInt(bitPattern: raw)) }

    /// Ask libfuse to call ``FuseFilesystem/interrupted(token:)`` with this
    /// request's ``token`` when the kernel interrupts it.
    ///
    /// Call it *before* parking the request and outside any lock the
    /// filesystem's `interrupted(token:)` takes: if the request is already
    /// interrupted, libfuse calls back immediately, on this thread. Then,
    /// under the lock, take data if there is some, else answer EINTR if
    /// ``isInterrupted``, else park. The callback may also arrive just after
    /// the request was answered elsewhere: treat a token that is not in the
    /// parked set as "nothing to do". While the callback runs, libfuse keeps
    /// the request's memory alive, so a token cannot be reused by a new
    /// request during it.
    public func registerInterruptCallback() {
        fuse_req_interrupt_func(raw, interruptTrampoline, nil)
    }

    // MARK: Deferring

    /// Turn the request into a copyable token to answer later, from any thread.
    public consuming func park() -> ParkedRequest {
        let parked = ParkedRequest(raw: raw)
        discard self
        return parked
    }

    // MARK: Replies

    /// Answer with an errno (`0` means success for requests that carry no
    /// data: UNLINK, RMDIR, RENAME, FLUSH, RELEASE, RELEASEDIR, SETXATTR, ACCESS…).
    @discardableResult
    public consuming func reply(error: Int32) -> Int32 {
        let r = fuse_reply_err(raw, error)
        discard self
        return r
    }

    /// Answer LOOKUP, MKNOD, MKDIR with a directory entry.
    @discardableResult
    public consuming func reply(entry: EntryReply) -> Int32 {
        var param = Self.entryParam(entry)
        let r = fuse_reply_entry(raw, &param)
        discard self
        return r
    }

    /// Answer GETATTR or SETATTR with attributes valid for `timeout` seconds.
    @discardableResult
    public consuming func reply(attr: stat, timeout: Double) -> Int32 {
        var attr = attr
        let r = fuse_reply_attr(raw, &attr, timeout)
        discard self
        return r
    }

    /// Answer OPEN or OPENDIR.
    ///
    /// With ``OpenOptions/stream`` the reply is written as the kernel's raw
    /// `fuse_open_out`, because libfuse 3.14 cannot carry `FOPEN_STREAM`.
    @discardableResult
    public consuming func reply(open options: OpenOptions) -> Int32 {
        let r: Int32
        if options.stream {
            r = cfuse_reply_open_flags(raw, options.handle, options.kernelOpenFlags)
        } else {
            var fi = options.fileInfo
            r = fuse_reply_open(raw, &fi)
        }
        discard self
        return r
    }

    /// Answer CREATE with the new entry and how it is opened.
    /// ``OpenOptions/stream`` is not supported here and is ignored (libfuse
    /// builds this reply); a file that must be a stream should be reopened.
    @discardableResult
    public consuming func reply(create entry: EntryReply, open options: OpenOptions) -> Int32 {
        var param = Self.entryParam(entry)
        var fi = options.fileInfo
        let r = fuse_reply_create(raw, &param, &fi)
        discard self
        return r
    }

    /// Answer WRITE with the number of bytes written.
    @discardableResult
    public consuming func reply(write count: Int) -> Int32 {
        let r = fuse_reply_write(raw, count)
        discard self
        return r
    }

    /// Answer READ (or READDIR) with bytes. The buffer is copied before return.
    @discardableResult
    public consuming func reply(buffer: UnsafeRawBufferPointer) -> Int32 {
        let r = fuse_reply_buf(raw, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), buffer.count)
        discard self
        return r
    }

    /// Answer READ with bytes (convenience for ``reply(buffer:)``).
    @discardableResult
    public consuming func reply(data: [UInt8]) -> Int32 {
        let r = data.withUnsafeBytes { buf in
            fuse_reply_buf(raw, buf.baseAddress?.assumingMemoryBound(to: CChar.self), buf.count)
        }
        discard self
        return r
    }

    /// Answer STATFS.
    @discardableResult
    public consuming func reply(statfs: statvfs) -> Int32 {
        var s = statfs
        let r = fuse_reply_statfs(raw, &s)
        discard self
        return r
    }

    /// Answer IOCTL: `result` becomes the caller's `ioctl(2)` return value
    /// (use ``reply(error:)`` for a failure), `data` the bytes copied to the
    /// caller's argument (at most the request's output size).
    @discardableResult
    public consuming func reply(ioctl result: Int32, data: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) -> Int32 {
        let r = fuse_reply_ioctl(raw, result, data.baseAddress, data.count)
        discard self
        return r
    }

    /// Answer IOCTL with a byte array as output (convenience).
    @discardableResult
    public consuming func reply(ioctl result: Int32, bytes: [UInt8]) -> Int32 {
        let r = bytes.withUnsafeBytes { fuse_reply_ioctl(raw, result, $0.baseAddress, $0.count) }
        discard self
        return r
    }

    /// Answer POLL with the events ready now (`POLLIN`, `POLLHUP`, …).
    @discardableResult
    public consuming func reply(poll revents: UInt32) -> Int32 {
        let r = fuse_reply_poll(raw, revents)
        discard self
        return r
    }

    /// Answer READDIR: pack `entries` with `fuse_add_direntry` into at most
    /// `size` bytes, starting at `offset`.
    ///
    /// Offsets are positions in `entries`: the entry at index *i* is sent
    /// with next-offset *i + 1*, so the kernel's next READDIR resumes after
    /// it. Entries before `offset` are skipped; packing stops at the first
    /// entry that does not fit. Pass the same entries (in the same order) on
    /// every call for one open directory, including "." and "..".
    @discardableResult
    public consuming func reply<C: Collection>(directoryEntries entries: C, size: Int, offset: Int64) -> Int32
    where C.Element == DirectoryEntry {
        let capacity = max(size, 0)
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: max(capacity, 1))
        defer { buffer.deallocate() }
        var used = 0
        var index = max(offset, 0)
        // An array skips to `offset` at once, so a long listing costs one pass.
        for entry in entries.dropFirst(Int(clamping: index)) {
            defer { index += 1 }
            var st = stat()
            st.st_ino = ino_t(entry.inode)
            st.st_mode = entry.mode
            let room = capacity - used
            let needed = entry.name.withCString { name in
                fuse_add_direntry(raw, buffer + used, room, name, &st, off_t(index + 1))
            }
            if needed > room { break }
            used += needed
        }
        let r = fuse_reply_buf(raw, buffer, used)
        discard self
        return r
    }

    static func entryParam(_ entry: EntryReply) -> fuse_entry_param {
        var param = fuse_entry_param()
        param.ino = entry.inode
        param.generation = entry.generation
        param.attr = entry.attributes
        param.attr.st_ino = ino_t(entry.inode)
        param.attr_timeout = entry.attributeTimeout
        param.entry_timeout = entry.entryTimeout
        return param
    }
}

/// A request taken out of its callback to be answered later, reduced to a
/// plain token so a filesystem can keep it in ordinary (locked) state.
///
/// Ownership rule: a parked request must be reclaimed and answered exactly
/// once. When several threads can find it (a writer delivering data, the
/// interrupt callback, teardown), **whoever removes the token from the
/// parked set owns the reply**; everyone else must leave it alone.
/// Reclaiming a token twice, or a token that was already answered, is a
/// use-after-free in libfuse.
public struct ParkedRequest: Sendable, Hashable {
    /// The request's pointer bits. Equal to ``Request/token`` and to the token
    /// passed to ``FuseFilesystem/interrupted(token:)``.
    public let token: UInt64

    init(raw: OpaquePointer) { token = UInt64(UInt(bitPattern: raw)) }

    /// Rebuild a parked request from a token obtained from ``token``.
    /// Unsafe: the token must come from a parked request that has not been
    /// reclaimed yet.
    public init(unsafeReclaimingToken token: UInt64) { self.token = token }

    /// Take the request back to answer it. Call at most once per park.
    public consuming func reclaim() -> Request {
        guard let raw = OpaquePointer(bitPattern: UInt(token)) else {
            preconditionFailure("ParkedRequest with a null token")
        }
        return Request(raw)
    }
}

/// C callback for `fuse_req_interrupt_func`: find the filesystem through the
/// session userdata and tell it which request was interrupted.
private func interruptTrampoline(_ req: OpaquePointer?, _ data: UnsafeMutableRawPointer?) {
    guard let req, let ctx = SessionContext.from(request: req) else { return }
    ctx.filesystem.interrupted(token: UInt64(UInt(bitPattern: req)))
}
