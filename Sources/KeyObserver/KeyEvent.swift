/// A key or keyring named by a key operation, as far as the event could resolve it.
public enum KeyReference: Hashable, Sendable, CustomStringConvertible {
    /// A real key's serial: given as such, or a special id (@t, @p, @s) resolved from
    /// the caller's keyrings, or @u/@us resolved in user space.
    case serial(Int32)
    /// A special id not resolved: −4 (user keyring) and −5 (user-session keyring)
    /// until `KeyEvent.resolvingUserKeyrings` runs (they live in the user namespace's
    /// keyring register, out of BPF's reach), and ids the observer cannot know
    /// (−7 the assumed authorisation key, −8 the requestor's keyring). `uid` is the
    /// caller's, whose keyrings these are.
    case special(Int32, uid: UInt32)

    public var description: String {
        switch self {
        case .serial(let serial): "\(serial)"
        case .special(let id, let uid): "special \(id) of uid \(uid)"
        }
    }
}

/// The system call an event came from.
public enum KeySyscall: UInt16, Hashable, Sendable {
    case keyctl = 1, addKey = 2, requestKey = 3
}

/// A successful key-changing call, as the kernel's key notifications would tell it
/// (COMPAT.md lists the record each one posts).
public enum KeyOperation: Hashable, Sendable {
    /// `add_key`: `key` (its return) was created in `keyring`, or, when a key of the
    /// same type and description was already there, updated in place: the syscall
    /// looks the same either way, so a caller tells them apart by the serials it knows.
    case added(key: Int32, keyring: KeyReference, type: String, description: String)
    /// `request_key` found or made `key`; `destination` is the keyring named, nil for
    /// the default (0).
    case requested(key: Int32, destination: KeyReference?, type: String, description: String)
    /// KEYCTL_UPDATE.
    case updated(KeyReference)
    /// KEYCTL_REVOKE (the kernel notifies only the first time).
    case revoked(KeyReference)
    /// KEYCTL_CHOWN; `uid`/`gid` 0xffffffff means unchanged.
    case ownerChanged(KeyReference, uid: UInt32, gid: UInt32)
    /// KEYCTL_SETPERM.
    case permissionsSet(KeyReference, permissions: UInt32)
    /// KEYCTL_CLEAR of a keyring.
    case cleared(KeyReference)
    /// KEYCTL_LINK.
    case linked(key: KeyReference, keyring: KeyReference)
    /// KEYCTL_UNLINK.
    case unlinked(key: KeyReference, keyring: KeyReference)
    /// KEYCTL_INSTANTIATE or KEYCTL_INSTANTIATE_IOV; `keyring` nil when none was named.
    case instantiated(key: KeyReference, keyring: KeyReference?)
    /// KEYCTL_NEGATE (`error` ENOKEY) or KEYCTL_REJECT (its error): a negative key for
    /// `timeout` seconds.
    case negated(key: KeyReference, error: Int32, timeout: UInt32, keyring: KeyReference?)
    /// KEYCTL_SET_TIMEOUT (0: no expiry).
    case timeoutSet(KeyReference, seconds: UInt32)
    /// KEYCTL_INVALIDATE.
    case invalidated(KeyReference)
    /// KEYCTL_RESTRICT_KEYRING.
    case restricted(keyring: KeyReference)
    /// KEYCTL_MOVE; `exclusive` is KEYCTL_MOVE_EXCL.
    case moved(key: KeyReference, from: KeyReference, to: KeyReference, exclusive: Bool)

    /// Every key and keyring the operation names, in argument order (the serial
    /// add_key and request_key return first).
    public var references: [KeyReference] {
        switch self {
        case .added(let key, let keyring, _, _): [.serial(key), keyring]
        case .requested(let key, let destination, _, _): [.serial(key)] + (destination.map { [$0] } ?? [])
        case .updated(let key), .revoked(let key), .ownerChanged(let key, _, _), .permissionsSet(let key, _),
             .cleared(let key), .timeoutSet(let key, _), .invalidated(let key), .restricted(let key):
            [key]
        case .linked(let key, let keyring), .unlinked(let key, let keyring): [key, keyring]
        case .instantiated(let key, let keyring), .negated(let key, _, _, let keyring):
            [key] + (keyring.map { [$0] } ?? [])
        case .moved(let key, let from, let to, _): [key, from, to]
        }
    }
}

/// Why event bytes could not be decoded. The decoder checks every size and value it
/// reads against the layout of key_event.h; what does not fit is one of these.
public struct KeyEventDecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// Fewer bytes than the event's fixed part, or not the size it says.
        case size
        /// A syscall, keyctl operation or reserved field the program never writes.
        case field
        /// A negative result: the program sends successes only.
        case result
    }

    public var kind: Kind
    /// The byte offset of the field at fault.
    public var offset: Int
    /// What was wrong, in words.
    public var reason: String

    public init(_ kind: Kind, at offset: Int, _ reason: String) {
        self.kind = kind
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "key event: \(reason) (offset \(offset))" }
}

