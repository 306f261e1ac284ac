/// The layout of a notification record, byte-exact with `struct watch_notification`
/// in `<linux/watch_queue.h>`: a little-endian u32 holding `type` (bits 0–23) and
/// `subtype` (bits 24–31), then a u32 `info`, then the type's payload.
public enum RecordLayout {
    /// The size of the header; also the smallest record.
    public static let headerSize = 8
    /// The largest record: `info`'s length field is seven bits.
    public static let maxLength = 127
    /// `WATCH_INFO_LENGTH`: the record length in bytes, header included.
    public static let lengthMask: UInt32 = 0x0000_007f
    /// The byte of the header that holds the length (the low byte of `info`).
    public static let lengthByte = 4
    /// `WATCH_INFO_ID`: the watch ID of the watch that delivered the record.
    public static let watchIDMask: UInt32 = 0x0000_ff00
    public static let watchIDShift: UInt32 = 8
    /// `WATCH_INFO_TYPE_INFO`: type-specific bits (flags 0–7 are bits 16–23).
    public static let typeInfoMask: UInt32 = 0xffff_0000
    public static let typeInfoShift: UInt32 = 16
    /// The largest notification type: the field is 24 bits wide.
    public static let maxType: UInt32 = 0x00ff_ffff
}

/// Notification types with a meaning fixed by the kernel ABI.
public enum NotificationType {
    /// `WATCH_TYPE_META`: records made by the queue machinery itself.
    public static let meta: UInt32 = 0
    /// `WATCH_TYPE_KEY_NOTIFY`: key and keyring changes.
    public static let keyNotify: UInt32 = 1
    /// The type a new source posts until told otherwise: outside the kernel's range
    /// so it never collides with a kernel type.
    public static let user: UInt32 = 0x100
}

/// Subtypes of `WATCH_TYPE_META`.
public enum MetaSubtype {
    /// `WATCH_META_REMOVAL_NOTIFICATION`: a watch went away.
    public static let removal: UInt8 = 0
    /// `WATCH_META_LOSS_NOTIFICATION`: records were dropped.
    public static let loss: UInt8 = 1
}

/// Subtypes of `WATCH_TYPE_KEY_NOTIFY` (`enum key_notification_subtype`).
public enum KeySubtype: UInt8, CaseIterable, Sendable {
    case instantiated = 0, updated, linked, unlinked, cleared, revoked, invalidated, setattr
}

/// The 8-byte header of a record, decoded.
public struct RecordHeader: Equatable, Hashable, Sendable {
    /// Notification type, 0...0xffffff.
    public var type: UInt32
    /// Type-specific subtype.
    public var subtype: UInt8
    /// The raw `info` word: length, watch ID and type-specific bits.
    public var info: UInt32

    public init(type: UInt32, subtype: UInt8, info: UInt32) {
        self.type = type & RecordLayout.maxType
        self.subtype = subtype
        self.info = info
    }

    /// Builds a header from its parts.
    public init(type: UInt32, subtype: UInt8, length: Int, watchID: UInt8 = 0, typeInfo: UInt16 = 0) {
        self.init(type: type, subtype: subtype,
                  info: UInt32(length) & RecordLayout.lengthMask
                      | UInt32(watchID) << RecordLayout.watchIDShift
                      | UInt32(typeInfo) << RecordLayout.typeInfoShift)
    }

    /// Decodes the first 8 bytes of `bytes`, which must hold at least that many.
    public init(bytes: UnsafeRawBufferPointer) {
        let word0 = bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian
        let info = bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian
        self.init(type: word0 & RecordLayout.maxType, subtype: UInt8(truncatingIfNeeded: word0 >> 24), info: info)
    }

    /// The first word as the kernel lays it out: type in bits 0–23, subtype in 24–31.
    public var word0: UInt32 { type | UInt32(subtype) << 24 }
    /// Record length in bytes, header included (0 is invalid).
    public var length: Int { Int(info & RecordLayout.lengthMask) }
    /// The delivering watch's ID.
    public var watchID: UInt8 { UInt8(truncatingIfNeeded: (info & RecordLayout.watchIDMask) >> RecordLayout.watchIDShift) }
    /// The type-specific bits 16–31 of `info`.
    public var typeInfo: UInt16 { UInt16(truncatingIfNeeded: info >> RecordLayout.typeInfoShift) }

    /// Writes the 8 header bytes at `destination`.
    public func store(to destination: UnsafeMutableRawPointer) {
        destination.storeBytes(of: word0.littleEndian, as: UInt32.self)
        (destination + 4).storeBytes(of: info.littleEndian, as: UInt32.self)
    }

