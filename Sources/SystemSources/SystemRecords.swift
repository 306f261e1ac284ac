import WatchQueueCore

// The records the system sources post (DESIGN.md §6, SOURCES.md "Record types"),
// byte-exact with include/wqfs/records.h. Every record starts with the kernel's
// 8-byte `struct watch_notification`; all integers are little-endian; every layout
// here is a multiple of 8 bytes, so records of these types stay 8-byte aligned
// among themselves in a read buffer. Encoders write into a caller's buffer and
// allocate nothing; the watch ID byte is left 0 (the engine sets it per watch).

/// Notification types of the system sources.
public enum SystemNotificationType {
    /// `WATCH_TYPE_MOUNT_NOTIFY` in D. Howells' mount-notification series.
    public static let mount: UInt32 = 2
    /// wqfs's own: process events from the proc connector. From 64 up, so a type the
    /// kernel merges later cannot clash.
    public static let process: UInt32 = 64
    /// wqfs's own: kernel uevents (devices).
    public static let device: UInt32 = 65
}

/// The largest record any system source makes; a buffer this big fits any of them.
public let systemRecordMaxLength = 120

// MARK: byte writing

/// Little-endian stores at fixed offsets of a record being built. Internal: the
/// encoders have checked the buffer is big enough before making one.
struct RecordWriter {
    let base: UnsafeMutableRawPointer

    init(_ buffer: UnsafeMutableRawBufferPointer, length: Int) {
        // A too-small buffer is a programming error of the caller, never input.
        precondition(buffer.count >= length, "record buffer of \(buffer.count) bytes, \(length) needed")
        base = buffer.baseAddress!  // count >= length >= 8, so there is a base
    }

    /// The header; `flags` may hold only type-specific bits (16–31), which is all
    /// the flag sets here define.
    func header(type: UInt32, subtype: UInt8, length: Int, flags: UInt32) {
        RecordHeader(type: type, subtype: subtype,
                     info: UInt32(length) & RecordLayout.lengthMask | flags & RecordLayout.typeInfoMask)
            .store(to: base)
    }

    func u32(_ value: UInt32, at offset: Int) {
        base.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
    }

    func u64(_ value: UInt64, at offset: Int) {
        base.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self)
    }

    /// Copies at most `width` bytes of `bytes` to `offset` and NUL-fills the rest of
    /// the `width` bytes. Returns whether `bytes` had to be cut.
    @discardableResult
    func padded<C: Collection>(_ bytes: C, at offset: Int, width: Int) -> Bool where C.Element == UInt8 {
        var index = 0
        for byte in bytes.prefix(width) {
            base.storeBytes(of: byte, toByteOffset: offset + index, as: UInt8.self)
            index += 1
        }
        (base + offset + index).initializeMemory(as: UInt8.self, repeating: 0, count: width - index)
        return bytes.count > width
    }
}

/// Runs an encoder on a fresh buffer and returns the bytes it wrote: for tests and
/// for callers that do want an array.
func encodedBytes(_ encode: (UnsafeMutableRawBufferPointer) -> Int) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: systemRecordMaxLength) { buffer, count in
        count = encode(UnsafeMutableRawBufferPointer(buffer))
    }
}

// MARK: byte reading

/// Little-endian loads at fixed offsets of a record being decoded: the mirror of
/// `RecordWriter`. Internal, and made only by `withRecord`, which has checked the
/// header against the layout table, so every offset a decoder reads is in bounds.
struct RecordReader {
    let bytes: UnsafeRawBufferPointer
    let header: RecordHeader

    /// The header's type-specific bits (16–31), where every flag set here lives.
    var flags: UInt32 { header.info & RecordLayout.typeInfoMask }

    func u32(at offset: Int) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func u64(at offset: Int) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// The bytes of `offset..<offset + width` before the first NUL.
    func string(at offset: Int, width: Int) -> [UInt8] {
        Array(bytes[offset..<offset + width].prefix { $0 != 0 })
    }
}

