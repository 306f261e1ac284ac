import CFuse

/// A kernel poll registration (`struct fuse_pollhandle *`) received with a
/// POLL request.
///
/// It is one-shot: notify it once when readiness changes (that wakes every
/// `poll(2)` waiting on the file), or destroy it if it is no longer needed.
/// The kernel sends a fresh handle with its next POLL. Every handle must end
/// in exactly one ``notify()`` or ``destroy()``; keep unnotified ones in
/// locked state and destroy the leftovers at teardown. Copies share the one
/// handle: use only one of them.
public struct PollHandle: Sendable, Hashable {
    /// The handle's pointer bits (for keeping handles as plain integers).
    public let token: UInt64

    init(_ raw: OpaquePointer) { token = UInt64(UInt(bitPattern: raw)) }

    /// Rebuild a handle from ``token``. Unsafe: the handle must not have been
    /// notified or destroyed yet.
    public init(unsafeReclaimingToken token: UInt64) { self.token = token }

    private var raw: OpaquePointer {
        guard let p = OpaquePointer(bitPattern: UInt(token)) else {
            preconditionFailure("PollHandle with a null token")
        }
        return p
    }

    /// Wake the pollers (`fuse_lowlevel_notify_poll`) and free the handle.
    /// Returns 0 or a negative errno (the handle is freed either way).
    @discardableResult
    public consuming func notify() -> Int32 {
        let p = raw
        let r = fuse_lowlevel_notify_poll(p)
        fuse_pollhandle_destroy(p)
        return r
    }

    /// Free the handle without notifying.
    public consuming func destroy() {
        fuse_pollhandle_destroy(raw)
    }
}
