/// The key observer's BPF program (keys.bpf.c beside this file), compiled by the
/// build (Plugins/KeyObserverBPFPlugin) and embedded as base64 in a generated file.
package enum KeyObserverProgram {
    /// The ELF object, decoded from the embedded text; empty if that text were not
    /// base64 (the plugin writes nothing else).
    package static var object: [UInt8] {
        var table = [UInt8](repeating: 0xff, count: 256)
        for (value, character) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(character)] = UInt8(value)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(base64.utf8.count / 4 * 3)
        var word: UInt32 = 0, bits = 0
        for character in base64.utf8 where character != UInt8(ascii: "=") {
            let value = table[Int(character)]
            guard value != 0xff else { return [] }
            word = word << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                bytes.append(UInt8(truncatingIfNeeded: word >> UInt32(bits)))
            }
        }
        return bytes
    }
}
