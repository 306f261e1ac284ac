/// Why a kernel message could not be decoded. The decoders never trust a length or
/// an offset they read: every one is checked against the bytes at hand, and what
/// does not fit is one of these, never a crash or a guess.
public struct DecodeError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// Which decoder refused.
    public enum Format: String, Sendable {
        case mountinfo, fanotify, procConnector = "proc connector", uevent
    }

    public var format: Format
    /// Where: a byte offset into the message, or a line number for mountinfo.
    public var position: Int
    /// What was wrong, in words.
    public var reason: String

    public init(_ format: Format, at position: Int, _ reason: String) {
        self.format = format
        self.position = position
        self.reason = reason
    }

    public var description: String {
        "\(format.rawValue): \(reason) (\(format == .mountinfo ? "line" : "offset") \(position))"
    }
}

/// Little-endian loads from a message, each checked against its end.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let format: DecodeError.Format

    init(_ bytes: UnsafeRawBufferPointer, _ format: DecodeError.Format) {
        self.bytes = bytes
        self.format = format
    }

    var count: Int { bytes.count }

    func error(at offset: Int, _ reason: String) -> DecodeError { DecodeError(format, at: offset, reason) }

    /// Throws unless `size` bytes are there at `offset`.
    func need(_ size: Int, at offset: Int, for what: String) throws(DecodeError) {
        guard offset >= 0, size >= 0, offset <= bytes.count, size <= bytes.count - offset else {
            throw error(at: offset, "\(what) needs \(size) bytes, \(max(0, bytes.count - max(0, offset))) left")
        }
    }

    func u8(at offset: Int) throws(DecodeError) -> UInt8 {
        try need(1, at: offset, for: "u8")
        return bytes[offset]
    }

    func u16(at offset: Int) throws(DecodeError) -> UInt16 {
        try need(2, at: offset, for: "u16")
        return UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    func u32(at offset: Int) throws(DecodeError) -> UInt32 {
        try need(4, at: offset, for: "u32")
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func u64(at offset: Int) throws(DecodeError) -> UInt64 {
        try need(8, at: offset, for: "u64")
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// A sub-range, checked.
    func slice(_ offset: Int, _ size: Int, for what: String) throws(DecodeError) -> UnsafeRawBufferPointer {
        try need(size, at: offset, for: what)
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + size])
    }
}
