#if canImport(Glibc)
import Glibc
#endif

/// The text grammars of the control files (DESIGN.md §2): parsers that reject with a
/// typed error naming the offending token, and printers of the canonical form.
/// A multi-line input is parsed whole before anything is applied.
public enum Grammar {
    /// Quotes a token for an error message, escaping what is not printable ASCII.
    public static func quoted<S: StringProtocol>(_ token: S) -> String {
        var out = "'"
        for byte in token.utf8.prefix(80) {
            switch byte {
            case 0x20...0x7e where byte != UInt8(ascii: "'") && byte != UInt8(ascii: "\\"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
            }
        }
        return out + (token.utf8.count > 80 ? "…'" : "'")
    }

    /// The meaningful lines of a write: split on newlines (`\n` or `\r\n`), blank lines
    /// and lines starting with `#` dropped, each with its line number (the first line
    /// of `text` is `firstLine`).
    static func lines(_ text: String, firstLine: Int = 1) -> [(number: Int, text: Substring)] {
        var result: [(Int, Substring)] = []
        let bytes = Array(text.utf8)
        bytes.withUnsafeBufferPointer { bytes in
            forEachLine(bytes, firstLine: firstLine) { number, line in
                result.append((number, Substring(String(decoding: line, as: UTF8.self))))
            }
        }
        return result
    }

    /// Calls `body` with each meaningful line of `bytes` (the rules of `lines`) and its
    /// number, counting from `firstLine`. Lines split at ASCII bytes only, so each is
    /// valid UTF-8 when `bytes` is.
    static func forEachLine<E: Error>(
        _ bytes: UnsafeBufferPointer<UInt8>, firstLine: Int = 1, _ body: (Int, UnsafeBufferPointer<UInt8>) throws(E) -> Void
    ) throws(E) {
        var start = 0, number = firstLine - 1
        while start <= bytes.count {
            number += 1
            var end = start
            while end < bytes.count && bytes[end] != ASCII.newline { end += 1 }
            let next = end + 1
            // The `\r` of a `\r\n` ends the line; it is not part of it.
            if end < bytes.count && end > start && bytes[end - 1] == ASCII.carriageReturn { end -= 1 }
            var first = start
            while first < end && (ASCII.isBlank(bytes[first]) || bytes[first] == ASCII.carriageReturn) { first += 1 }
            if first < end && bytes[first] != ASCII.hash {
                try body(number, UnsafeBufferPointer(rebasing: bytes[start..<end]))
            }
            start = next
        }
    }

    /// Splits on spaces and tabs.
    static func words(_ line: Substring) -> [Substring] {
        line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
    }

    /// Parses an unsigned number, decimal or `0x` hexadecimal, within `range`. Only
    /// digits are accepted: no sign, no blanks.
    public static func number<S: StringProtocol>(_ token: S, in range: ClosedRange<UInt64>, what: String) throws(WQError) -> UInt64 {
        let bytes = Array(token.utf8)
        return try bytes.withUnsafeBufferPointer { (bytes) throws(WQError) -> UInt64 in
            try number(bytes, in: range, what: what)
        }
    }

    /// `number` over the token's UTF-8 bytes.
    static func number(_ token: UnsafeBufferPointer<UInt8>, in range: ClosedRange<UInt64>, what: String) throws(WQError) -> UInt64 {
        let hex = token.count >= 2 && token[0] == UInt8(ascii: "0") && (token[1] | 0x20) == UInt8(ascii: "x")
        var value: UInt64? = token.count > (hex ? 2 : 0) ? 0 : nil
        for digit in token[(hex ? 2 : 0)...] {
            guard let current = value, let digitValue = hex ? hexValue(digit) : decimalValue(digit) else {
                value = nil
                break
            }
            let (shifted, overflow) = current.multipliedReportingOverflow(by: hex ? 16 : 10)
            let (sum, carry) = shifted.addingReportingOverflow(UInt64(digitValue))
            value = overflow || carry ? nil : sum
        }
        guard let value else { throw .invalid("\(what) \(quoted(token)) is not a number (decimal or 0x…)") }
        guard range.contains(value) else {
            throw .invalid("\(what) \(quoted(token)) is outside \(range.lowerBound)..\(range.upperBound)")
        }
        return value
    }

    /// Quotes a token given as UTF-8 bytes.
    static func quoted(_ token: UnsafeBufferPointer<UInt8>) -> String {
        quoted(String(decoding: token, as: UTF8.self))
    }

    // MARK: names

    /// The longest name, in bytes.
    public static let maxNameLength = 64

    /// Checks a queue or source name: 1–64 bytes of letters, digits, `_ - @ :`.
    public static func validateName(_ name: String) throws(WQError) {
        let bytes = name.utf8
        guard !bytes.isEmpty else { throw .invalid("empty name") }
        guard bytes.count <= maxNameLength else {
            throw .invalid("name \(quoted(name)) is longer than \(maxNameLength) bytes")
        }
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"),
                 UInt8(ascii: "@"), UInt8(ascii: ":"):
                continue
            default:
                throw .invalid("name \(quoted(name)) may hold only letters, digits and _ - @ :")
            }
        }
    }

    // MARK: types

    /// Type names accepted wherever a type is: `key` is the kernel's key type, `user`
    /// the type a new source posts.
    public static let typeNames: [(name: String, type: UInt32)] = [
        ("key", NotificationType.keyNotify), ("key_notify", NotificationType.keyNotify),
        ("user", NotificationType.user),
    ]

    /// Parses a type: a number 1..0xffffff or a known name. Type 0 is the queue
    /// machinery's own and cannot be posted or filtered.
    public static func type<S: StringProtocol>(_ token: S) throws(WQError) -> UInt32 {
        if let named = typeNames.first(where: { $0.name == token }) { return named.type }
        guard let first = token.first, first.isASCII, first.isNumber else {
            throw .invalid("type \(quoted(token)) is neither a number nor one of \(typeNames.map(\.name).joined(separator: ", "))")
        }
        return UInt32(try number(token, in: 1...UInt64(RecordLayout.maxType), what: "type"))
    }

    /// Parses the text written to a `type` file.
    public static func typeFile(_ text: String) throws(WQError) -> UInt32 {
        try type(singleToken(text, what: "type"))
    }

    /// Parses the text written to an `id` file: a u64.
    public static func objectID(_ text: String) throws(WQError) -> UInt64 {
        try number(singleToken(text, what: "id"), in: 0...UInt64.max, what: "id")
    }

    /// Parses the text written to a `NAME.size` file.
    public static func size(_ text: String, max: Int) throws(WQError) -> Int {
        Int(try number(singleToken(text, what: "size"), in: 1...UInt64(max), what: "size"))
    }

    static func singleToken(_ text: String, what: String) throws(WQError) -> Substring {
        // Line ends separate tokens like blanks: deleting them would join "3\n2" into 32.
        let tokens = text[...].split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" })
        guard tokens.count == 1 else {
            throw .invalid(tokens.isEmpty ? "no \(what) given" : "\(what) must be one value, got \(quoted(text))")
        }
        return tokens[0]
    }

    // MARK: filters

    /// What a write to `NAME.filter` asks for.
    public enum FilterWrite: Equatable, Sendable {
        /// `none` (or nothing at all): remove the filter.
        case clear
        /// Entries to install or append.
        case entries([FilterEntry])
    }

    /// Parses a write to `NAME.filter`: one entry per line; a line `none` adds none, and
    /// a write with no entries at all clears the filter, unless it `continues` one open
    /// file's stream, whose later writes only extend what its first one set (so a
    /// stream means the same however it is cut). Line numbers start at `firstLine`.
    public static func filter(_ text: String, maxEntries: Int, firstLine: Int = 1,
                              continuing: Bool = false) throws(WQError) -> FilterWrite {
        let lines = lines(text, firstLine: firstLine).filter { words($0.text) != ["none"] }
        if lines.isEmpty { return continuing ? .entries([]) : .clear }
        guard lines.count <= maxEntries else {
            throw .invalid("\(lines.count) filter entries exceed the limit of \(maxEntries)")
        }
        var entries: [FilterEntry] = []
        for line in lines {
            do throws(WQError) {
                entries.append(try filterEntry(line.text))
            } catch {
                throw WQError(error.errno, "line \(line.number): \(error.reason)")
            }
        }
        return .entries(entries)
    }

    /// Parses `type=T [subtypes=LIST] [info=FILTER/MASK]`.
    public static func filterEntry(_ line: Substring) throws(WQError) -> FilterEntry {
        var type: UInt32?
        var subtypes: SubtypeSet?
        var info: (UInt32, UInt32)?
        for word in words(line) {
            guard let equals = word.firstIndex(of: "=") else {
                throw .invalid("expected key=value, got \(quoted(word))")
            }
            let key = word[..<equals]
            let value = word[word.index(after: equals)...]
            switch key {
            case "type" where type == nil:
                type = try Self.type(value)
            case "subtypes" where subtypes == nil:
                subtypes = try subtypeList(value)
            case "info" where info == nil:
                let parts = value.split(separator: "/", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw .invalid("info \(quoted(value)) is not FILTER/MASK") }
                info = (UInt32(try number(parts[0], in: 0...UInt64(UInt32.max), what: "info filter")),
                        UInt32(try number(parts[1], in: 0...UInt64(UInt32.max), what: "info mask")))
            case "type", "subtypes", "info":
                throw .invalid("\(key)= given twice")
            default:
                throw .invalid("unknown key \(quoted(key)) (expected type=, subtypes=, info=)")
            }
        }
        guard let type else { throw .invalid("missing type=") }
        return try FilterEntry(type: type, subtypes: subtypes ?? .all, infoFilter: info?.0 ?? 0, infoMask: info?.1 ?? 0)
    }

    /// Parses `all` or comma-separated `N` and `N-M` in 0..255.
    public static func subtypeList(_ text: Substring) throws(WQError) -> SubtypeSet {
        if text == "all" { return .all }
        var set = SubtypeSet()
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            let low = try number(bounds[0], in: 0...255, what: "subtype")
            let high = bounds.count == 2 ? try number(bounds[1], in: 0...255, what: "subtype") : low
            guard low <= high else { throw .invalid("subtype range \(quoted(item)) runs backwards") }
            for subtype in low...high { set.insert(UInt8(subtype)) }
        }
        return set
    }

    /// The canonical text of a filter: one line per entry, or `none`.
    public static func format(filter: QueueFilter) -> String {
        guard !filter.isEmpty else { return "none\n" }
        return filter.entries.map { format(entry: $0) + "\n" }.joined()
    }

    /// `type=T subtypes=LIST info=0xF/0xM`, the form reading a filter gives back.
    public static func format(entry: FilterEntry) -> String {
        "type=\(entry.type) subtypes=\(format(subtypes: entry.subtypes)) info=0x\(String(entry.infoFilter, radix: 16))/0x\(String(entry.infoMask, radix: 16))"
    }

    /// `all`, or the shortest list of `N` and `N-M` items.
    public static func format(subtypes: SubtypeSet) -> String {
        if subtypes == .all { return "all" }
        var items: [String] = []
        var subtype = 0
        while subtype < 256 {
            guard subtypes.contains(UInt8(subtype)) else { subtype += 1; continue }
            var end = subtype
            while end < 255 && subtypes.contains(UInt8(end + 1)) { end += 1 }
            items.append(end == subtype ? "\(subtype)" : "\(subtype)-\(end)")
            subtype = end + 1
        }
        return items.isEmpty ? "none" : items.joined(separator: ",")
    }

    // MARK: posting

    /// Parses a write to `post` into packed records of `type`, one per line:
    /// `SUBTYPE [info=N] [u8=N|u16=N|u32=N|u64=N|hex=HEX|str=TEXT]…`. It works on the
    /// UTF-8 bytes (every separator is ASCII) and allocates per write, not per record.
    /// Line numbers in errors start at `firstLine`.
    public static func post(_ text: String, type: UInt32, firstLine: Int = 1) throws(WQError) -> [UInt8] {
        let bytes = Array(text.utf8)
        var packed: [UInt8] = []
        packed.reserveCapacity(bytes.count + 2 * RecordLayout.headerSize)
        try bytes.withUnsafeBufferPointer { (bytes) throws(WQError) in
            try forEachLine(bytes, firstLine: firstLine) { (number, line) throws(WQError) in
                do throws(WQError) {
                    try appendPostRecord(line, type: type, to: &packed)
                } catch {
                    throw WQError(error.errno, "line \(number): \(error.reason)")
                }
            }
        }
        return packed
    }

    static func appendPostRecord(_ line: UnsafeBufferPointer<UInt8>, type: UInt32, to packed: inout [UInt8]) throws(WQError) {
        let start = packed.count
        var index = 0
        while index < line.count && ASCII.isBlank(line[index]) { index += 1 }
        var end = index
        while end < line.count && !ASCII.isBlank(line[end]) { end += 1 }
        let subtype = UInt8(try number(UnsafeBufferPointer(rebasing: line[index..<end]), in: 0...255, what: "subtype"))
        index = end
        packed.append(contentsOf: repeatElement(0, count: RecordLayout.headerSize))
        var typeInfo: UInt16 = 0
        var sawInfo = false
        func append<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { packed.append(contentsOf: $0) }
        }
        while true {
            while index < line.count && (ASCII.isBlank(line[index]) || line[index] == ASCII.carriageReturn) { index += 1 }
            guard index < line.count else { break }
            let rest = UnsafeBufferPointer(rebasing: line[index...])
            if rest.starts(with: "str=".utf8) {
                // str= takes the rest of the line, spaces included.
                let text = rest.last == ASCII.carriageReturn && rest.count > 4 ? rest[4..<(rest.count - 1)] : rest[4...]
                packed.append(contentsOf: text)
                break
            }
            end = index
            while end < line.count && !ASCII.isBlank(line[end]) && line[end] != ASCII.carriageReturn { end += 1 }
            let word = UnsafeBufferPointer(rebasing: line[index..<end])
            index = end
            guard let equals = word.firstIndex(of: UInt8(ascii: "=")) else {
                throw .invalid("expected key=value, got \(quoted(word))")
            }
            let key = UnsafeBufferPointer(rebasing: word[..<equals])
            let value = UnsafeBufferPointer(rebasing: word[(equals + 1)...])
            if ASCII.equal(key, "info") {
                guard !sawInfo, packed.count == start + RecordLayout.headerSize else {
                    throw .invalid("info= must come once, before the payload")
                }
                sawInfo = true
                typeInfo = UInt16(try number(value, in: 0...0xffff, what: "info"))
            } else if ASCII.equal(key, "u8") {
                packed.append(UInt8(try number(value, in: 0...0xff, what: "u8")))
            } else if ASCII.equal(key, "u16") {
                append(UInt16(try number(value, in: 0...0xffff, what: "u16")))
            } else if ASCII.equal(key, "u32") {
                append(UInt32(try number(value, in: 0...0xffff_ffff, what: "u32")))
            } else if ASCII.equal(key, "u64") {
                append(try number(value, in: 0...UInt64.max, what: "u64"))
            } else if ASCII.equal(key, "hex") {
                try appendHex(value, to: &packed)
            } else {
                throw .invalid("unknown item \(quoted(key)) (expected info=, u8=, u16=, u32=, u64=, hex=, str=)")
            }
            guard packed.count - start <= RecordLayout.maxLength else { break }
        }
        let length = packed.count - start
        guard length <= RecordLayout.maxLength else {
            throw WQError(EMSGSIZE, "record of \(length) bytes exceeds \(RecordLayout.maxLength)")
        }
        packed.withUnsafeMutableBytes { bytes in
            RecordHeader(type: type, subtype: subtype, length: length, typeInfo: typeInfo)
                .store(to: bytes.baseAddress! + start)
        }
    }

    /// Appends the bytes that pairs of hex digits spell.
    static func appendHex(_ digits: UnsafeBufferPointer<UInt8>, to packed: inout [UInt8]) throws(WQError) {
        guard digits.count % 2 == 0 else { throw .invalid("hex \(quoted(digits)) has an odd number of digits") }
        var index = 0
        while index < digits.count {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else {
                throw .invalid("hex \(quoted(digits)) holds a non-hex digit")
            }
            packed.append(high << 4 | low)
            index += 2
        }
    }

    private static func decimalValue(_ digit: UInt8) -> UInt8? {
        digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9") ? digit - UInt8(ascii: "0") : nil
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Checks a write to `post.bin`: packed records, each of the source's `type`, of
    /// length 8..127 and lying wholly inside the write. Watch-ID bits are ignored
    /// (delivery sets them). Returns the number of records and the bytes they take.
    /// Offsets in errors count from `firstByte`. With `partial`, a record cut short at
    /// the end ends the records instead of the write (the rest of it is to come),
    /// unless its length, once known, is under 8.
    @discardableResult
    public static func validatePostBinary(_ bytes: UnsafeRawBufferPointer, type: UInt32, firstByte: Int = 0,
                                          partial: Bool = false) throws(WQError) -> (records: Int, bytes: Int) {
        guard let base = bytes.baseAddress else { return (0, 0) }
        // RecordIterator's rules in a loop of plain loads: this runs for every record
        // posted to post.bin.
        var offset = 0, records = 0
        while offset < bytes.count {
            let start = base + offset
            let available = bytes.count &- offset
            guard let length = RecordIterator.length(at: start, available: available) else {
                let error = RecordIterator.error(at: start, offset: offset, available: available)
                if partial {
                    // Cut short by the end: the rest may come, unless the length it
                    // already shows is under 8, which no rest can mend.
                    switch error {
                    case .runsPastEnd: return (records, offset)
                    case .truncatedHeader where available <= RecordLayout.lengthByte: return (records, offset)
                    case .truncatedHeader:
                        let shown = Int(start.load(fromByteOffset: RecordLayout.lengthByte, as: UInt8.self) & UInt8(RecordLayout.lengthMask))
                        guard shown < RecordLayout.headerSize else { return (records, offset) }
                        throw invalid(.lengthTooSmall(offset: offset, length: shown), firstByte: firstByte)
                    case .lengthTooSmall: break
                    }
                }
                throw invalid(error, firstByte: firstByte)
            }
            let recordType = start.loadUnaligned(as: UInt32.self).littleEndian & RecordLayout.maxType
            guard recordType == type else {
                throw .invalid("record at byte \(firstByte + offset) has type \(recordType), the source posts type \(type)")
            }
            offset &+= length
            records &+= 1
        }
        return (records, offset)
    }

    /// The message for a malformed record in a write to `post.bin` whose first byte
    /// is byte `firstByte` of the stream.
    static func invalid(_ error: RecordStreamError, firstByte: Int) -> WQError {
        switch error {
        case .truncatedHeader(let offset, let available):
            .invalid("\(available) stray bytes at byte \(firstByte + offset): not a whole record header")
        case .lengthTooSmall(let offset, let length):
            .invalid("record at byte \(firstByte + offset) has length \(length), under 8")
        case .runsPastEnd(let offset, let length, let available):
            .invalid("record at byte \(firstByte + offset) has length \(length) but only \(available) bytes remain")
        }
    }

    // MARK: watches

    /// One line written to a `watches` file.
    public enum WatchCommand: Equatable, Sendable {
        /// `QUEUE WATCH_ID`: watch this source from the queue.
        case add(queue: String, watchID: UInt8)
        /// `!QUEUE`: remove the queue's watch of this source.
        case remove(queue: String)
    }

    /// Parses a write to `watches`, one command per line, numbered from `firstLine`.
    public static func watches(_ text: String, firstLine: Int = 1) throws(WQError) -> [WatchCommand] {
        var commands: [WatchCommand] = []
        for line in lines(text, firstLine: firstLine) {
            do throws(WQError) {
                let words = words(line.text)
                if words.count == 1, words[0].hasPrefix("!") {
                    let name = String(words[0].dropFirst())
                    try validateName(name)
                    commands.append(.remove(queue: name))
                } else if words.count == 2 {
                    let name = String(words[0])
                    try validateName(name)
                    commands.append(.add(queue: name, watchID: UInt8(try number(words[1], in: 0...255, what: "watch ID"))))
                } else {
                    throw .invalid("expected 'QUEUE WATCH_ID' or '!QUEUE', got \(quoted(line.text))")
                }
            } catch {
                throw WQError(error.errno, "line \(line.number): \(error.reason)")
            }
        }
        return commands
    }
}

/// The ASCII bytes the grammars split on.
enum ASCII {
    static let newline = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")
    static let hash = UInt8(ascii: "#")

    /// Whether `bytes` spell `literal`.
    @inline(__always)
    static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        literal.utf8CodeUnitCount == bytes.count
            && (bytes.isEmpty || memcmp(bytes.baseAddress!, literal.utf8Start, bytes.count) == 0)
    }

    /// A space or a tab.
    @inline(__always)
    static func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
}