/// One event of the key observer: the operation and who made it.
public struct KeyEvent: Hashable, Sendable {
    /// What changed.
    public var operation: KeyOperation
    public var syscall: KeySyscall
    /// The keyctl operation number (KEYCTL_*), nil for add_key and request_key.
    public var keyctlOperation: Int32?
    /// The call's return value.
    public var result: Int64
    /// The calling thread and its process.
    public var pid: Int32, tgid: Int32
    /// The caller's real uid and gid.
    public var uid: UInt32, gid: UInt32
    /// The caller's thread, process and session keyrings after the call (0: none).
    public var threadKeyring: Int32, processKeyring: Int32, sessionKeyring: Int32
    /// CLOCK_MONOTONIC nanoseconds at the call's exit.
    public var time: UInt64
    /// Whether the description may have been cut at the event's 255 bytes.
    public var descriptionTruncated: Bool

    /// The size of keyctl events and of add_key/request_key events (key_event.h).
    public static let shortSize = 96, fullSize = 384
    static let typeOffset = 96, typeCapacity = 32, descriptionOffset = 128, descriptionCapacity = 256

    /// The keyctl operations the program reports (<linux/keyctl.h>).
    public static let trackedOperations: Set<Int32> = [2, 3, 4, 5, 7, 8, 9, 12, 13, 15, 19, 20, 21, 29, 30]

