import CWatchQueueABI

/// Expected records, built by the kernel header's structs (CWatchQueueABI), as the
/// lowercase hex the test client prints.
enum ABI {
    /// A record of `type`/`subtype` with `payload`, delivered under `watchID`.
    static func record(type: UInt32, subtype: UInt32, watchID: UInt32, typeInfo: UInt32 = 0, payload: [UInt8] = []) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 128)
        let length = wq_abi_header(&out, type, subtype, UInt32(8 + payload.count), watchID, typeInfo)
        return Array(out[0..<length]) + payload
    }

    static func removal(watchID: UInt32, objectID: UInt64) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 128)
        let length = wq_abi_removal(&out, watchID, objectID)
        return Array(out[0..<length])
    }

    static func loss() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 128)
        let length = wq_abi_loss(&out)
        return Array(out[0..<length])
    }

    static func key(subtype: UInt32, watchID: UInt32, keyID: UInt32, aux: UInt32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 128)
        let length = wq_abi_key(&out, subtype, watchID, keyID, aux)
        return Array(out[0..<length])
    }

    static var setSizeCommand: UInt32 { wq_abi_ioc_set_size() }
}

func u32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
func u64(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

func hex(_ records: [UInt8]...) -> String { records.map { hex($0) }.joined() }
