#if canImport(Glibc)
import Glibc
#endif

/// A filesystem served through libfuse's low-level API.
///
/// One method per FUSE operation. Each receives the ``Request`` and must
/// answer it exactly once — now, or later after ``Request/park()``. No
/// method may block for long: with the single-threaded loop, a blocked
/// callback stalls the whole mount.
///
/// Every method has a default (protocol extension) so a filesystem
/// implements only what it needs. Defaults answer ENOSYS, except where
/// ENOSYS would be wrong or a libfuse default exists:
/// `open`/`opendir` succeed with default ``OpenOptions``, `release`/
/// `releasedir` succeed, `forget` does nothing, `statfs` answers libfuse's
/// default (`f_namemax` 255, `f_bsize` 512), `ioctl` answers ENOTTY, and
/// `initialize`/`destroy`/`interrupted` do nothing.
/// (ENOSYS from `flush`, `access` and `poll` makes the kernel stop asking
/// and assume success / the default poll mask.)
///
/// Methods are called from libfuse's loop thread(s): concurrently when the
/// session runs multi-threaded. Name arguments are decoded from the
/// kernel's bytes as UTF-8, with invalid sequences repaired to U+FFFD.
/// Buffers passed in are valid only during the call.
public protocol FuseFilesystem: AnyObject, Sendable {
    /// The connection is being set up (`init`). Adjust `connection` to
    /// negotiate; `notifier` sends invalidations for this session.
    func initialize(connection: inout ConnectionSettings, notifier: FuseNotifier)
    /// The session is being torn down (`destroy`): the last callback.
    func destroy()

    /// The kernel interrupted the request whose ``Request/token`` is `token`.
    /// Called only for requests that ran ``Request/registerInterruptCallback()``.
    /// The request may already have been answered: act only if the token is
    /// still parked, and only the one that removes it replies.
    func interrupted(token: UInt64)

    /// Look up `name` in directory `parent`: ``Request/reply(entry:)`` (one
    /// lookup reference) or ENOENT.
    func lookup(_ request: consuming Request, parent: Inode, name: String)
    /// Drop `lookups` references on `inode`. No reply: the binding answers
    /// FORGET and BATCH_FORGET itself (`fuse_reply_none`).
    func forget(inode: Inode, lookups: UInt64)
    /// Attributes of `inode`: ``Request/reply(attr:timeout:)``.
    func getattr(_ request: consuming Request, inode: Inode, file: FileInfo?)
    /// Change the fields of `attributes` selected by `fields` (e.g. `.size` for
    /// O_TRUNC): answer with the resulting attributes.
    func setattr(_ request: consuming Request, inode: Inode, attributes: stat,
                 fields: SetAttributeFields, file: FileInfo?)
    /// Create a non-directory node (`mknod`, also used for O_CREAT without CREATE).
    func mknod(_ request: consuming Request, parent: Inode, name: String, mode: mode_t, device: dev_t)
    /// Create a directory.
    func mkdir(_ request: consuming Request, parent: Inode, name: String, mode: mode_t)
    /// Remove a non-directory: ``Request/reply(error:)`` with 0 on success.
    func unlink(_ request: consuming Request, parent: Inode, name: String)
    /// Remove a directory: 0 on success.
    func rmdir(_ request: consuming Request, parent: Inode, name: String)
    /// Rename; `flags` are `renameat2` flags (RENAME_NOREPLACE, RENAME_EXCHANGE).
    func rename(_ request: consuming Request, parent: Inode, name: String,
                newParent: Inode, newName: String, flags: UInt32)
    /// Make a symbolic link `name` in `parent` pointing at `target`.
    func symlink(_ request: consuming Request, target: String, parent: Inode, name: String)
    /// Make a hard link to `inode` named `newName` in `newParent`.
    func link(_ request: consuming Request, inode: Inode, newParent: Inode, newName: String)
    /// Open a file: ``Request/reply(open:)``. `file.flags` has the open flags.
    func open(_ request: consuming Request, inode: Inode, file: FileInfo)
    /// Read up to `size` bytes at `offset`: ``Request/reply(buffer:)`` (fewer
    /// bytes, or 0 for end of file), or park and answer later.
    func read(_ request: consuming Request, inode: Inode, size: Int, offset: Int64, file: FileInfo)
    /// Write `data` at `offset`: ``Request/reply(write:)``.
    func write(_ request: consuming Request, inode: Inode, data: UnsafeRawBufferPointer,
               offset: Int64, file: FileInfo)
    /// Called on every `close(2)` of a file descriptor for the open file.
    func flush(_ request: consuming Request, inode: Inode, file: FileInfo)
    /// The last reference to the open file description went away: 0.
    func release(_ request: consuming Request, inode: Inode, file: FileInfo)
    /// Open a directory: ``Request/reply(open:)``.
    func opendir(_ request: consuming Request, inode: Inode, file: FileInfo)
    /// List a directory: ``Request/reply(directoryEntries:size:offset:)``.
    func readdir(_ request: consuming Request, inode: Inode, size: Int, offset: Int64, file: FileInfo)
    /// Close a directory: 0.
    func releasedir(_ request: consuming Request, inode: Inode, file: FileInfo)
    /// Filesystem statistics: ``Request/reply(statfs:)``.
    func statfs(_ request: consuming Request, inode: Inode)
    /// Check access (only called without `default_permissions`): 0 or EACCES.
    func access(_ request: consuming Request, inode: Inode, mask: Int32)
    /// Create and open a file (`open(O_CREAT)`): ``Request/reply(create:open:)``.
    func create(_ request: consuming Request, parent: Inode, name: String, mode: mode_t, file: FileInfo)
    /// An `ioctl(2)` on an open file. `argument` is the caller's argument
    /// value (a number for `_IO` commands, an address otherwise). For
    /// `_IOW`/`_IOR` commands the kernel copies `input` from the caller and
    /// accepts up to `outputSize` bytes back. Answer
    /// ``Request/reply(ioctl:data:)`` or an errno (ENOTTY for unknown commands).
    func ioctl(_ request: consuming Request, inode: Inode, command: UInt32, argument: UInt64,
               file: FileInfo, flags: UInt32, input: UnsafeRawBufferPointer, outputSize: Int)
    /// Poll readiness: ``Request/reply(poll:)`` with the current events. If
    /// `handle` is given, keep it and ``PollHandle/notify()`` it when the events
    /// change (or destroy it).
    func poll(_ request: consuming Request, inode: Inode, file: FileInfo, handle: PollHandle?)
}

