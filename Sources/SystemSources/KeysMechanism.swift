import CKeyObserver
import CSystemCalls
import KeyObserver
import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// Key changes as the kernel's key notifications (type 1, 16 bytes: u32 key, u32
/// aux), posted to the sources of the keys they concern (`keys/SERIAL`, DESIGN.md §6),
/// record for record as COMPAT.md's table says the kernel posts them.
///
/// Nothing in this kernel announces key changes, so the changes are observed: by
/// BPF on the `keyctl`, `add_key` and `request_key` syscall tracepoints (root), which
/// sees every process's calls and needs nothing preloaded; or, where BPF cannot be
/// had, by comparing what `KEYCTL_DESCRIBE` and `KEYCTL_READ` say of each watched
/// key once a second, which misses what the status says. A watched key that goes
/// away (the kernel's garbage collector destroys it, out of any syscall) is noticed
/// by a check made a while after each change that may free it.
final class KeysMechanism: @unchecked Sendable {
    private let engine: Engine
    /// Answers what the posts made due; set by the event thread when it starts.
    var deliver: @Sendable (Wakeups) -> Void = { _ in }
    /// Event-thread state.
    private var observer: KeyObserver?
    private var timer: Int32 = -1
    /// Serials the observer has seen or found: `add_key` returning one of them
    /// updated it; any other serial is a new key.
    private var known: Set<Int32> = []
    /// Revoked or invalidated already: the kernel notifies only the first time.
    private var revoked: Set<Int32> = [], invalidated: Set<Int32> = []
    /// What the comparing fallback last saw of each watched key.
    private var seen: [Int32: KeySnapshot] = [:]
    private let counters = Locked(MechanismCounters())
    /// Why BPF could not be had (the fallback is in use), or nil.
    private let bpfUnavailable: String?

    /// How long after a change that may free a key it is looked for again; the
    /// kernel's garbage collector runs soon after the last link goes.
    private static let goneCheckDelay = 1.0
    /// The fallback's period, while a key is watched.
    private static let comparePeriod = 1.0

    init(engine: Engine) {
        self.engine = engine
        // Loading BPF needs root; whether the kernel takes the program is known only
        // when it is loaded, once a key is watched (a refusal then falls back).
        bpfUnavailable = geteuid() == 0 ? nil : "BPF needs root"
        let mechanism = bpfUnavailable == nil ? "bpf" : "compare"
        counters.withLock { $0.details = [("via", mechanism)] + (bpfUnavailable.map { [("bpf", $0)] } ?? []) }
    }