/// Runs `decode` on `record` if it is exactly one record of `type` that the layout
/// table allows: at least a header, the header's length equal to the bytes given
/// (no more, no fewer) and valid for its subtype. Otherwise nil, so each decoder only
/// maps fields and never judges a shape itself.
func withRecord<C: Collection<UInt8>, T>(_ record: C, type: UInt32, _ decode: (RecordReader) -> T?) -> T? {
    func check(_ raw: UnsafeRawBufferPointer) -> T? {
        guard raw.count >= RecordLayout.headerSize else { return nil }
        let header = RecordHeader(bytes: raw)
        guard header.type == type, header.length == raw.count,
              SystemRecordLayout.isValid(type: type, subtype: header.subtype, length: raw.count) else { return nil }
        return decode(RecordReader(bytes: raw, header: header))
    }
    // Arrays, slices and buffers are contiguous already; anything else is copied once.
    if let result = record.withContiguousStorageIfAvailable({ check(UnsafeRawBufferPointer($0)) }) { return result }
    return Array(record).withUnsafeBytes { check($0) }
}

// MARK: MOUNT (type 2)

/// Subtypes of MOUNT records (`enum mount_notification_subtype` in the series).
public enum MountSubtype: UInt8, CaseIterable, Sendable {
    /// A mount was attached: `triggeredOn` = the parent, `auxiliaryMount` = the new one.
    case newMount = 0
    /// A mount was detached: `triggeredOn` = its parent, `auxiliaryMount` = the mount.
    case unmount = 1
    /// An automount expired (same ids as unmount).
    case expiry = 2
    /// The mount's read-only state changed: `triggeredOn` = the mount;
    /// `MountFlags.isNowReadOnly` tells which way.
    case readOnly = 3
    /// Other mount attributes or propagation changed: `triggeredOn` = the mount.
    case setattr = 4
    /// A mount moved away: `triggeredOn` = the old parent, `auxiliaryMount` = the mount.
    case moveFrom = 5
    /// A mount moved here: `triggeredOn` = the new parent, `auxiliaryMount` = the mount.
    case moveTo = 6
}

/// Type-specific bits of a MOUNT record's `info` word (`WATCH_INFO_FLAG_0…2`).
public struct MountFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The change was below the watched mount, not at it (bit 16).
    public static let inSubtree = MountFlags(rawValue: 0x0001_0000)
    /// With `readOnly`: the mount is read-only now (bit 17).
    public static let isNowReadOnly = MountFlags(rawValue: 0x0002_0000)
    /// With `newMount`: the new mount is a submount (an automount; bit 18).
    public static let submount = MountFlags(rawValue: 0x0004_0000)
}

/// A MOUNT record, 24 bytes:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | `struct watch_notification` (type 2, subtype, info = 24 \| flags) |
/// | 8 | 8 | u64 `triggered_on`: the mount the change is accounted to |
/// | 16 | 8 | u64 `auxiliary_mount`: the mount added, moved or removed, else 0 |
///
/// Ids are the kernel's 64-bit unique mount ids where known (fanotify, statmount).
public struct MountNotification: Equatable, Hashable, Sendable {
    public static let length = 24

    public var subtype: MountSubtype
    public var flags: MountFlags
    public var triggeredOn: UInt64
    public var auxiliaryMount: UInt64

    public init(_ subtype: MountSubtype, flags: MountFlags = [], triggeredOn: UInt64, auxiliaryMount: UInt64 = 0) {
        self.subtype = subtype
        self.flags = flags
        self.triggeredOn = triggeredOn
        self.auxiliaryMount = auxiliaryMount
    }

    /// Writes the record at the start of `buffer` (at least 24 bytes) and returns 24.
    public func encode(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let writer = RecordWriter(buffer, length: Self.length)
        writer.header(type: SystemNotificationType.mount, subtype: subtype.rawValue, length: Self.length,
                      flags: flags.rawValue)
        writer.u64(triggeredOn, at: 8)
        writer.u64(auxiliaryMount, at: 16)
        return Self.length
    }

    /// The record's bytes.
    public var bytes: [UInt8] { encodedBytes(encode(into:)) }

    /// Decodes one whole MOUNT record (an array, a slice, a read buffer…): nil unless
    /// its type is 2, its subtype 0–6 and its length 24, both in the header and in
    /// the bytes given. All 16 type-specific bits are kept in `flags`, known or not,
    /// so decoding and encoding again gives the same bytes (but for the watch ID).
    public init?<C: Collection<UInt8>>(record: C) {
        guard let decoded = withRecord(record, type: SystemNotificationType.mount, { reader -> Self? in
            MountSubtype(rawValue: reader.header.subtype).map {
                Self($0, flags: MountFlags(rawValue: reader.flags),
                     triggeredOn: reader.u64(at: 8), auxiliaryMount: reader.u64(at: 16))
            }
        }) else { return nil }
        self = decoded
    }
}

// MARK: PROCESS (type 64)

