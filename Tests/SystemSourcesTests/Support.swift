import Testing
@testable import SystemSources
import CSystemRecordsABI

/// Bytes from a hex dump ("28 00 00 00 ..."; blanks and newlines ignored).
func hex(_ text: String) -> [UInt8] {
    let digits = text.unicodeScalars.filter { !$0.properties.isWhitespace }.map { Character($0) }
    return stride(from: 0, to: digits.count - 1, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// Runs a `wqfs_abi_*` builder on a 128-byte buffer and returns what it wrote.
func cBytes(_ build: (UnsafeMutablePointer<UInt8>) -> Int) -> [UInt8] {
    var buffer = [UInt8](repeating: 0xee, count: 128)
    let length = buffer.withUnsafeMutableBufferPointer { build($0.baseAddress!) }
    return Array(buffer.prefix(length))
}

/// A constant of the C headers, by name.
func cConstant(_ name: String) -> UInt32 { wqfs_abi_constant(name) }

/// The DecodeError `body` throws, or nil when it succeeds; any other error is an
/// issue (the decoders throw only DecodeError).
func decodeError<T>(_ body: () throws -> T) -> DecodeError? {
    do {
        _ = try body()
        return nil
    } catch let error as DecodeError {
        return error
    } catch {
        Issue.record("not a DecodeError: \(error)")
        return nil
    }
}

/// Little-endian bytes of an integer.
func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

/// Overwrites `bytes` at `offset` with `value`'s little-endian bytes.
func patch<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int, _ value: T) -> [UInt8] {
    var copy = bytes
    copy.replaceSubrange(offset..<offset + MemoryLayout<T>.size, with: le(value))
    return copy
}
