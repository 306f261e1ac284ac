/// A set of subtypes 0...255 as a 256-bit map (bit N of word N/64).
public struct SubtypeSet: Equatable, Hashable, Sendable {
    public var words: (UInt64, UInt64, UInt64, UInt64)

    public init() { words = (0, 0, 0, 0) }

    /// Every subtype.
    public static let all: SubtypeSet = {
        var set = SubtypeSet()
        set.words = (~0, ~0, ~0, ~0)
        return set
    }()

    public func contains(_ subtype: UInt8) -> Bool {
        let bit = UInt64(1) << UInt64(subtype & 63)
        switch subtype >> 6 {
        case 0: return words.0 & bit != 0
        case 1: return words.1 & bit != 0
        case 2: return words.2 & bit != 0
        default: return words.3 & bit != 0
        }
    }

    public mutating func insert(_ subtype: UInt8) {
        let bit = UInt64(1) << UInt64(subtype & 63)
        switch subtype >> 6 {
        case 0: words.0 |= bit
        case 1: words.1 |= bit
        case 2: words.2 |= bit
        default: words.3 |= bit
        }
    }

    public var isEmpty: Bool { words.0 | words.1 | words.2 | words.3 == 0 }

    public mutating func formUnion(_ other: SubtypeSet) {
        words = (words.0 | other.words.0, words.1 | other.words.1, words.2 | other.words.2, words.3 | other.words.3)
    }

    /// The subtypes as `subtype_filter[8]` of `struct watch_notification_type_filter`.
    public var kernelWords: [UInt32] {
        [words.0, words.1, words.2, words.3].flatMap { [UInt32(truncatingIfNeeded: $0), UInt32(truncatingIfNeeded: $0 >> 32)] }
    }

    public static func == (a: SubtypeSet, b: SubtypeSet) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0); hasher.combine(words.1); hasher.combine(words.2); hasher.combine(words.3)
    }
}

/// One filter entry, as `struct watch_notification_type_filter`: a type, the subtypes
/// it lets through, and a test on `info`.
public struct FilterEntry: Equatable, Hashable, Sendable {
    public var type: UInt32
    public var subtypes: SubtypeSet
    public var infoFilter: UInt32
    public var infoMask: UInt32

    /// Builds an entry after the kernel's checks: `type` in 1...0xffffff, no filter bit
    /// outside the mask, and a mask that leaves the length bits alone.
    public init(type: UInt32, subtypes: SubtypeSet = .all, infoFilter: UInt32 = 0, infoMask: UInt32 = 0) throws(WQError) {
        guard (1...RecordLayout.maxType).contains(type) else {
            throw .invalid("type \(type) is outside 1..0xffffff")
        }
        guard infoFilter & ~infoMask == 0 else {
            throw .invalid("info filter 0x\(String(infoFilter, radix: 16)) has bits outside mask 0x\(String(infoMask, radix: 16))")
        }
        guard infoMask & RecordLayout.lengthMask == 0 else {
            throw .invalid("info mask 0x\(String(infoMask, radix: 16)) touches the length bits 0x7f")
        }
        self.type = type
        self.subtypes = subtypes
        self.infoFilter = infoFilter
        self.infoMask = infoMask
    }

    /// True when a record of `type`/`subtype` with `info` (length and watch ID
    /// already in it) passes this entry.
    @inline(__always)
    public func matches(type: UInt32, subtype: UInt8, info: UInt32) -> Bool {
        self.type == type && subtypes.contains(subtype) && info & infoMask == infoFilter
    }
}

/// A queue's filter: no entries means no filter, and everything passes.
public struct QueueFilter: Equatable, Sendable {
    public private(set) var entries: [FilterEntry]

    public init(_ entries: [FilterEntry] = []) { self.entries = entries }

    public var isEmpty: Bool { entries.isEmpty }

    /// The kernel's rule: META records always pass; otherwise some entry must match.
    @inline(__always)
    public func admits(type: UInt32, subtype: UInt8, info: UInt32) -> Bool {
        if entries.isEmpty || type == NotificationType.meta { return true }
        for entry in entries where entry.matches(type: type, subtype: subtype, info: info) {
            return true
        }
        return false
    }
}