/// Subtypes of PROCESS records: one per proc connector event kind.
public enum ProcessSubtype: UInt8, CaseIterable, Sendable {
    case fork = 0, exec, uid, gid, sid, ptrace, comm, coredump, exit

    /// The record length of this subtype: 24 bytes of common fields plus its own.
    public var recordLength: Int {
        switch self {
        case .exec, .sid: 24
        case .fork, .uid, .gid, .ptrace, .coredump: 32
        case .comm, .exit: 40
        }
    }
}

/// Type-specific bits of a PROCESS record's `info` word.
public struct ProcessFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// With `exit`: the process was killed by a signal (bit 16).
    public static let killedBySignal = ProcessFlags(rawValue: 0x0001_0000)
    /// With `exit`: it dumped core (bit 17).
    public static let dumpedCore = ProcessFlags(rawValue: 0x0002_0000)
}

/// A task's 16-byte command name (`TASK_COMM_LEN`), held inline so that decoding a
/// comm event allocates nothing.
public struct ProcessComm: Equatable, Hashable, Sendable, CustomStringConvertible {
    public static let width = 16
    /// The 16 bytes as two little-endian words, NUL padded.
    public private(set) var low: UInt64, high: UInt64

    /// The first 16 bytes of `bytes`, NUL padded.
    public init<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        var words: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &words) { raw in
            for (index, byte) in bytes.prefix(Self.width).enumerated() { raw[index] = byte }
        }
        low = UInt64(littleEndian: words.0)
        high = UInt64(littleEndian: words.1)
    }

    /// The 16 bytes, NUL padding included.
    public var paddedBytes: [UInt8] {
        withUnsafeBytes(of: (low.littleEndian, high.littleEndian)) { Array($0) }
    }

    /// The name: the bytes before the first NUL.
    public var bytes: [UInt8] { Array(paddedBytes.prefix { $0 != 0 }) }

    public var description: String { String(decoding: bytes, as: UTF8.self) }
}

/// How a process ended, decoded from the raw wait status the kernel reports.
public struct ProcessExit: Equatable, Hashable, Sendable {
    /// `WEXITSTATUS` when the process exited normally, else 0.
    public var exitCode: UInt32
    /// `WTERMSIG` when a signal killed it, else 0.
    public var exitSignal: UInt32
    public var killedBySignal: Bool
    public var dumpedCore: Bool
    /// The parent at exit (thread id and process id).
    public var parentPID: UInt32
    public var parentTGID: UInt32

    public init(exitCode: UInt32, exitSignal: UInt32, killedBySignal: Bool, dumpedCore: Bool,
                parentPID: UInt32, parentTGID: UInt32) {
        self.exitCode = exitCode
        self.exitSignal = exitSignal
        self.killedBySignal = killedBySignal
        self.dumpedCore = dumpedCore
        self.parentPID = parentPID
        self.parentTGID = parentTGID
    }

    /// Decodes a wait status as `wait(2)`'s macros do: low 7 bits 0 = exited with
    /// the code in bits 8–15; 1…0x7e = killed by that signal, bit 7 = core dumped.
    /// (0x7f, "stopped", cannot describe an exit; it decodes as neither.)
    public init(waitStatus: UInt32, parentPID: UInt32, parentTGID: UInt32) {
        let signal = waitStatus & 0x7f
        let killed = signal != 0 && signal != 0x7f
        self.init(exitCode: signal == 0 ? (waitStatus >> 8) & 0xff : 0,
                  exitSignal: killed ? signal : 0,
                  killedBySignal: killed,
                  dumpedCore: killed && waitStatus & 0x80 != 0,
                  parentPID: parentPID, parentTGID: parentTGID)
    }
}

