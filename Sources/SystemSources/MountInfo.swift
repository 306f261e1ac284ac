/// One line of `/proc/PID/mountinfo` (proc(5)), decoded:
///
///     36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
///     (1)(2) (3)  (4)     (5)        (6)       (7)    (8) (9)    (10)         (11)
///
/// mount id, parent id, major:minor, root, mount point, mount options, optional
/// fields (zero or more, e.g. `shared:1`), a lone `-`, fs type, source, super options.
/// Fields are separated by single spaces; a field may be empty (a mount whose
/// source is the empty string shows two spaces). The kernel writes a space, tab,
/// newline or backslash inside a field as a three-digit octal escape (`\040`,
/// `\011`, `\012`, `\134`); any such escape is decoded. Strings are kept as bytes:
/// mount points need not be UTF-8.
public struct MountInfoEntry: Equatable, Hashable, Sendable {
    /// mountinfo's mount id: the legacy 32-bit id, which the kernel reuses after an
    /// unmount (not the 64-bit unique id fanotify and statmount give).
    public var legacyMountID: UInt64
    /// The legacy id of the parent (the mount's own id for the namespace root).
    public var legacyParentID: UInt64
    /// The 64-bit unique mount id (`STATMOUNT_MNT_BASIC`'s `mnt_id`), when a caller
    /// has learnt it; mountinfo does not carry it.
    public var uniqueMountID: UInt64?
    public var major: UInt32
    public var minor: UInt32
    /// The directory of the filesystem that forms the mount's root.
    public var root: [UInt8]
    /// Where it is mounted, relative to the reading process's root.
    public var mountPoint: [UInt8]
    /// Per-mount options; the first is always `ro` or `rw`.
    public var mountOptions: [UInt8]
    /// Propagation and other tagged fields (`shared:N`, `master:N`, `unbindable`…).
    public var optionalFields: [[UInt8]]
    public var fsType: [UInt8]
    public var source: [UInt8]
    /// Per-superblock options.
    public var superOptions: [UInt8]

    public init(legacyMountID: UInt64, legacyParentID: UInt64, uniqueMountID: UInt64? = nil,
                major: UInt32, minor: UInt32, root: [UInt8], mountPoint: [UInt8], mountOptions: [UInt8],
                optionalFields: [[UInt8]] = [], fsType: [UInt8], source: [UInt8], superOptions: [UInt8]) {
        self.legacyMountID = legacyMountID
        self.legacyParentID = legacyParentID
        self.uniqueMountID = uniqueMountID
        self.major = major
        self.minor = minor
        self.root = root
        self.mountPoint = mountPoint
        self.mountOptions = mountOptions
        self.optionalFields = optionalFields
        self.fsType = fsType
        self.source = source
        self.superOptions = superOptions
    }

    /// Whether the mount is read-only: its first mount option is `ro`.
    public var isReadOnly: Bool { Self.firstOption(mountOptions).elementsEqual("ro".utf8) }

    /// The mount options after the leading `ro`/`rw`.
    var otherMountOptions: ArraySlice<UInt8> { Self.afterFirstOption(mountOptions) }

