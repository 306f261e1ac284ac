import SystemSources
import WatchQueueCore

/// One whole notification record as read from a queue: its decoded header and all of
/// its bytes, header included.
public struct CapturedRecord: Equatable, Sendable {
    /// The decoded 8-byte header.
    public let header: RecordHeader
    /// The record's bytes, header included; `bytes.count == header.length`.
    public let bytes: [UInt8]

    /// Wraps `bytes` if they hold exactly one well-formed record and nothing else.
    public init?(bytes: [UInt8]) {
        let single = bytes.withUnsafeBytes { raw -> RecordHeader? in
            var records = RecordIterator(raw)
            guard let first = records.next(), records.offset == raw.count else { return nil }
            return first.header
        }
        guard let header = single else { return nil }
        self.init(header: header, bytes: bytes)
    }

    init(header: RecordHeader, bytes: [UInt8]) {
        self.header = header
        self.bytes = bytes
    }

    /// The bytes after the header.
    public var payload: ArraySlice<UInt8> { bytes[RecordLayout.headerSize...] }

    /// What the record means, judged strictly by its shape (see `RecordMeaning`).
    public var meaning: RecordMeaning {
        switch (header.type, header.subtype, bytes.count) {
        case (NotificationType.meta, MetaSubtype.loss, 8):
            return .loss
        case (NotificationType.meta, MetaSubtype.removal, 8):
            return .removal(objectID: 0)
        case (NotificationType.meta, MetaSubtype.removal, 16):
            return .removal(objectID: loadLittleEndian(UInt64.self, at: 8))
        case (NotificationType.keyNotify, _, 16):
            guard let subtype = KeySubtype(rawValue: header.subtype) else { return .other }
            return .key(subtype, keyID: loadLittleEndian(UInt32.self, at: 8),
                        aux: loadLittleEndian(UInt32.self, at: 12))
        // The system records' decoders judge their own shapes against the layout table.
        case (SystemNotificationType.mount, _, _):
            return MountNotification(record: bytes).map(RecordMeaning.mount) ?? .other
        case (SystemNotificationType.process, _, _):
            return ProcessNotification(record: bytes).map(RecordMeaning.process) ?? .other
        case (SystemNotificationType.device, _, _):
            return DeviceNotification(record: bytes).map(RecordMeaning.device) ?? .other
        default:
            return .other
        }
    }

    private func loadLittleEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }
}

/// The meaning of a record, for the records whose layout the kernel or wqfs fixes.
///
/// A record gets a decoded meaning only when its type, subtype *and length* are exactly
/// what the kernel defines: a loss record is 8 bytes, a removal record 8 bytes (no
/// object id) or 16, a key record 16 bytes with subtype 0–7 — or what
/// include/wqfs/records.h defines for the system sources' MOUNT (2), PROCESS (64) and
/// DEVICE (65) records. Anything else — a key record of another length, an unknown key
/// or META subtype, a system record of the wrong length, any other type — is `.other`
/// and is shown in full by the generic formats. keyutils prints nothing for
/// such records; wqcat shows them instead, because on wqfs any source may post any
/// type, and a tool that silently hides bytes it does not understand hides exactly the
/// records someone is trying to debug.
public enum RecordMeaning: Equatable, Sendable {
    /// Records were dropped because the queue was full.
    case loss
    /// A watch went away; `objectID` is the watched object's id (0 in an 8-byte record).
    case removal(objectID: UInt64)
    /// A key or keyring changed (`struct key_notification`).
    case key(KeySubtype, keyID: UInt32, aux: UInt32)
    /// A mount was added, removed, moved or changed (`sources/mounts`).
    case mount(MountNotification)
    /// A process forked, exec'd, exited… (`sources/processes`).
    case process(ProcessNotification)
    /// A kernel uevent (`sources/devices`).
    case device(DeviceNotification)
    /// Any record without a decoded meaning.
    case other
}

extension KeySubtype {
    /// The word keyutils' `keyctl watch` prints for this subtype.
    public var keyutilsWord: String {
        switch self {
        case .instantiated: "inst"
        case .updated: "upd"
        case .linked: "link"
        case .unlinked: "unlk"
        case .cleared: "clr"
        case .revoked: "rev"
        case .invalidated: "inv"
        case .setattr: "attr"
        }
    }

    /// Whether keyutils prints the `aux` word (the linked or unlinked key's serial).
    public var showsAux: Bool { self == .linked || self == .unlinked }
}