/// A PROCESS record. Every one starts with the same 24 bytes:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | `struct watch_notification` (type 64, subtype, info = length \| flags) |
/// | 8 | 8 | u64 `timestamp_ns` (CLOCK_MONOTONIC, as the proc connector gives it) |
/// | 16 | 4 | u32 `pid` (thread id of the task the event is about) |
/// | 20 | 4 | u32 `tgid` (its process id) |
///
/// then, by subtype:
///
/// | subtype | from 24 | length |
/// |---|---|---|
/// | 0 fork | u32 `parent_pid`, u32 `parent_tgid` (pid/tgid are the child's) | 32 |
/// | 1 exec | — | 24 |
/// | 2 uid | u32 `ruid`, u32 `euid` | 32 |
/// | 3 gid | u32 `rgid`, u32 `egid` | 32 |
/// | 4 sid | — | 24 |
/// | 5 ptrace | u32 `tracer_pid`, u32 `tracer_tgid` (0/0: detached) | 32 |
/// | 6 comm | char `comm[16]`, NUL padded | 40 |
/// | 7 coredump | u32 `parent_pid`, u32 `parent_tgid` | 32 |
/// | 8 exit | u32 `exit_code`, u32 `exit_signal`, u32 `parent_pid`, u32 `parent_tgid` | 40 |
///
/// For exit, `exit_code` is WEXITSTATUS of a normal exit (else 0), `exit_signal` the
/// killing signal (else 0), flag bit 16 = killed by a signal, bit 17 = dumped core.
public struct ProcessNotification: Equatable, Hashable, Sendable {
    /// What happened, with the fields that kind carries.
    public enum Event: Equatable, Hashable, Sendable {
        case fork(parentPID: UInt32, parentTGID: UInt32)
        case exec
        case uid(real: UInt32, effective: UInt32)
        case gid(real: UInt32, effective: UInt32)
        case sid
        /// Attached to `tracer`; 0/0 when detached.
        case ptrace(tracerPID: UInt32, tracerTGID: UInt32)
        case comm(ProcessComm)
        case coredump(parentPID: UInt32, parentTGID: UInt32)
        case exit(ProcessExit)

        public var subtype: ProcessSubtype {
            switch self {
            case .fork: .fork
            case .exec: .exec
            case .uid: .uid
            case .gid: .gid
            case .sid: .sid
            case .ptrace: .ptrace
            case .comm: .comm
            case .coredump: .coredump
            case .exit: .exit
            }
        }
    }

    public var timestampNS: UInt64
    public var pid: UInt32
    public var tgid: UInt32
    public var event: Event

    public init(timestampNS: UInt64, pid: UInt32, tgid: UInt32, event: Event) {
        self.timestampNS = timestampNS
        self.pid = pid
        self.tgid = tgid
        self.event = event
    }

    public var length: Int { event.subtype.recordLength }

    /// The info flags this record carries.
    public var flags: ProcessFlags {
        guard case .exit(let exit) = event else { return [] }
        var flags: ProcessFlags = []
        if exit.killedBySignal { flags.insert(.killedBySignal) }
        if exit.dumpedCore { flags.insert(.dumpedCore) }
        return flags
    }

    /// Writes the record at the start of `buffer` (at least `length` bytes, 40 is
    /// always enough) and returns its length.
    public func encode(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let length = self.length
        let writer = RecordWriter(buffer, length: length)
        writer.header(type: SystemNotificationType.process, subtype: event.subtype.rawValue, length: length,
                      flags: flags.rawValue)
        writer.u64(timestampNS, at: 8)
        writer.u32(pid, at: 16)
        writer.u32(tgid, at: 20)
        switch event {
        case .exec, .sid:
            break
        case .fork(let first, let second), .uid(let first, let second), .gid(let first, let second),
             .ptrace(let first, let second), .coredump(let first, let second):
            writer.u32(first, at: 24)
            writer.u32(second, at: 28)
        case .comm(let comm):
            writer.u64(comm.low, at: 24)
            writer.u64(comm.high, at: 32)
        case .exit(let exit):
            writer.u32(exit.exitCode, at: 24)
            writer.u32(exit.exitSignal, at: 28)
            writer.u32(exit.parentPID, at: 32)
            writer.u32(exit.parentTGID, at: 36)
        }
        return length
    }

    /// The record's bytes.
    public var bytes: [UInt8] { encodedBytes(encode(into:)) }

