import SystemSources

/// One line of a wqfs mount's `sources/mounts/table`, with its fields unescaped.
public struct MountTableEntry: Equatable, Sendable {
    /// The mount's id, as MOUNT records name it (the 64-bit unique id where known).
    public var id: UInt64
    public var parent: UInt64
    public var mountPoint: [UInt8]
    public var fsType: [UInt8]
    public var source: [UInt8]
    public var options: [UInt8]
    /// The mount was unmounted lately (the line ends in `gone`).
    public var gone: Bool

    public init(id: UInt64, parent: UInt64, mountPoint: [UInt8], fsType: [UInt8], source: [UInt8],
                options: [UInt8], gone: Bool = false) {
        self.id = id
        self.parent = parent
        self.mountPoint = mountPoint
        self.fsType = fsType
        self.source = source
        self.options = options
        self.gone = gone
    }
}

/// The text of `sources/mounts/table` at one moment, looked up by mount id: what
/// names the mounts of MOUNT records, whose bytes hold only ids.
///
/// Each line is `ID PARENT MOUNT_POINT FS_TYPE SOURCE OPTIONS`, optionally followed by
/// ` gone`, fields separated by single spaces and escaped as in mountinfo (`\040` for
/// a space), so a field is never split and may be empty. A line of any other shape
/// is skipped: the table is a convenience, and a reader that stopped on it would lose
/// the records it was about to name.
public struct MountTableSnapshot: Equatable, Sendable {
    private var entries: [UInt64: MountTableEntry] = [:]

    /// Parses the table's text.
    public init(text: String) {
        for line in text.utf8.split(separator: UInt8(ascii: "\n")) {
            guard let entry = Self.entry(line) else { continue }
            // An id listed twice would be a present mount and a gone one: the present wins.
            if entries[entry.id].map({ !$0.gone }) != true { entries[entry.id] = entry }
        }
    }

    /// The mount with this id, if the table names it.
    public subscript(id: UInt64) -> MountTableEntry? { entries[id] }

    /// The number of mounts the table names.
    public var count: Int { entries.count }

    private static func entry(_ line: Substring.UTF8View) -> MountTableEntry? {
        let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard fields.count == 6 || (fields.count == 7 && fields[6].elementsEqual("gone".utf8)),
              let id = UInt64(decimal: fields[0]), let parent = UInt64(decimal: fields[1]) else { return nil }
        return MountTableEntry(id: id, parent: parent, mountPoint: MountInfoEntry.unescape(fields[2]),
                               fsType: MountInfoEntry.unescape(fields[3]), source: MountInfoEntry.unescape(fields[4]),
                               options: MountInfoEntry.unescape(fields[5]), gone: fields.count == 7)
    }
}

extension UInt64 {
    /// Plain decimal digits only: no sign, no spaces, no empty string.
    init?<C: Collection<UInt8>>(decimal digits: C) {
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        self.init(String(decoding: digits, as: UTF8.self))
    }
}
