// One function per parser of user input (DESIGN §2): each runs the parser on the
// fuzzer's bytes and checks, against an independent statement of the grammar, that
// it accepts exactly what it should, rejects with the right errno, and that what it
// accepts survives a round trip through the canonical form.
import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

public enum ParserTargets {
    /// The text a write carries. The filesystem refuses invalid UTF-8 before any
    /// parser sees it; the parsers must still cope with whatever a String holds.
    static func text(_ data: UnsafeRawBufferPointer) -> String {
        String(validating: data, as: UTF8.self) ?? String(decoding: data, as: UTF8.self)
    }

    /// The meaningful lines as the grammar defines them: split on LF, blank lines
    /// and lines whose first non-blank is `#` dropped.
    static func meaningfulLines(_ text: String) -> [Substring] {
        text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).compactMap { line in
            let trimmed = line.drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0d }
            return trimmed.isEmpty || trimmed.first == UInt8(ascii: "#") ? nil : Substring(line)
        }
    }

    static func expectRejected(_ error: WQError, _ allowed: [Int32], _ input: String) {
        fuzzCheck(allowed.contains(error.errno), "errno \(error.errno) (\(error.reason)) for \(Grammar.quoted(input))")
        fuzzCheck(!error.reason.isEmpty, "empty reason")
    }

    // MARK: NAME.filter

    public static func filter(_ data: UnsafeRawBufferPointer) {
        let input = text(data)
        splitFilter(data, whole: Result { () throws(WQError) in try Grammar.filter(input, maxEntries: 16) })
        do {
            let write = try Grammar.filter(input, maxEntries: 16)
            guard case .entries(let entries) = write else { return }
            fuzzCheck(!entries.isEmpty && entries.count <= 16, "\(entries.count) entries")
            for entry in entries {
                fuzzCheck((1...0xff_ffff).contains(entry.type), "type \(entry.type) accepted")
                fuzzCheck(entry.infoFilter & ~entry.infoMask == 0, "filter bits outside the mask accepted")
                fuzzCheck(entry.infoMask & 0x7f == 0, "a mask on the length bits accepted")
            }
            // The canonical form parses back to the same entries.
            let canonical = Grammar.format(filter: QueueFilter(entries))
            do {
                let again = try Grammar.filter(canonical, maxEntries: 16)
                fuzzCheck(again == .entries(entries), "canonical form \(Grammar.quoted(canonical)) reads back differently")
            } catch {
                fuzzCheck(false, "canonical form \(Grammar.quoted(canonical)) refused: \(error)")
            }
            // Matching agrees with the rule written out.
            var probe = FuzzInput(data)
            let filter = QueueFilter(entries)
            for _ in 0..<4 {
                let type = probe.bool() ? entries[probe.below(entries.count)].type : probe.u32() & 0xff_ffff
                let subtype = probe.byte(), info = probe.u32()
                let want = type == 0 || entries.contains {
                    $0.type == type && $0.subtypes.kernelWords[Int(subtype) / 32] >> (UInt32(subtype) % 32) & 1 == 1
                        && info & $0.infoMask == $0.infoFilter
                }
                fuzzCheck(filter.admits(type: type, subtype: subtype, info: info) == want, "admits disagrees")
            }
        } catch {
            expectRejected(error, [EINVAL], input)
        }
    }

    // MARK: sources/NAME/post

    public static func post(_ data: UnsafeRawBufferPointer) {
        let input = text(data)
        splitPost(data, whole: Result { () throws(WQError) in try Grammar.post(input, type: NotificationType.user) })
        do {
            let packed = try Grammar.post(input, type: NotificationType.user)
            let count = try packed.withUnsafeBytes { try Grammar.validatePostBinary($0, type: NotificationType.user).records }
            fuzzCheck(count == meaningfulLines(input).count,
                      "\(count) records from \(meaningfulLines(input).count) lines of \(Grammar.quoted(input))")
        } catch let error as WQError {
            expectRejected(error, [EINVAL, EMSGSIZE], input)
        } catch {
            fuzzCheck(false, "untyped error \(error)")
        }
    }

    // MARK: sources/NAME/post.bin

    /// An independent walk of packed records: nil when the write must be refused.
    static func walk(_ bytes: UnsafeRawBufferPointer, type: UInt32) -> [Range<Int>]? {
        var records: [Range<Int>] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 8 else { return nil }
            let word0 = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
            let length = Int(bytes[offset + 4] & 0x7f)
            guard length >= 8, length <= bytes.count - offset, word0 == type else { return nil }
            records.append(offset..<(offset + length))
            offset += length
        }
        return records
    }

    public static func postBinary(_ data: UnsafeRawBufferPointer) {
        // The first record's own type half the time, so that valid writes are common.
        let type: UInt32 = data.count >= 3 && data[0] & 1 == 0
            ? UInt32(data[0]) | UInt32(data[1]) << 8 | UInt32(data[2]) << 16 : NotificationType.user
        let expected = walk(data, type: type)
        splitPostBinary(data, type: type, whole: Result { () throws(WQError) in try Grammar.validatePostBinary(data, type: type).records })
        do {
            let count = try Grammar.validatePostBinary(data, type: type).records
            fuzzCheck(expected?.count == count, "accepted \(count) records; the walk says \(String(describing: expected?.count))")
        } catch {
            fuzzCheck(expected == nil, "refused a valid write: \(error)")
            expectRejected(error, [EINVAL], "post.bin")
            return
        }
        guard let expected, type != 0 else { return }
        // Delivered through an engine: the same bytes back, watch ID 7 in info.
        let engine = Engine()
        do {
            let queue = try engine.createQueue(named: "q", owner: .root)
            try engine.setSize(of: queue, to: 16_384)
            let source = try engine.createSource(named: "s", owner: .root)
            try engine.setType(of: source, to: type)
            _ = try engine.applyWatches([.add(queue: "q", watchID: 7)], to: source, caller: .root)
            _ = try engine.postBinary(data, to: source)
            var buffer = [UInt8](repeating: 0, count: data.count + 8)
            let read = expected.isEmpty ? 0 : try buffer.withUnsafeMutableBytes { try engine.read(from: queue, into: $0) }
            var want: [UInt8] = []
            for range in expected {
                var record = Array(data[range])
                record[5] = 7
                want += record
            }
            fuzzCheck(Array(buffer[0..<read]) == want, "read back \(fuzzHex(buffer[0..<read])), want \(fuzzHex(want))")
        } catch {
            fuzzCheck(false, "engine refused a valid post.bin write: \(error)")
        }
    }

    // MARK: sources/NAME/watches

    public static func watches(_ data: UnsafeRawBufferPointer) {
        let input = text(data)
        splitWatches(data, whole: Result { () throws(WQError) in try Grammar.watches(input) })
        do {
            let commands = try Grammar.watches(input)
            fuzzCheck(commands.count == meaningfulLines(input).count, "\(commands.count) commands")
            var canonical = ""
            for command in commands {
                switch command {
                case .add(let name, let id):
                    fuzzCheck((try? Grammar.validateName(name)) != nil, "bad name \(Grammar.quoted(name)) accepted")
                    canonical += "\(name) \(id)\n"
                case .remove(let name):
                    fuzzCheck((try? Grammar.validateName(name)) != nil, "bad name \(Grammar.quoted(name)) accepted")
                    canonical += "!\(name)\n"
                }
            }
            fuzzCheck((try? Grammar.watches(canonical)) == commands, "canonical watches read back differently")
        } catch {
            expectRejected(error, [EINVAL], input)
        }
    }

    // MARK: NAME.size, id, type and numbers

    /// The number grammar written out: decimal digits, or 0x/0X and hex digits, as a u64.
    static func referenceNumber(_ token: Substring) -> UInt64? {
        var digits = Array(token.utf8)
        var radix: UInt64 = 10
        if digits.count >= 2, digits[0] == UInt8(ascii: "0"), digits[1] | 0x20 == UInt8(ascii: "x") {
            radix = 16
            digits.removeFirst(2)
        }
        guard !digits.isEmpty else { return nil }
        var value: UInt64 = 0
        for digit in digits {
            let d: UInt64
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt64(digit - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f") where radix == 16: d = UInt64(digit - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F") where radix == 16: d = UInt64(digit - UInt8(ascii: "A") + 10)
            default: return nil
            }
            let (product, overflow1) = value.multipliedReportingOverflow(by: radix)
            let (sum, overflow2) = product.addingReportingOverflow(d)
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        return value
    }

    /// The one token of a single-value file (blanks and line ends around it), if there is exactly one.
    static func singleToken(_ text: String) -> Substring? {
        let tokens = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
        return tokens.count == 1 ? tokens[0] : nil
    }

    public static func values(_ data: UnsafeRawBufferPointer) {
        let input = text(data)
        let token = singleToken(input)
        let number = token.flatMap(referenceNumber)
        do {
            let size = try Grammar.size(input, max: 16_384)
            fuzzCheck(number == UInt64(size) && (1...16_384).contains(size), "size \(size) from \(Grammar.quoted(input))")
        } catch {
            fuzzCheck(number.map { !(1...16_384).contains($0) } ?? true, "size refused \(Grammar.quoted(input)): \(error)")
            expectRejected(error, [EINVAL], input)
        }
        do {
            let id = try Grammar.objectID(input)
            fuzzCheck(number == id, "id \(id) from \(Grammar.quoted(input))")
        } catch {
            fuzzCheck(number == nil, "id refused \(Grammar.quoted(input)): \(error)")
            expectRejected(error, [EINVAL], input)
        }
        do {
            let type = try Grammar.typeFile(input)
            let named = Grammar.typeNames.first { Substring($0.name) == token }?.type
            fuzzCheck(named == type || (number == UInt64(type) && (1...0xff_ffff).contains(type)),
                      "type \(type) from \(Grammar.quoted(input))")
        } catch {
            let named = Grammar.typeNames.contains { Substring($0.name) == token }
            fuzzCheck(!named && number.map { !(1...0xff_ffff).contains($0) } ?? true, "type refused \(Grammar.quoted(input))")
            expectRejected(error, [EINVAL], input)
        }
        // Mount options go through the same number parser.
        do {
            _ = try Grammar.number(input, in: 0...UInt64.max, what: "n")
            fuzzCheck(referenceNumber(Substring(input)) != nil, "number accepted \(Grammar.quoted(input))")
        } catch {
            fuzzCheck(referenceNumber(Substring(input)) == nil, "number refused \(Grammar.quoted(input))")
        }
    }

    // MARK: names, and how inputs are quoted in messages

    public static func names(_ data: UnsafeRawBufferPointer) {
        let name = String(decoding: data, as: UTF8.self)
        let allowed = !name.utf8.isEmpty && name.utf8.count <= 64 && name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "@"), UInt8(ascii: ":"):
                true
            default: false
            }
        }
        do {
            try Grammar.validateName(name)
            fuzzCheck(allowed, "name \(Grammar.quoted(name)) accepted")
        } catch {
            fuzzCheck(!allowed, "name \(Grammar.quoted(name)) refused")
            expectRejected(error, [EINVAL], name)
        }
        // A quoted input is printable ASCII (plus the ellipsis) and bounded.
        let quoted = Grammar.quoted(name)
        fuzzCheck(quoted.utf8.count <= 80 * 4 + 5, "quoted input of \(quoted.utf8.count) bytes")
        fuzzCheck(quoted.unicodeScalars.allSatisfy { (0x20...0x7e).contains($0.value) || $0 == "…" }, "unprintable quote")
    }
}
