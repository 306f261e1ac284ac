import Synchronization
#if WQFS_TSAN && canImport(Glibc)
import Glibc
#endif

/// A `Mutex` that ThreadSanitizer can see.
///
/// On Linux, Synchronization's `Mutex` locks with futexes inside the standard
/// library, which is not instrumented: TSan sees no ordering between two critical
/// sections and reports every access a Mutex guards as a race (four threads adding
/// one under a Mutex are reported, and still count right). Builds for TSan
/// (`-DWQFS_TSAN`, as `mount-scripts/sanitize thread` makes them) also take a
/// pthread mutex, which TSan intercepts, inside each critical section; every other
/// build is a plain `Mutex` with nothing added.
public struct Locked<Value: ~Copyable>: ~Copyable, @unchecked Sendable {
    // Visible to inlined code: withLock is specialized in the caller's module (a
    // generic call across modules asked the runtime for Locked<T>'s metadata on
    // every call, on the event thread's hot path too).
    @usableFromInline let mutex: Mutex<Value>
    #if WQFS_TSAN
    @usableFromInline let shadow: UnsafeMutablePointer<pthread_mutex_t>
    #endif

    public init(_ value: consuming sending Value) {
        mutex = Mutex(value)
        #if WQFS_TSAN
        shadow = .allocate(capacity: 1)
        pthread_mutex_init(shadow, nil)
        #endif
    }

    #if WQFS_TSAN
    deinit {
        pthread_mutex_destroy(shadow)
        shadow.deallocate()
    }
    #endif

    /// `Mutex.withLock`.
    @inlinable @inline(__always)
    public borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        try mutex.withLock { (value: inout sending Value) throws(E) -> sending Result in
            #if WQFS_TSAN
            pthread_mutex_lock(shadow)
            defer { pthread_mutex_unlock(shadow) }
            #endif
            return try body(&value)
        }
    }
}
