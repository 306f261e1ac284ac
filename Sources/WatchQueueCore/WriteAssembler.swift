/// Joins the writes made through one open control file into whole units (lines of
/// text, or the packed records of `post.bin`), so that a unit may straddle two
/// writes, as it does when awk, dd or cat write in blocks of their own size
/// (DESIGN.md §8).
///
/// Each write applies the units it completes, all or nothing, and holds the
/// unfinished tail for the next write (a held record is under 127 bytes, since the
/// applier takes every whole one; a held line is bounded by ``maxHeldLine``);
/// ``finish(_:)`` applies what is held when the
/// file is closed. Once anything is rejected, every later write and finish is
/// refused with the same errno, so nothing after a bad unit is ever applied. Line
/// numbers and byte offsets handed to the applier count from the start of the stream.
public struct WriteAssembler: Sendable {
    /// How a stream divides into units.
    public enum Unit: Sendable {
        /// Lines ending in `\n`.
        case lines
        /// Packed records, each as long as its header says.
        case records
    }

    /// Units to apply, and where they stand in the stream.
    public struct Chunk {
        /// Whole lines (at ``WriteAssembler/finish(_:)``, whatever was held); for
        /// records, every byte held and written: the applier takes the whole records
        /// at its start, which its own walk over them finds (one walk, not two).
        public let bytes: UnsafeRawBufferPointer
        /// The 1-based number, in the stream, of the first line in `bytes`.
        public let firstLine: Int
        /// The offset, in the stream, of the first byte of `bytes`.
        public let firstByte: Int
        /// No earlier chunk was applied through this open file (the first one
        /// replaces a filter; later ones extend it).
        public let isFirst: Bool
        /// The file is being closed: nothing more will come, so a record cut short
        /// is an error now.
        public let isFinal: Bool
    }

    /// What an applier did with a chunk.
    public struct Applied<Result> {
        public var result: Result
        /// The bytes it took from the chunk's start: all of a chunk of lines; the
        /// whole records of a chunk of records (the rest is held for the next write).
        public var taken: Int

        public init(_ result: Result, taken: Int) {
            self.result = result
            self.taken = taken
        }
    }

    /// The longest unfinished line held between writes. A record is at most 127
    /// bytes, so a held record tail is bounded by its header alone.
    public static let maxHeldLine = 4096

    public let unit: Unit
    /// Bytes of an unfinished unit, waiting for the rest.
    private var held: [UInt8] = []
    /// Lines and bytes of the stream before `held`.
    private var linesBefore = 0, bytesBefore = 0
    /// Whether any chunk has been applied.
    public private(set) var applied = false
    /// The rejection that ended the stream, if any.
    public private(set) var rejection: WQError?

    public init(unit: Unit) { self.unit = unit }

    /// Bytes held for the next write.
    public var heldCount: Int { held.count }

    /// Takes one write: applies the units it completes (with what was held before it)
    /// through `apply`, and holds the rest. Returns what `apply` returned, or nil when
    /// the write completed no unit.
    /// - Throws: the applier's error, or EINVAL for a unit that cannot be framed (a
    ///   record length under 8, a held line over ``maxHeldLine`` bytes); after any
    ///   rejection, the first rejection again.
    @inlinable
    public mutating func write<R>(_ data: UnsafeRawBufferPointer,
                                  _ apply: (Chunk) throws(WQError) -> Applied<R>) throws(WQError) -> R? {
        // The generic part is only this: it inlines where the result type is known,
        // and the work, compiled once, calls back with a plain closure.
        var result: R?
        try feed(data, final: false) { (chunk) throws(WQError) -> Int in
            let applied = try apply(chunk)
            if applied.taken > 0 { result = applied.result }
            return applied.taken
        }
        return result
    }

    /// The file is closed: applies what is held, whole or not, so an unfinished unit
    /// is applied or rejected now. Returns nil when nothing was held.
    /// - Throws: the applier's error; after an earlier rejection, that rejection.
    @inlinable
    public mutating func finish<R>(_ apply: (Chunk) throws(WQError) -> Applied<R>) throws(WQError) -> R? {
        var result: R?
        try feed(nil, final: true) { (chunk) throws(WQError) -> Int in
            let applied = try apply(chunk)
            if applied.taken > 0 { result = applied.result }
            return applied.taken
        }
        return result
    }

    /// One write (`data`), or the close (`final`, no data): frames what is held and
    /// written, offers it to `apply`, which returns the bytes it took, and holds the
    /// rest.
    @usableFromInline
    mutating func feed(_ data: UnsafeRawBufferPointer?, final: Bool,
                       _ apply: (Chunk) throws(WQError) -> Int) throws(WQError) {
        if let rejection { throw rejection }
        if final {
            guard !held.isEmpty else { return }
            let rest = held
            try rest.withUnsafeBytes { bytes in Result { () throws(WQError) in try take(bytes, final: true, apply) } }.get()
        } else if let data {
            if held.isEmpty { return try take(data, final: false, apply) }
            var joined = held
            joined.append(contentsOf: data)
            try joined.withUnsafeBytes { bytes in Result { () throws(WQError) in try take(bytes, final: false, apply) } }.get()
        }
    }

    private mutating func take(_ bytes: UnsafeRawBufferPointer, final: Bool,
                               _ apply: (Chunk) throws(WQError) -> Int) throws(WQError) {
        do throws(WQError) {
            let offered = final || unit == .records ? bytes.count : try wholeLines(bytes)
            var taken = 0
            if offered > 0 {
                let units = UnsafeRawBufferPointer(rebasing: bytes[..<offered])
                taken = min(try apply(Chunk(bytes: units, firstLine: linesBefore + 1, firstByte: bytesBefore,
                                            isFirst: !applied, isFinal: final)), offered)
                if taken > 0 { applied = true }
                if unit == .lines { linesBefore += Self.newlines(in: UnsafeRawBufferPointer(rebasing: bytes[..<taken])) }
                bytesBefore += taken
            }
            held = taken == bytes.count ? [] : Array(bytes[taken...])
        } catch {
            rejection = error
            held = []
            throw error
        }
    }

    /// The length of the longest prefix of `bytes` made of whole lines.
    private func wholeLines(_ bytes: UnsafeRawBufferPointer) throws(WQError) -> Int {
        var end = bytes.count
        while end > 0 && bytes[end - 1] != ASCII.newline { end -= 1 }
        guard bytes.count - end <= Self.maxHeldLine else {
            let line = linesBefore + Self.newlines(in: UnsafeRawBufferPointer(rebasing: bytes[..<end])) + 1
            throw .invalid("line \(line): over \(Self.maxHeldLine) bytes without a newline")
        }
        return end
    }

    private static func newlines(in bytes: UnsafeRawBufferPointer) -> Int {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 0 }
        var count = 0
        for index in 0..<bytes.count where base[index] == ASCII.newline { count &+= 1 }
        return count
    }
}