    /// Decodes one ring-buffer record. Special ids −1, −2, −3 are resolved from the
    /// caller's keyrings in the event; −4 and −5 stay `.special` (see
    /// `resolvingUserKeyrings`).
    public init(decoding bytes: UnsafeRawBufferPointer) throws(KeyEventDecodeError) {
        guard bytes.count >= Self.shortSize else {
            throw KeyEventDecodeError(.size, at: 0, "\(bytes.count) bytes, fewer than \(Self.shortSize)")
        }
        func u16(_ offset: Int) -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
        func u32(_ offset: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
        func u64(_ offset: Int) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
        func s32(_ offset: Int) -> Int32 { Int32(bitPattern: u32(offset)) }
        func s16(_ offset: Int) -> Int16 { Int16(bitPattern: u16(offset)) }

        let size = Int(u32(56))
        guard let syscall = KeySyscall(rawValue: u16(60)) else {
            throw KeyEventDecodeError(.field, at: 60, "unknown syscall \(u16(60))")
        }
        let expected = syscall == .keyctl ? Self.shortSize : Self.fullSize
        guard size == expected, bytes.count == size else {
            throw KeyEventDecodeError(.size, at: 56, "size \(size) in \(bytes.count) bytes for \(syscall), not \(expected)")
        }
        guard u16(62) == 0 else { throw KeyEventDecodeError(.field, at: 62, "reserved field \(u16(62))") }
        let result = Int64(bitPattern: u64(48))
        guard result >= 0 else { throw KeyEventDecodeError(.result, at: 48, "negative result \(result)") }

        self.syscall = syscall
        self.result = result
        time = u64(0)
        pid = s32(64)
        tgid = s32(68)
        uid = u32(72)
        gid = u32(76)
        threadKeyring = s32(80)
        processKeyring = s32(84)
        sessionKeyring = s32(88)
        let arguments = (0..<5).map { u64(8 + 8 * $0) }
        // Key serials are C ints: the kernel reads the low 32 bits of the register.
        let serial = { (index: Int) in Int32(truncatingIfNeeded: arguments[index]) }
        let reference = { [threadKeyring, processKeyring, sessionKeyring, uid] (index: Int) in
            Self.reference(serial(index), thread: threadKeyring, process: processKeyring,
                           session: sessionKeyring, uid: uid)
        }
        let optional = { (index: Int) -> KeyReference? in serial(index) == 0 ? nil : reference(index) }
        let u32Argument = { (index: Int) in UInt32(truncatingIfNeeded: arguments[index]) }

        descriptionTruncated = false
        switch syscall {
        case .addKey, .requestKey:
            keyctlOperation = nil
            let type = Self.string(bytes, at: Self.typeOffset, capacity: Self.typeCapacity, length: Int(s16(92)))
            let description = Self.string(bytes, at: Self.descriptionOffset, capacity: Self.descriptionCapacity,
                                          length: Int(s16(94)))
            descriptionTruncated = Int(s16(94)) >= Self.descriptionCapacity
            let key = Int32(truncatingIfNeeded: result)
            operation = syscall == .addKey
                ? .added(key: key, keyring: reference(4), type: type, description: description)
                : .requested(key: key, destination: optional(3), type: type, description: description)
        case .keyctl:
            let op = Int32(truncatingIfNeeded: arguments[0])
            guard arguments[0] <= UInt32.max, Self.trackedOperations.contains(op) else {
                throw KeyEventDecodeError(.field, at: 8, "keyctl operation \(arguments[0]) is not reported")
            }
            keyctlOperation = op
            switch op {
            case 2: operation = .updated(reference(1))
            case 3: operation = .revoked(reference(1))
            case 4: operation = .ownerChanged(reference(1), uid: u32Argument(2), gid: u32Argument(3))
            case 5: operation = .permissionsSet(reference(1), permissions: u32Argument(2))
            case 7: operation = .cleared(reference(1))
            case 8: operation = .linked(key: reference(1), keyring: reference(2))
            case 9: operation = .unlinked(key: reference(1), keyring: reference(2))
            case 12: operation = .instantiated(key: reference(1), keyring: optional(4))
            case 20: operation = .instantiated(key: reference(1), keyring: optional(4))
            // NEGATE: key, timeout, keyring; the negative key's error is ENOKEY (126).
            case 13: operation = .negated(key: reference(1), error: 126, timeout: u32Argument(2), keyring: optional(3))
            // REJECT: key, timeout, error, keyring.
            case 19: operation = .negated(key: reference(1), error: Int32(truncatingIfNeeded: arguments[3]),
                                          timeout: u32Argument(2), keyring: optional(4))
            case 15: operation = .timeoutSet(reference(1), seconds: u32Argument(2))
            case 21: operation = .invalidated(reference(1))
            case 29: operation = .restricted(keyring: reference(1))
            default: // 30, the only one left in trackedOperations
                operation = .moved(key: reference(1), from: reference(2), to: reference(3),
                                   exclusive: arguments[4] & 1 != 0)
            }
        }
    }

    /// A special id resolved against the caller's keyrings (<linux/keyctl.h>: −1 thread,
    /// −2 process, −3 session). A caller without a session keyring uses its
    /// user-session keyring for −3, so that one becomes −5 for the resolver.
    static func reference(_ id: Int32, thread: Int32, process: Int32, session: Int32, uid: UInt32) -> KeyReference {
        switch id {
        case 1...: .serial(id)
        case -1 where thread > 0: .serial(thread)
        case -2 where process > 0: .serial(process)
        case -3 where session > 0: .serial(session)
        case -3: .special(-5, uid: uid)
        default: .special(id, uid: uid)
        }
    }

    /// A string field: the bytes before the first NUL within what the program read
    /// (`length` counts the NUL, so at most capacity − 1 bytes are text). Not UTF-8:
    /// each bad byte becomes U+FFFD.
    static func string(_ bytes: UnsafeRawBufferPointer, at offset: Int, capacity: Int, length: Int) -> String {
        let read = min(max(length - 1, 0), capacity - 1)
        let field = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + read])
        return String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// The same event with every `.special(−4 or −5, uid)` replaced by what `resolve`
    /// gives for (uid, id); ids it returns nil for stay as they are.
    public func resolvingUserKeyrings(_ resolve: (UInt32, Int32) -> Int32?) -> KeyEvent {
        func r(_ reference: KeyReference) -> KeyReference {
            guard case .special(let id, let uid) = reference, id == -4 || id == -5,
                  let serial = resolve(uid, id) else { return reference }
            return .serial(serial)
        }
        func o(_ reference: KeyReference?) -> KeyReference? { reference.map(r) }
        var event = self
        switch operation {
        case .added(let key, let keyring, let type, let description):
            event.operation = .added(key: key, keyring: r(keyring), type: type, description: description)
        case .requested(let key, let destination, let type, let description):
            event.operation = .requested(key: key, destination: o(destination), type: type, description: description)
        case .updated(let key): event.operation = .updated(r(key))
        case .revoked(let key): event.operation = .revoked(r(key))
        case .ownerChanged(let key, let uid, let gid): event.operation = .ownerChanged(r(key), uid: uid, gid: gid)
        case .permissionsSet(let key, let permissions): event.operation = .permissionsSet(r(key), permissions: permissions)
        case .cleared(let keyring): event.operation = .cleared(r(keyring))
        case .linked(let key, let keyring): event.operation = .linked(key: r(key), keyring: r(keyring))
        case .unlinked(let key, let keyring): event.operation = .unlinked(key: r(key), keyring: r(keyring))
        case .instantiated(let key, let keyring): event.operation = .instantiated(key: r(key), keyring: o(keyring))
        case .negated(let key, let error, let timeout, let keyring):
            event.operation = .negated(key: r(key), error: error, timeout: timeout, keyring: o(keyring))
        case .timeoutSet(let key, let seconds): event.operation = .timeoutSet(r(key), seconds: seconds)
        case .invalidated(let key): event.operation = .invalidated(r(key))
        case .restricted(let keyring): event.operation = .restricted(keyring: r(keyring))
        case .moved(let key, let from, let to, let exclusive):
            event.operation = .moved(key: r(key), from: r(from), to: r(to), exclusive: exclusive)
        }
        return event
    }
}