extension FuseFilesystem {
    public func initialize(connection: inout ConnectionSettings, notifier: FuseNotifier) {}
    public func destroy() {}
    public func interrupted(token: UInt64) {}

    public func lookup(_ request: consuming Request, parent: Inode, name: String) {
        request.reply(error: ENOSYS)
    }
    public func forget(inode: Inode, lookups: UInt64) {}
    public func getattr(_ request: consuming Request, inode: Inode, file: FileInfo?) {
        request.reply(error: ENOSYS)
    }
    public func setattr(_ request: consuming Request, inode: Inode, attributes: stat,
                        fields: SetAttributeFields, file: FileInfo?) {
        request.reply(error: ENOSYS)
    }
    public func mknod(_ request: consuming Request, parent: Inode, name: String, mode: mode_t, device: dev_t) {
        request.reply(error: ENOSYS)
    }
    public func mkdir(_ request: consuming Request, parent: Inode, name: String, mode: mode_t) {
        request.reply(error: ENOSYS)
    }
    public func unlink(_ request: consuming Request, parent: Inode, name: String) {
        request.reply(error: ENOSYS)
    }
    public func rmdir(_ request: consuming Request, parent: Inode, name: String) {
        request.reply(error: ENOSYS)
    }
    public func rename(_ request: consuming Request, parent: Inode, name: String,
                       newParent: Inode, newName: String, flags: UInt32) {
        request.reply(error: ENOSYS)
    }
    public func symlink(_ request: consuming Request, target: String, parent: Inode, name: String) {
        request.reply(error: ENOSYS)
    }
    public func link(_ request: consuming Request, inode: Inode, newParent: Inode, newName: String) {
        request.reply(error: ENOSYS)
    }
    public func open(_ request: consuming Request, inode: Inode, file: FileInfo) {
        request.reply(open: OpenOptions())
    }
    public func read(_ request: consuming Request, inode: Inode, size: Int, offset: Int64, file: FileInfo) {
        request.reply(error: ENOSYS)
    }
    public func write(_ request: consuming Request, inode: Inode, data: UnsafeRawBufferPointer,
                      offset: Int64, file: FileInfo) {
        request.reply(error: ENOSYS)
    }
    public func flush(_ request: consuming Request, inode: Inode, file: FileInfo) {
        request.reply(error: ENOSYS)
    }
    public func release(_ request: consuming Request, inode: Inode, file: FileInfo) {
        request.reply(error: 0)
    }
    public func opendir(_ request: consuming Request, inode: Inode, file: FileInfo) {
        request.reply(open: OpenOptions())
    }
    public func readdir(_ request: consuming Request, inode: Inode, size: Int, offset: Int64, file: FileInfo) {
        request.reply(error: ENOSYS)
    }
    public func releasedir(_ request: consuming Request, inode: Inode, file: FileInfo) {
        request.reply(error: 0)
    }
    public func statfs(_ request: consuming Request, inode: Inode) {
        var s = statvfs()
        s.f_namemax = 255
        s.f_bsize = 512
        request.reply(statfs: s)
    }
    public func access(_ request: consuming Request, inode: Inode, mask: Int32) {
        request.reply(error: ENOSYS)
    }
    public func create(_ request: consuming Request, parent: Inode, name: String, mode: mode_t, file: FileInfo) {
        request.reply(error: ENOSYS)
    }
    public func ioctl(_ request: consuming Request, inode: Inode, command: UInt32, argument: UInt64,
                      file: FileInfo, flags: UInt32, input: UnsafeRawBufferPointer, outputSize: Int) {
        request.reply(error: ENOTTY)
    }
    public func poll(_ request: consuming Request, inode: Inode, file: FileInfo, handle: PollHandle?) {
        handle?.destroy()
        request.reply(error: ENOSYS)
    }
}