    /// Decodes one line (without its newline); `lineNumber` goes into errors.
    public init<C: Collection>(parsing line: C, lineNumber: Int = 1) throws(DecodeError) where C.Element == UInt8 {
        func error(_ reason: String) -> DecodeError { DecodeError(.mountinfo, at: lineNumber, reason) }
        let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        // The separator is a raw `-` at index 6 or later: the fixed fields before it
        // may themselves be "-" (a mount point, say) without ending anything.
        guard fields.count >= 10,
              let dash = fields[6...].firstIndex(where: { $0.elementsEqual("-".utf8) }) else {
            throw error("not a mountinfo line: fewer than 10 fields or no '-' separator")
        }
        let after = fields[(dash + 1)...]
        guard after.count >= 3 else { throw error("\(after.count) fields after '-', 3 expected") }

        func number(_ field: C.SubSequence, _ what: String, max: UInt64) throws(DecodeError) -> UInt64 {
            guard let value = Uevent.decimal(field, max: max) else {
                throw error("\(what) \(Uevent.quoted(field)) is not a decimal number")
            }
            return value
        }
        legacyMountID = try number(fields[0], "mount id", max: UInt64.max)
        legacyParentID = try number(fields[1], "parent id", max: UInt64.max)
        let device = fields[2].split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        guard device.count == 2 else { throw error("device \(Uevent.quoted(fields[2])) is not MAJOR:MINOR") }
        major = UInt32(try number(device[0], "major", max: UInt64(UInt32.max)))
        minor = UInt32(try number(device[1], "minor", max: UInt64(UInt32.max)))
        root = Self.unescape(fields[3])
        mountPoint = Self.unescape(fields[4])
        let options = Self.unescape(fields[5])
        let first = Self.firstOption(options)
        guard first.elementsEqual("ro".utf8) || first.elementsEqual("rw".utf8) else {
            throw error("mount options \(Uevent.quoted(options)) do not start with ro or rw")
        }
        mountOptions = options
        optionalFields = fields[6..<dash].map { Self.unescape($0) }
        let startOfAfter = after.startIndex
        fsType = Self.unescape(after[startOfAfter])
        source = Self.unescape(after[startOfAfter + 1])
        // The kernel escapes spaces in super options, but a filesystem printing its
        // own options might not: keep any extra fields as part of them.
        superOptions = Self.unescape(Array(after[(startOfAfter + 2)...].joined(separator: [UInt8(ascii: " ")])))
        uniqueMountID = nil
    }

    /// The line in the kernel's form, escapes included (no newline): what parses
    /// back to this entry (the unique id aside, which mountinfo does not carry).
    public var line: [UInt8] {
        var fields: [[UInt8]] = [
            Array(String(legacyMountID).utf8), Array(String(legacyParentID).utf8),
            Array("\(major):\(minor)".utf8),
            Self.escape(root), Self.escape(mountPoint), Self.escape(mountOptions),
        ]
        // An optional field that reads "-" would end the list: escape it.
        fields += optionalFields.map { $0.elementsEqual("-".utf8) ? Array("\\055".utf8) : Self.escape($0) }
        fields += [Array("-".utf8), Self.escape(fsType), Self.escape(source), Self.escape(superOptions)]
        return Array(fields.joined(separator: [UInt8(ascii: " ")]))
    }

    // MARK: escapes

    /// Decodes every `\ooo` (three octal digits, at most 0o377); any other
    /// backslash stays as it is.
    public static func unescape<C: Collection>(_ field: C) -> [UInt8] where C.Element == UInt8 {
        let bytes = Array(field)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        func octal(_ byte: UInt8) -> UInt8? {
            byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "7") ? byte - UInt8(ascii: "0") : nil
        }
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\\"), index + 3 < bytes.count,
               let a = octal(bytes[index + 1]), let b = octal(bytes[index + 2]), let c = octal(bytes[index + 3]), a <= 3 {
                out.append(a << 6 | b << 3 | c)
                index += 4
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return out
    }

    /// Escapes what the kernel escapes (space, tab, newline, backslash) as octal.
    static func escape(_ field: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(field.count)
        for byte in field {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\\"):
                out += [UInt8(ascii: "\\"), UInt8(ascii: "0") + byte >> 6,
                        UInt8(ascii: "0") + (byte >> 3) & 7, UInt8(ascii: "0") + byte & 7]
            default:
                out.append(byte)
            }
        }
        return out
    }

    static func firstOption(_ options: [UInt8]) -> ArraySlice<UInt8> {
        options.prefix { $0 != UInt8(ascii: ",") }
    }

    static func afterFirstOption(_ options: [UInt8]) -> ArraySlice<UInt8> {
        guard let comma = options.firstIndex(of: UInt8(ascii: ",")) else { return [] }
        return options[(comma + 1)...]
    }
}