    /// The 8 header bytes.
    public var bytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 8) { buffer, count in
            store(to: UnsafeMutableRawPointer(buffer.baseAddress!))
            count = 8
        }
    }
}

/// Builders for the records the queue machinery and the key type define.
public enum Records {
    /// The 8-byte loss record: type META, subtype loss, length 8, watch ID 0.
    public static let loss: [UInt8] = RecordHeader(type: NotificationType.meta, subtype: MetaSubtype.loss, length: 8).bytes

    /// A removal record for a watch with `watchID` on the object `objectID`:
    /// 16 bytes carrying the id, or 8 bytes when the id is 0, as the kernel does.
    public static func removal(watchID: UInt8, objectID: UInt64) -> [UInt8] {
        let length = objectID == 0 ? 8 : 16
        var bytes = RecordHeader(type: NotificationType.meta, subtype: MetaSubtype.removal,
                                 length: length, watchID: watchID).bytes
        if objectID != 0 { bytes += littleEndianBytes(objectID) }
        return bytes
    }

    /// A 16-byte key notification (`struct key_notification`).
    public static func key(_ subtype: KeySubtype, keyID: UInt32, aux: UInt32, watchID: UInt8 = 0) -> [UInt8] {
        RecordHeader(type: NotificationType.keyNotify, subtype: subtype.rawValue, length: 16, watchID: watchID).bytes
            + littleEndianBytes(keyID) + littleEndianBytes(aux)
    }

    /// The little-endian bytes of an integer.
    public static func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }
}

/// Why a byte stream is not a well-formed sequence of records.
public enum RecordStreamError: Error, Equatable, Sendable {
    /// Fewer than 8 bytes remain at `offset`: not even a header.
    case truncatedHeader(offset: Int, available: Int)
    /// The header at `offset` gives a length under 8.
    case lengthTooSmall(offset: Int, length: Int)
    /// The record at `offset` runs past the end of the data.
    case runsPastEnd(offset: Int, length: Int, available: Int)
}

/// Walks the packed records in a buffer, strictly: a length under 8, a record
/// running past the data or a trailing partial header is an error, never a guess.
public struct RecordIterator: Sequence, IteratorProtocol {
    private let bytes: UnsafeRawBufferPointer
    /// Where the walk stops: the end of the data, or 0 once an error ended it.
    private var end: Int
    /// Where the next record starts.
    public private(set) var offset = 0
    /// The error that ended the walk, if it did not end at the end of the data.
    public private(set) var error: RecordStreamError?

    /// Iterates over `bytes`, which must outlive the iterator.
    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        end = bytes.count
    }

    /// The next record's header and its whole bytes (header included).
    @inline(__always)
    public mutating func next() -> (header: RecordHeader, bytes: UnsafeRawBufferPointer)? {
        guard offset < end, let base = bytes.baseAddress else { return nil }
        let start = base + offset
        guard let length = Self.length(at: start, available: end &- offset) else {
            error = Self.error(at: start, offset: offset, available: end &- offset)
            end = 0
            return nil
        }
        offset &+= length
        return (RecordHeader(bytes: UnsafeRawBufferPointer(start: start, count: RecordLayout.headerSize)),
                UnsafeRawBufferPointer(start: start, count: length))
    }

    /// The length of the record at `start` with `available` bytes from there, or nil
    /// when it is not a whole, well-formed record. Plain loads: this runs for every
    /// record posted.
    @inline(__always)
    static func length(at start: UnsafeRawPointer, available: Int) -> Int? {
        guard available >= RecordLayout.headerSize else { return nil }
        let length = Int(start.load(fromByteOffset: RecordLayout.lengthByte, as: UInt8.self) & UInt8(RecordLayout.lengthMask))
        return length >= RecordLayout.headerSize && length <= available ? length : nil
    }

    /// Why `length(at:available:)` refused the record at `start`.
    static func error(at start: UnsafeRawPointer, offset: Int, available: Int) -> RecordStreamError {
        guard available >= RecordLayout.headerSize else { return .truncatedHeader(offset: offset, available: available) }
        let length = Int(start.load(fromByteOffset: RecordLayout.lengthByte, as: UInt8.self) & UInt8(RecordLayout.lengthMask))
        return length < RecordLayout.headerSize ? .lengthTooSmall(offset: offset, length: length)
            : .runsPastEnd(offset: offset, length: length, available: available)
    }
}
