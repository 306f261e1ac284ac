import CKeyObserver
import KeyObserverBPF
#if canImport(Glibc)
import Glibc
#endif

/// Why the observer could not start: the errno and a sentence (not root, BPF refused
/// with the verifier's last words, no tracefs…).
public struct KeyObserverError: Error, Hashable, Sendable, CustomStringConvertible {
    public var errno: Int32
    public var reason: String

    public init(errno: Int32, reason: String) {
        self.errno = errno
        self.reason = reason
    }

    public var description: String { reason }
}

/// The BPF key observer (SOURCES.md, "Keys"): every successful key-changing
/// `keyctl`, `add_key` and `request_key` of every process, read from syscall
/// tracepoints. Root only.
///
/// It starts no thread: wait for `EPOLLIN` on `fileDescriptor` in the caller's event
/// loop and call `consume` then. Use it from one thread at a time.
public final class KeyObserver {
    private let handle: OpaquePointer
    /// (uid, −4 or −5) → serial: the user keyrings rarely change, and resolving one
    /// costs a thread. An invalidated or revoked serial leaves the cache.
    private var userKeyrings: [UInt64: Int32] = [:]

    /// Loads and attaches the program with a ring of `ringBytes` (a power of two of
    /// pages; events are 96 or 384 bytes).
    public init(ringBytes: Int = 256 * 1024) throws(KeyObserverError) {
        let object = KeyObserverProgram.object
        guard !object.isEmpty else { throw KeyObserverError(errno: EINVAL, reason: "the embedded BPF program is empty") }
        var reason = [CChar](repeating: 0, count: 512)
        var observer: OpaquePointer?
        let error = object.withUnsafeBytes { bytes in
            wq_key_observer_open(bytes.baseAddress, bytes.count, max(0, ringBytes), &observer, &reason, reason.count)
        }
        guard error == 0, let observer else {
            let text = reason.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw KeyObserverError(errno: error, reason: text.isEmpty ? String(cString: strerror(error)) : text)
        }
        handle = observer
    }

    deinit { wq_key_observer_close(handle) }

    /// The descriptor that is readable (`EPOLLIN`) when events wait.
    public var fileDescriptor: Int32 { wq_key_observer_fd(handle) }

    /// The program's counts: events sent, events dropped because the ring was full
    /// (a caller should resynchronise), and exits whose entry was gone.
    public var counters: (sent: UInt64, dropped: UInt64, unmatched: UInt64) {
        var sent: UInt64 = 0, dropped: UInt64 = 0, unmatched: UInt64 = 0
        _ = wq_key_observer_counters(handle, &sent, &dropped, &unmatched)
        return (sent, dropped, unmatched)
    }

    private struct Consumer {
        let observer: KeyObserver
        let handler: (Result<KeyEvent, KeyEventDecodeError>) -> Void
    }

    /// Hands every waiting event to `handler`, decoded and with @u/@us resolved, without
    /// blocking; returns how many there were, or a negative errno.
    @discardableResult
    public func consume(_ handler: (Result<KeyEvent, KeyEventDecodeError>) -> Void) -> Int {
        withoutActuallyEscaping(handler) { handler in
            var consumer = Consumer(observer: self, handler: handler)
            return Int(withUnsafeMutablePointer(to: &consumer) { pointer in
                wq_key_observer_consume(handle, { context, data, size in
                    let consumer = context!.assumingMemoryBound(to: Consumer.self).pointee
                    consumer.observer.deliver(UnsafeRawBufferPointer(start: data, count: size), to: consumer.handler)
                    return 0
                }, pointer)
            })
        }
    }

    private func deliver(_ bytes: UnsafeRawBufferPointer, to handler: (Result<KeyEvent, KeyEventDecodeError>) -> Void) {
        do throws(KeyEventDecodeError) {
            let event = try KeyEvent(decoding: bytes).resolvingUserKeyrings { uid, id in
                let key = UInt64(uid) << 32 | UInt64(UInt32(bitPattern: id))
                if let serial = userKeyrings[key] { return serial }
                guard case .success(let serial) = Self.resolveUserKeyring(uid: uid, id: id) else { return nil }
                userKeyrings[key] = serial
                return serial
            }
            switch event.operation {
            case .invalidated(.serial(let serial)), .revoked(.serial(let serial)):
                userKeyrings = userKeyrings.filter { $0.value != serial }
            default: break
            }
            handler(.success(event))
        } catch {
            handler(.failure(error))
        }
    }

    /// The serial of `uid`'s user keyring (`id` −4) or user-session keyring (−5), as
    /// that user's own `keyctl` would find it (made if missing), or the errno. Runs on
    /// a short-lived thread that alone takes the uid; needs root for another uid.
    public static func resolveUserKeyring(uid: UInt32, id: Int32) -> Result<Int32, KeyObserverError> {
        var serial: Int32 = 0
        let error = wq_key_resolve_user_keyring(uid, id, &serial)
        guard error == 0 else {
            return .failure(KeyObserverError(errno: error, reason: "resolving keyring \(id) of uid \(uid): \(String(cString: strerror(error)))"))
        }
        return .success(serial)
    }
}