/// A whole mount table, keyed by legacy mount id, in the order of the file.
public struct MountTable: Equatable, Sendable {
    public private(set) var entries: [UInt64: MountInfoEntry] = [:]
    /// The legacy ids in the order the file lists them (parents before children).
    public private(set) var order: [UInt64] = []

    public init() {}

    /// Decodes a whole mountinfo file; blank lines are skipped, a repeated id is an
    /// error (the kernel never lists a mount twice).
    public init<C: Collection>(parsing text: C) throws(DecodeError) where C.Element == UInt8 {
        var number = 0
        for line in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            guard !line.isEmpty else { continue }
            try insert(MountInfoEntry(parsing: line, lineNumber: number), line: number)
        }
    }

    /// Decodes a whole mountinfo file given as text.
    public init(parsing text: String) throws(DecodeError) { try self.init(parsing: Array(text.utf8)) }

    /// Adds an entry; one with the same id is an error.
    public mutating func insert(_ entry: MountInfoEntry, line: Int = 0) throws(DecodeError) {
        guard entries[entry.legacyMountID] == nil else {
            throw DecodeError(.mountinfo, at: line, "mount id \(entry.legacyMountID) listed twice")
        }
        entries[entry.legacyMountID] = entry
        order.append(entry.legacyMountID)
    }

    public subscript(legacyID: UInt64) -> MountInfoEntry? { entries[legacyID] }

    /// Fills each entry's unique id from `map` (legacy id → unique id).
    public mutating func setUniqueIDs(_ map: [UInt64: UInt64]) {
        guard !map.isEmpty else { return }
        for (legacy, unique) in map where entries[legacy] != nil { entries[legacy]?.uniqueMountID = unique }
    }

    /// The entry whose unique id is `unique`, if the table knows it.
    public func entry(unique: UInt64) -> MountInfoEntry? {
        entries.values.first { $0.uniqueMountID == unique }
    }

    /// The record id of the namespace's root mount (the one that is its own parent,
    /// or whose parent is outside the table): the first line of the file.
    public var rootRecordID: UInt64? {
        order.first.map { reference($0).recordID }
    }

    public var count: Int { order.count }

    /// The mount point of `entry` relative to its parent's, or its whole mount point
    /// when the parent is not in the table (the root, or a parent outside the
    /// reader's root). An ancestor's move changes the whole path of every mount
    /// below it but not this, so it tells a mount's own moves from its ancestors'.
    func placeInParent(_ entry: MountInfoEntry) -> [UInt8] {
        guard entry.legacyParentID != entry.legacyMountID, let parent = entries[entry.legacyParentID] else {
            return entry.mountPoint
        }
        let prefix = parent.mountPoint.elementsEqual("/".utf8) ? [] : parent.mountPoint
        guard entry.mountPoint.starts(with: prefix) else { return entry.mountPoint }
        return Array(entry.mountPoint.dropFirst(prefix.count))
    }

    /// How deep a mount point is (its number of `/`), for ordering.
    static func depth(_ entry: MountInfoEntry) -> Int {
        entry.mountPoint.reduce(0) { $0 + ($1 == UInt8(ascii: "/") ? 1 : 0) }
    }

    /// What turns this table into `new`, as MOUNT changes, in an order a reader can
    /// replay: unmounts (deepest first), then moves, read-only and attribute
    /// changes (by id), then new mounts (shallowest first, so parents come first).
    ///
    /// * A mount only in `new`: `newMount` on its parent.
    /// * Only in this table: `unmount` on its parent.
    /// * In both with another device, root, fs type or source: the id was reused,
    ///   so an unmount and a new mount.
    /// * A new parent, or a new place in the parent (`placeInParent`): `moveFrom` on
    ///   the old parent, `moveTo` on the new one.
    /// * `ro`/`rw` changed: `readOnly` on the mount, `isNowReadOnly` when it became so.
    /// * Any other mount option, optional (propagation) field or super option
    ///   changed (the super options' own leading ro/rw aside, which follows a
    ///   read-only remount): `setattr` on the mount.
    public func changes(to new: MountTable) -> [MountChange] {
        var removed: [MountInfoEntry] = [], added: [MountInfoEntry] = [], kept: [MountChange] = []
        for id in order {
            guard let old = entries[id] else { continue }
            guard let now = new.entries[id] else {
                removed.append(old)
                continue
            }
            guard old.major == now.major, old.minor == now.minor, old.root == now.root,
                  old.fsType == now.fsType, old.source == now.source else {
                removed.append(old)
                added.append(now)
                continue
            }
            if old.legacyParentID != now.legacyParentID || placeInParent(old) != new.placeInParent(now) {
                kept.append(MountChange(.moveFrom, triggeredOn: reference(old.legacyParentID),
                                        auxiliaryMount: reference(id), entry: now))
                kept.append(MountChange(.moveTo, triggeredOn: new.reference(now.legacyParentID),
                                        auxiliaryMount: new.reference(id), entry: now))
            }
            if old.isReadOnly != now.isReadOnly {
                kept.append(MountChange(.readOnly, flags: now.isReadOnly ? .isNowReadOnly : [],
                                        triggeredOn: new.reference(id), entry: now))
            }
            if old.otherMountOptions != now.otherMountOptions || old.optionalFields != now.optionalFields
                || MountInfoEntry.afterFirstOption(old.superOptions) != MountInfoEntry.afterFirstOption(now.superOptions) {
                kept.append(MountChange(.setattr, triggeredOn: new.reference(id), entry: now))
            }
        }
        for id in new.order where entries[id] == nil {
            if let now = new.entries[id] { added.append(now) }
        }
        removed.sort { (Self.depth($0), $0.legacyMountID) > (Self.depth($1), $1.legacyMountID) }
        added.sort { (Self.depth($0), $0.legacyMountID) < (Self.depth($1), $1.legacyMountID) }
        return removed.map { MountChange(.unmount, triggeredOn: reference($0.legacyParentID),
                                         auxiliaryMount: reference($0.legacyMountID), entry: $0) }
            + kept
            + added.map { MountChange(.newMount, triggeredOn: new.reference($0.legacyParentID),
                                      auxiliaryMount: new.reference($0.legacyMountID), entry: $0) }
    }

    /// A mount named by its legacy id, with its unique id when this table knows it.
    func reference(_ legacyID: UInt64) -> MountChange.Reference {
        MountChange.Reference(legacyID: legacyID, uniqueID: entries[legacyID]?.uniqueMountID)
    }
}