    /// Decodes one whole PROCESS record: nil unless its type is 64, its subtype 0–8
    /// and its length that subtype's (`ProcessSubtype.recordLength`), both in the
    /// header and in the bytes given. Only exit records have flags (killed, core);
    /// other type-specific bits have nowhere to go and are dropped.
    public init?<C: Collection<UInt8>>(record: C) {
        guard let decoded = withRecord(record, type: SystemNotificationType.process, { reader -> Self? in
            guard let subtype = ProcessSubtype(rawValue: reader.header.subtype) else { return nil }
            // The words after the common 24 bytes; exec and sid records end before them.
            let first = { reader.u32(at: 24) }, second = { reader.u32(at: 28) }
            let event: Event = switch subtype {
            case .fork: .fork(parentPID: first(), parentTGID: second())
            case .exec: .exec
            case .uid: .uid(real: first(), effective: second())
            case .gid: .gid(real: first(), effective: second())
            case .sid: .sid
            case .ptrace: .ptrace(tracerPID: first(), tracerTGID: second())
            case .comm: .comm(ProcessComm(reader.bytes[24..<(24 + ProcessComm.width)]))
            case .coredump: .coredump(parentPID: first(), parentTGID: second())
            case .exit:
                .exit(ProcessExit(exitCode: first(), exitSignal: second(),
                                  killedBySignal: reader.flags & ProcessFlags.killedBySignal.rawValue != 0,
                                  dumpedCore: reader.flags & ProcessFlags.dumpedCore.rawValue != 0,
                                  parentPID: reader.u32(at: 32), parentTGID: reader.u32(at: 36)))
            }
            return Self(timestampNS: reader.u64(at: 8), pid: reader.u32(at: 16), tgid: reader.u32(at: 20), event: event)
        }) else { return nil }
        self = decoded
    }
}

// MARK: DEVICE (type 65)

/// Subtypes of DEVICE records: the uevent's ACTION.
public enum DeviceAction: UInt8, CaseIterable, Sendable {
    case add = 0, remove, change, move, online, offline, bind, unbind

    /// The ACTION word the kernel sends (`kobject_actions[]`).
    public var word: String {
        switch self {
        case .add: "add"
        case .remove: "remove"
        case .change: "change"
        case .move: "move"
        case .online: "online"
        case .offline: "offline"
        case .bind: "bind"
        case .unbind: "unbind"
        }
    }

    /// The action an ACTION value names, or nil for one the kernel does not send.
    public init?<C: Collection>(word: C) where C.Element == UInt8 {
        // Lengths first: the event thread decodes every uevent, and most words
        // differ in length, so at most two are compared byte by byte.
        let count = word.count
        for raw in Self.add.rawValue...Self.unbind.rawValue {
            let action = Self(rawValue: raw)!
            let candidate = action.word.utf8
            if candidate.count == count && candidate.elementsEqual(word) {
                self = action
                return
            }
        }
        return nil
    }
}

/// Type-specific bits of a DEVICE record's `info` word.
public struct DeviceFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The devpath was longer than 80 bytes; the record holds its first 80 (bit 16).
    public static let devpathTruncated = DeviceFlags(rawValue: 0x0001_0000)
    /// The subsystem was longer than 16 bytes; the record holds its first 16 (bit 17).
    public static let subsystemTruncated = DeviceFlags(rawValue: 0x0002_0000)
}

/// A DEVICE record, 40 to 120 bytes:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | `struct watch_notification` (type 65, subtype = action, info = length \| flags) |
/// | 8 | 8 | u64 `seqnum` (the uevent's SEQNUM) |
/// | 16 | 4 | u32 `major` (0xffffffff when the uevent has no MAJOR) |
/// | 20 | 4 | u32 `minor` (0xffffffff when the uevent has no MINOR) |
/// | 24 | 16 | char `subsystem[16]`, NUL padded (no NUL when it fills all 16) |
/// | 40 | 0–80 | char `devpath[]`, NUL padded to a multiple of 8 |
///
/// The length is 40 + the devpath rounded up to 8, at most 120. A devpath of a
/// multiple of 8 bytes has no terminating NUL: read it with `strnlen(devpath,
/// length - 40)`. Longer devpaths and subsystems are cut (flags say so); the whole
/// uevent is the side file's business.
public struct DeviceNotification: Equatable, Hashable, Sendable {
    public static let headerLength = 40
    public static let subsystemWidth = 16
    public static let maxDevpathLength = 80
    public static let maxLength = headerLength + maxDevpathLength
    /// `major`/`minor` of a uevent without a device number.
    public static let noNumber: UInt32 = 0xffff_ffff

    public var action: DeviceAction
    public var seqnum: UInt64
    public var major: UInt32
    public var minor: UInt32
    /// The whole subsystem and devpath; the encoder cuts them to fit.
    public var subsystem: [UInt8]
    public var devpath: [UInt8]
    /// The type-specific bits of a decoded record. A decoded record holds only what
    /// was left of a cut devpath or subsystem, so their lengths can no longer say
    /// that they were cut; `flags` includes these. Empty for a value made from a
    /// whole uevent.
    public var decodedFlags: DeviceFlags

