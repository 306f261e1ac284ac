/// Decoding what `read(2)` returns from a fanotify group made with `FAN_REPORT_MNT`
/// and marked with `FAN_MARK_MNTNS` for `FAN_MNT_ATTACH | FAN_MNT_DETACH` (Linux
/// 6.15+; SOURCES.md "Mounts"). The constants are defined here because Debian's 6.1
/// headers predate mount events.
///
/// A read returns whole events, back to back. Each is a 24-byte
/// `struct fanotify_event_metadata`:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | u32 `event_len` (metadata and info records) |
/// | 4 | 1 | u8 `vers` (3) |
/// | 5 | 1 | u8 reserved |
/// | 6 | 2 | u16 `metadata_len` (24) |
/// | 8 | 8 | u64 `mask` |
/// | 16 | 4 | s32 `fd` (`FAN_NOFD`, -1, for mount events) |
/// | 20 | 4 | s32 `pid` (the process that did it) |
///
/// then info records from `metadata_len` to `event_len`, each starting with
/// `{u8 info_type, u8 pad, u16 len}`. A mount event carries one
/// `struct fanotify_event_info_mnt` (type 7, len 16): the header, 4 bytes of
/// padding (the u64 is naturally aligned), then u64 `mnt_id` at offset 8 — the
/// 64-bit unique mount id, as measured on Linux 6.18.
public enum Fanotify {
    /// `FANOTIFY_METADATA_VERSION`.
    public static let metadataVersion: UInt8 = 3
    /// `sizeof(struct fanotify_event_metadata)`.
    public static let metadataLength = 24
    /// `FAN_MNT_ATTACH`: a mount joined the namespace.
    public static let mountAttach: UInt64 = 0x0100_0000
    /// `FAN_MNT_DETACH`: a mount left it. Both bits in one event: a move.
    public static let mountDetach: UInt64 = 0x0200_0000
    /// `FAN_Q_OVERFLOW`: the group's queue overflowed; events were lost.
    public static let queueOverflow: UInt64 = 0x0000_4000
    /// `FAN_EVENT_INFO_TYPE_MNT`.
    public static let infoTypeMount: UInt8 = 7
    /// The size of an info record's header.
    public static let infoHeaderLength = 4
    /// `sizeof(struct fanotify_event_info_mnt)`, and where its `mnt_id` is.
    public static let mountInfoLength = 16
    public static let mountInfoIDOffset = 8
    /// `FAN_NOFD`.
    public static let noFD: Int32 = -1
    /// `FAN_REPORT_MNT`, `FAN_MARK_MNTNS`: for the mechanism's `fanotify_init` and
    /// `fanotify_mark` calls.
    public static let reportMount: UInt32 = 0x0000_4000
    public static let markMountNamespace: UInt32 = 0x0000_0110

    /// One decoded event.
    public struct Event: Equatable, Hashable, Sendable {
        public enum Kind: Equatable, Hashable, Sendable {
            case attach, detach, move, overflow
        }

        public var kind: Kind
        /// The unique mount id; 0 for an overflow, which names no mount.
        public var mountID: UInt64
        /// The process that caused it (0 for an overflow).
        public var pid: Int32
        /// The event's file descriptor: `FAN_NOFD` for mount events. Reported so
        /// the mechanism can close one should a misconfigured group deliver it.
        public var fd: Int32
        /// The raw mask.
        public var mask: UInt64

        public init(kind: Kind, mountID: UInt64, pid: Int32, fd: Int32 = Fanotify.noFD, mask: UInt64) {
            self.kind = kind
            self.mountID = mountID
            self.pid = pid
            self.fd = fd
            self.mask = mask
        }
    }

    /// Decodes every event of one read. All or nothing: a malformed event anywhere
    /// throws (the kernel never writes one, so the rest of the buffer is suspect).
    public static func decode(_ buffer: UnsafeRawBufferPointer) throws(DecodeError) -> [Event] {
        var events: [Event] = []
        try forEachEvent(buffer) { events.append($0) }
        return events
    }

    /// Calls `body` with each event of one read, in order, without allocating.
    /// Events before a malformed one have been delivered when it throws.
    public static func forEachEvent(_ buffer: UnsafeRawBufferPointer, _ body: (Event) -> Void) throws(DecodeError) {
        let reader = ByteReader(buffer, .fanotify)
        var offset = 0
        while offset < reader.count {
            let event = try decodeEvent(reader, at: offset)
            body(event.event)
            offset += event.length
        }
    }

    /// The event at `offset` and its `event_len`.
    static func decodeEvent(_ reader: ByteReader, at offset: Int) throws(DecodeError) -> (event: Event, length: Int) {
        try reader.need(metadataLength, at: offset, for: "event metadata")
        let eventLength = Int(try reader.u32(at: offset))
        let version = try reader.u8(at: offset + 4)
        let headerLength = Int(try reader.u16(at: offset + 6))
        let mask = try reader.u64(at: offset + 8)
        let fd = Int32(bitPattern: try reader.u32(at: offset + 16))
        let pid = Int32(bitPattern: try reader.u32(at: offset + 20))
        guard version == metadataVersion else {
            throw reader.error(at: offset + 4, "metadata version \(version), expected \(metadataVersion)")
        }
        guard headerLength >= metadataLength else {
            throw reader.error(at: offset + 6, "metadata_len \(headerLength) under \(metadataLength)")
        }
        guard eventLength >= headerLength else {
            throw reader.error(at: offset, "event_len \(eventLength) under metadata_len \(headerLength)")
        }
        guard eventLength <= reader.count - offset else {
            throw reader.error(at: offset, "event_len \(eventLength) runs past the \(reader.count - offset) bytes left")
        }

        if mask & queueOverflow != 0 {
            return (Event(kind: .overflow, mountID: 0, pid: pid, fd: fd, mask: mask), eventLength)
        }
        let kind: Event.Kind
        switch (mask & mountAttach != 0, mask & mountDetach != 0) {
        case (true, true): kind = .move
        case (true, false): kind = .attach
        case (false, true): kind = .detach
        case (false, false):
            throw reader.error(at: offset + 8, "mask 0x\(String(mask, radix: 16)) holds no mount event")
        }

        // Walk the info records; unknown types are skipped (later kernels may add
        // some), but each must fit the event.
        var mountID: UInt64?
        var info = offset + headerLength
        let end = offset + eventLength
        while info < end {
            guard end - info >= infoHeaderLength else {
                throw reader.error(at: info, "\(end - info) bytes left in the event, under an info header")
            }
            let type = try reader.u8(at: info)
            let length = Int(try reader.u16(at: info + 2))
            guard length >= infoHeaderLength else {
                throw reader.error(at: info + 2, "info record len \(length) under \(infoHeaderLength)")
            }
            guard length <= end - info else {
                throw reader.error(at: info + 2, "info record len \(length) runs past the event (\(end - info) left)")
            }
            if type == infoTypeMount {
                guard length >= mountInfoLength else {
                    throw reader.error(at: info + 2, "mount info record len \(length) under \(mountInfoLength)")
                }
                guard mountID == nil else { throw reader.error(at: info, "a second mount info record") }
                mountID = try reader.u64(at: info + mountInfoIDOffset)
            }
            info += length
        }
        guard let mountID else { throw reader.error(at: offset, "mount event without a mount info record") }
        return (Event(kind: kind, mountID: mountID, pid: pid, fd: fd, mask: mask), eventLength)
    }
}