/// One change between two mount tables, as a MOUNT record describes it.
public struct MountChange: Equatable, Hashable, Sendable {
    /// A mount in a change: its legacy id and, when known, its unique id.
    public struct Reference: Equatable, Hashable, Sendable {
        public var legacyID: UInt64
        public var uniqueID: UInt64?

        public init(legacyID: UInt64, uniqueID: UInt64? = nil) {
            self.legacyID = legacyID
            self.uniqueID = uniqueID
        }

        /// The id a record carries: the unique one when known. The mechanism fills
        /// unique ids for a whole table (statmount) or for none, so one record does
        /// not mix the two kinds unless statmount failed for a mount.
        public var recordID: UInt64 { uniqueID ?? legacyID }
    }

    public var subtype: MountSubtype
    public var flags: MountFlags
    public var triggeredOn: Reference
    /// The mount added, moved or removed; nil for read-only and setattr changes.
    public var auxiliaryMount: Reference?
    /// The mount concerned: as it is now, or as it was for an unmount.
    public var entry: MountInfoEntry

    public init(_ subtype: MountSubtype, flags: MountFlags = [], triggeredOn: Reference,
                auxiliaryMount: Reference? = nil, entry: MountInfoEntry) {
        self.subtype = subtype
        self.flags = flags
        self.triggeredOn = triggeredOn
        self.auxiliaryMount = auxiliaryMount
        self.entry = entry
    }

    /// The record for this change.
    public var notification: MountNotification {
        MountNotification(subtype, flags: flags, triggeredOn: triggeredOn.recordID,
                          auxiliaryMount: auxiliaryMount?.recordID ?? 0)
    }
}