    public init(action: DeviceAction, seqnum: UInt64, major: UInt32 = noNumber, minor: UInt32 = noNumber,
                subsystem: [UInt8], devpath: [UInt8], decodedFlags: DeviceFlags = []) {
        self.action = action
        self.seqnum = seqnum
        self.major = major
        self.minor = minor
        self.subsystem = subsystem
        self.devpath = devpath
        self.decodedFlags = decodedFlags
    }

    /// The record length for this devpath.
    public var length: Int { Self.length(devpath: devpath.count) }

    /// The record length for a devpath of `count` bytes.
    static func length(devpath count: Int) -> Int { headerLength + (min(count, maxDevpathLength) + 7) & ~7 }

    /// What was cut to fit (or, decoded, what the record said was cut).
    public var flags: DeviceFlags { Self.flags(decodedFlags, subsystem: subsystem.count, devpath: devpath.count) }

    /// `flags` and what cutting a subsystem and a devpath of these lengths sets.
    static func flags(_ flags: DeviceFlags, subsystem: Int, devpath: Int) -> DeviceFlags {
        var flags = flags
        if devpath > maxDevpathLength { flags.insert(.devpathTruncated) }
        if subsystem > subsystemWidth { flags.insert(.subsystemTruncated) }
        return flags
    }

    /// Writes the record at the start of `buffer` (at least `length` bytes, 120 is
    /// always enough) and returns its length.
    public func encode(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        Self.encode(action: action, seqnum: seqnum, major: major, minor: minor, subsystem: subsystem, devpath: devpath,
                    flags: decodedFlags, into: buffer)
    }

    /// Writes the record of these fields, wherever their bytes are held; `flags` is
    /// added to what cutting the subsystem and devpath sets. Returns its length.
    static func encode<S: Collection<UInt8>, D: Collection<UInt8>>(
        action: DeviceAction, seqnum: UInt64, major: UInt32, minor: UInt32, subsystem: S, devpath: D,
        flags: DeviceFlags = [], into buffer: UnsafeMutableRawBufferPointer
    ) -> Int {
        let length = Self.length(devpath: devpath.count)
        let writer = RecordWriter(buffer, length: length)
        let flags = Self.flags(flags, subsystem: subsystem.count, devpath: devpath.count)
        writer.header(type: SystemNotificationType.device, subtype: action.rawValue, length: length, flags: flags.rawValue)
        writer.u64(seqnum, at: 8)
        writer.u32(major, at: 16)
        writer.u32(minor, at: 20)
        writer.padded(subsystem, at: 24, width: subsystemWidth)
        writer.padded(devpath, at: headerLength, width: length - headerLength)
        return length
    }

    /// The record's bytes.
    public var bytes: [UInt8] { encodedBytes(encode(into:)) }

    /// Decodes one whole DEVICE record: nil unless its type is 65, its subtype 0–7
    /// and its length 40–120 and a multiple of 8, both in the header and in the
    /// bytes given. `subsystem` and `devpath` are their fields up to the first NUL
    /// (all of the field when there is none); `decodedFlags` holds the header's
    /// type-specific bits, known or not.
    public init?<C: Collection<UInt8>>(record: C) {
        guard let decoded = withRecord(record, type: SystemNotificationType.device, { reader -> Self? in
            DeviceAction(rawValue: reader.header.subtype).map {
                Self(action: $0, seqnum: reader.u64(at: 8), major: reader.u32(at: 16), minor: reader.u32(at: 20),
                     subsystem: reader.string(at: 24, width: Self.subsystemWidth),
                     devpath: reader.string(at: Self.headerLength, width: reader.bytes.count - Self.headerLength),
                     decodedFlags: DeviceFlags(rawValue: reader.flags))
            }
        }) else { return nil }
        self = decoded
    }
}

// MARK: the table

/// Which lengths each system record type allows: what a reader, a test or a fuzz
/// target checks a record against.
public enum SystemRecordLayout {
    /// Whether `length` is a valid length for a record of `type` and `subtype`.
    public static func isValid(type: UInt32, subtype: UInt8, length: Int) -> Bool {
        switch type {
        case SystemNotificationType.mount:
            return MountSubtype(rawValue: subtype) != nil && length == MountNotification.length
        case SystemNotificationType.process:
            return ProcessSubtype(rawValue: subtype)?.recordLength == length
        case SystemNotificationType.device:
            return DeviceAction(rawValue: subtype) != nil && length % 8 == 0
                && (DeviceNotification.headerLength...DeviceNotification.maxLength).contains(length)
        default:
            return false
        }
    }
}
