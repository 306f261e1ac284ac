import FuseBinding
import SystemSources
import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

// The ioctls libwqfs-compat.so sends a queue file (include/wqfs/compat.h, DESIGN.md
// §7). Each carries its size in its number, so FUSE brings an `_IOW` command's
// bytes as the request's input.
extension WatchQueueFileSystem {
    /// `WQFS_IOC_ANONYMOUS`, `_IO('W', 0x70)`.
    static let anonymousCommand: UInt32 = 0x5770
    /// `WQFS_IOC_SET_FILTER`, `_IOW('W', 0x71, struct wqfs_filter_request)` (712 bytes).
    static let setFilterCommand: UInt32 = 0x4000_0000 | UInt32(filterRequestSize) << 16 | 0x5771
    /// `WQFS_IOC_WATCH_KEY`, `_IOW('W', 0x72, struct wqfs_watch_key_request)` (8 bytes).
    static let watchKeyCommand: UInt32 = 0x4008_5772
    /// `struct wqfs_filter_request`: the header and room for 16 entries.
    static let filterRequestSize = KernelFilter.headerSize + KernelFilter.maxEntries * KernelFilter.entrySize

    static let compatCommands: Set<UInt32> = [anonymousCommand, setFilterCommand, watchKeyCommand]

    /// Answers one of `compatCommands` on the queue file of `queue`.
    func compatIoctl(_ request: consuming Request, queue: QueueID, command: UInt32, input: UnsafeRawBufferPointer) {
        let name: String
        let outcome: Result<Wakeups, WQError>
        switch command {
        case Self.anonymousCommand:
            name = "WQFS_IOC_ANONYMOUS"
            outcome = Result { () throws(WQError) in try engine.makeAnonymous(queue, caller: Credentials(uid: request.uid, gid: request.gid)) }
        case Self.setFilterCommand:
            name = "WQFS_IOC_SET_FILTER"
            outcome = Result { () throws(WQError) in
                try engine.setKernelFilter(of: queue, input)
                return Wakeups()
            }
        default:
            name = "WQFS_IOC_WATCH_KEY"
            let caller = Credentials(uid: request.uid, gid: request.gid, groups: request.supplementaryGroups())
            outcome = Result { () throws(WQError) in try watchKey(from: queue, input, caller: caller) }
        }
        switch outcome {
        case .success(let wakeups):
            _ = request.reply(ioctl: 0)
            deliver(wakeups)
        case .failure(let error):
            errors.record(path: path(of: .queue(queue, .queue)), uid: request.uid, input: "ioctl \(name)", error: error)
            _ = request.reply(error: error.errno)
        }
    }

    /// `WQFS_IOC_WATCH_KEY`: `KEYCTL_WATCH_KEY` after the shim's checks in the
    /// caller's credentials. The server checks View again itself (the ioctl can come
    /// from anyone holding the queue), then answers as the kernel: EBUSY, EAGAIN,
    /// EBADSLT.
    private func watchKey(from queue: QueueID, _ input: UnsafeRawBufferPointer, caller: Credentials) throws(WQError) -> Wakeups {
        guard input.count >= 8 else { throw WQError(EINVAL, "a key watch request is 8 bytes, got \(input.count)") }
        let serial = Int32(littleEndian: input.loadUnaligned(as: Int32.self))
        let watchID = Int32(littleEndian: input.loadUnaligned(fromByteOffset: 4, as: Int32.self))
        guard (-1...255).contains(watchID) else { throw WQError(EINVAL, "watch id \(watchID) is outside -1..255") }
        try admitKeyWatch(serial, caller: caller)
        guard let source = engine.keySource(serial: serial, create: true) else { throw WQError(ENOKEY, "no key \(serial)") }
        return try engine.watchKey(source, from: queue, watchID: watchID, caller: caller)
    }

    /// Before any new watch on a key: the caller must be allowed to view it, and the
    /// changes already made are taken in first, so the watch sees only later ones
    /// (as the kernel's does).
    func admitKeyWatch(_ serial: Int32, caller: Credentials) throws(WQError) {
        try KeyAccess.describe(serial, as: caller).get().checkView(by: caller)
        system?.synchronizeKeysBeforeWatch()
    }
}