    /// Opens the observer while some key is watched, closes it when none is.
    func adjust(watched: Int) -> [Descriptor] {
        guard watched > 0 else {
            observer = nil
            closeTimer()
            counters.withLock { $0.open = false }
            return []
        }
        if timer < 0 { timer = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC)) }
        if bpfUnavailable == nil, observer == nil {
            do {
                observer = try KeyObserver()
                known = Set(Self.visibleKeys())
            } catch {
                counters.withLock {
                    $0.lastError = error.reason
                    $0.details = [("via", "compare"), ("bpf", error.reason)]
                }
            }
        }
        if observer == nil { arm(after: Self.comparePeriod) }
        counters.withLock { $0.open = true }
        return [observer.map { Descriptor(fd: $0.fileDescriptor, events: EPOLLIN.rawValue) },
                timer >= 0 ? Descriptor(fd: timer, events: EPOLLIN.rawValue) : nil].compactMap { $0 }
    }

    func ready(_ fd: Int32) {
        if let observer, fd == observer.fileDescriptor {
            readObserver(observer)
        } else if fd == timer {
            var expirations: UInt64 = 0
            _ = Glibc.read(timer, &expirations, 8)
            if observer == nil { compare() }
            checkGone()
        }
    }

    /// Takes in every event the ring holds now (for `SystemSources.synchronizeKeys`).
    func drain() {
        if let observer { readObserver(observer) }
    }

    var status: String {
        counters.withLock { $0 }.text(mechanism: "keys")
    }

    /// The line for the mount's README.
    var summary: String {
        bpfUnavailable.map { "compare (BPF unavailable: \($0)); see keys/SERIAL/status" }
            ?? "ready, BPF on the keyctl/add_key/request_key tracepoints; opened while a key is watched"
    }

    // MARK: BPF events

    private func readObserver(_ observer: KeyObserver) {
        var events: UInt64 = 0, ignored: UInt64 = 0, posted: UInt64 = 0
        var mayFree = false
        observer.consume { result in
            guard case .success(let event) = result else {
                ignored += 1
                return
            }
            events += 1
            for (key, subtype, aux) in records(for: event.operation) {
                if post(key: key, subtype, aux: aux) { posted += 1 }
            }
            switch event.operation {
            case .unlinked, .cleared, .revoked, .invalidated, .moved, .timeoutSet: mayFree = true
            default: break
            }
        }
        let kernel = observer.counters
        let dropped = kernel.dropped
        counters.withLock { counts in
            counts.details = counts.details.filter { !["sent", "unmatched"].contains($0.0) }
                + [("sent", "\(kernel.sent)"), ("unmatched", "\(kernel.unmatched)")]
            counts.events += events
            counts.ignored += ignored
            counts.records += posted
            if dropped > counts.overflows {
                // The ring was full: the kernel dropped events. Every watcher is told.
                for (_, source) in engine.watchedKeys() { deliver(engine.reportLoss(on: source)) }
                counts.overflows = dropped
            }
        }
        if mayFree { arm(after: Self.goneCheckDelay) }
        if known.count > Self.maxKnown { forgetDeadKeys() }
    }

    /// How many serials `known` may hold before the dead ones are dropped: a machine
    /// that makes keys for ever must not grow the server for ever.
    static let maxKnown = 1 << 16

    /// Keeps, of the serials seen, those /proc/keys still shows. A live key the
    /// server may not view is forgotten too: a later `add_key` over it would be
    /// told as a new key, as for such keys present at start.
    private func forgetDeadKeys() {
        known = Set(Self.visibleKeys())
        revoked.formIntersection(known)
        invalidated.formIntersection(known)
    }

    /// The records the kernel posts for a successful operation: (the key or keyring
    /// posted on, subtype, aux).
    private func records(for operation: KeyOperation) -> [(Int32, KeySubtype, UInt32)] {
        func serial(_ reference: KeyReference?) -> Int32? {
            if case .serial(let serial)? = reference { serial } else { nil }
        }
        func link(_ key: Int32, into keyring: KeyReference?) -> [(Int32, KeySubtype, UInt32)] {
            serial(keyring).map { [($0, .linked, UInt32(bitPattern: key))] } ?? []
        }
        switch operation {
        case .added(let key, let keyring, _, _):
            // add_key over a key of the same type and description updates it.
            defer { known.insert(key) }
            return known.contains(key) ? [(key, .updated, 0)] : [(key, .instantiated, 0)] + link(key, into: keyring)
        case .requested(let key, let destination, _, _):
            known.insert(key)
            return link(key, into: destination)
        case .updated(let key):
            return serial(key).map { [($0, .updated, 0)] } ?? []
        case .revoked(let key):
            guard let key = serial(key), revoked.insert(key).inserted else { return [] }
            return [(key, .revoked, 0)]
        case .invalidated(let key):
            guard let key = serial(key), invalidated.insert(key).inserted else { return [] }
            return [(key, .invalidated, 0)]
        case .ownerChanged(let key, _, _), .permissionsSet(let key, _), .timeoutSet(let key, _), .restricted(let key):
            return serial(key).map { [($0, .setattr, 0)] } ?? []
        case .cleared(let keyring):
            return serial(keyring).map { [($0, .cleared, 0)] } ?? []
        case .linked(let key, let keyring):
            return serial(key).map { link($0, into: keyring) } ?? []
        case .unlinked(let key, let keyring):
            guard let key = serial(key), let keyring = serial(keyring) else { return [] }
            return [(keyring, .unlinked, UInt32(bitPattern: key))]
        case .instantiated(let key, let keyring):
            guard let key = serial(key) else { return [] }
            known.insert(key)
            return [(key, .instantiated, 0)] + link(key, into: keyring)
        case .negated(let key, let error, _, let keyring):
            guard let key = serial(key) else { return [] }
            known.insert(key)
            // A negative key's instantiation carries minus the errno.
            return [(key, .instantiated, UInt32(bitPattern: -error))] + link(key, into: keyring)
        case .moved(let key, let from, let to, _):
            guard let key = serial(key), let from = serial(from) else { return [] }
            return [(from, .unlinked, UInt32(bitPattern: key))] + link(key, into: to)
        }
    }

    /// Posts one key record to the source of `key`, if a queue watches it.
    @discardableResult
    private func post(key: Int32, _ subtype: KeySubtype, aux: UInt32) -> Bool {
        guard let source = engine.keySource(serial: key, create: false) else { return false }
        var record = (UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &record) { bytes in
            RecordHeader(type: NotificationType.keyNotify, subtype: subtype.rawValue, info: 16).store(to: bytes.baseAddress!)
            bytes.storeBytes(of: UInt32(bitPattern: key).littleEndian, toByteOffset: 8, as: UInt32.self)
            bytes.storeBytes(of: aux.littleEndian, toByteOffset: 12, as: UInt32.self)
            deliver(engine.postSystem(UnsafeRawBufferPointer(bytes), count: 1, to: source))
            return true
        }
    }

    // MARK: keys that go away

    /// Each watched key that no longer exists: its watchers get the removal record.
    private func checkGone() {
        var pending = false
        for (serial, _) in engine.watchedKeys() {
            switch KeyAccess.describe(serial) {
            case .failure(let error) where error.errno == ENOKEY:
                deliver(engine.keyGone(serial: serial))
                seen[serial] = nil
            case .failure(let error) where error.errno == EKEYREVOKED || error.errno == EKEYEXPIRED:
                // Dead but not yet collected: look again later.
                pending = true
            default:
                break
            }
        }
        if pending { arm(after: 10) }
    }

    // MARK: the fallback: comparing

    /// What the fallback can see of a key.
    private struct KeySnapshot: Equatable {
        var access: KeyAccess?
        var revoked = false
        /// A keyring's members, or a key's payload, where the server may read it.
        var contents: [UInt8]?
    }

    /// Compares each watched key with what was seen a period ago and posts the
    /// difference: setattr for owner and permission changes, revoked, linked and
    /// unlinked members of keyrings, updated payloads. It cannot see an update that
    /// leaves the payload as it was, changes undone within a period, or keys the
    /// server may not view or read.
    private func compare() {
        for (serial, _) in engine.watchedKeys() {
            let now = Self.snapshot(serial)
            defer { seen[serial] = now }
            guard let before = seen[serial] else { continue }
            if now.revoked && !before.revoked, revoked.insert(serial).inserted { post(key: serial, .revoked, aux: 0) }
            if let a = before.access, let b = now.access, (a.uid, a.gid, a.permissions) != (b.uid, b.gid, b.permissions) {
                post(key: serial, .setattr, aux: 0)
            }
            guard let old = before.contents, let new = now.contents, old != new else { continue }
            if now.access?.type == "keyring" {
                let (was, isNow) = (Set(Self.serials(old)), Set(Self.serials(new)))
                if isNow.isEmpty && !was.isEmpty {
                    post(key: serial, .cleared, aux: 0)
                } else {
                    for member in was.subtracting(isNow).sorted() { post(key: serial, .unlinked, aux: UInt32(bitPattern: member)) }
                    for member in isNow.subtracting(was).sorted() { post(key: serial, .linked, aux: UInt32(bitPattern: member)) }
                }
            } else {
                post(key: serial, .updated, aux: 0)
            }
        }
        if !engine.watchedKeys().isEmpty { arm(after: Self.comparePeriod) }
    }

    private static func snapshot(_ serial: Int32) -> KeySnapshot {
        switch KeyAccess.describe(serial) {
        case .success(let access): KeySnapshot(access: access, contents: contents(serial))
        case .failure(let error): KeySnapshot(revoked: error.errno == EKEYREVOKED)
        }
    }

    /// `KEYCTL_READ`: a keyring's member serials, or a key's payload.
    private static func contents(_ serial: Int32) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { wq_keyctl(11, UInt(UInt32(bitPattern: serial)), UInt(bitPattern: $0.baseAddress), UInt($0.count), 0) }
        return n >= 0 ? Array(buffer.prefix(min(Int(n), buffer.count))) : nil
    }

    /// A keyring's contents: its members' serials, 32-bit, in host order.
    private static func serials(_ bytes: [UInt8]) -> [Int32] {
        bytes.withUnsafeBytes { raw in
            (0..<raw.count / 4).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self) }
        }
    }

    /// Every key in /proc/keys (those the server may view): the serials known at start.
    private static func visibleKeys() -> [Int32] {
        guard let text = readWholeFile("/proc/keys") else { return [] }
        return text.split(separator: UInt8(ascii: "\n")).compactMap { line in
            line.split(separator: UInt8(ascii: " ")).first.flatMap { Int32(String(decoding: $0, as: UTF8.self), radix: 16) }
        }
    }

    // MARK: the timer

    private func arm(after seconds: Double) {
        guard timer >= 0 else { return }
        var spec = itimerspec()
        spec.it_value.tv_sec = Int(seconds)
        spec.it_value.tv_nsec = Int((seconds - Double(Int(seconds))) * 1e9)
        _ = timerfd_settime(timer, 0, &spec, nil)
    }

    private func closeTimer() {
        if timer >= 0 { close(timer) }
        timer = -1
    }
}
