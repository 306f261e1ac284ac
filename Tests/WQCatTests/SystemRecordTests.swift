import Testing
import SystemSources
import WQCatKit
import WatchQueueCore

/// The text line of an encoder-built record, with an optional mount table.
private func text(_ bytes: [UInt8], mounts: MountTableSnapshot? = nil) throws -> String {
    RecordFormatter.textLine(try #require(CapturedRecord(bytes: bytes)), mounts: mounts)
}

/// The JSON line of an encoder-built record, with an optional mount table.
private func json(_ bytes: [UInt8], mounts: MountTableSnapshot? = nil) throws -> String {
    RecordFormatter.jsonLine(try #require(CapturedRecord(bytes: bytes)), mounts: mounts)
}

/// What every JSON line of `bytes` must start and end with: the common fields, read
/// from the header independently of the formatter, and `data`.
private func jsonFrame(_ bytes: [UInt8], kind: String) -> (prefix: String, suffix: String) {
    let header = bytes.withUnsafeBytes { RecordHeader(bytes: $0) }
    let data = bytes.dropFirst(8).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    return (#"{"kind":"\#(kind)","type":\#(header.type),"subtype":\#(header.subtype),"id":\#(header.watchID),"#
                + #""len":\#(header.length),"info":\#(header.info),"typeinfo":\#(header.typeInfo),"#,
            #","data":"\#(data)"}"#)
}

/// The table a mount `sources/mounts/table` would show: the root, a mount point with
/// a space (escaped, as the side file writes it), one with a newline, and a gone one
/// with an empty source.
private let tableText = """
    28 1 / ext4 /dev/vda1 rw,relatime
    513 28 /tmp/x\\040y tmpfs t ro,relatime
    515 28 /a\\012b tmpfs t rw
    514 28 /mnt/gone tmpfs  rw gone

    """

@Suite struct MountRecords {
    let table = MountTableSnapshot(text: tableText)

    @Test func theTableIsParsedAndUnescaped() throws {
        #expect(table.count == 4)
        let spaced = try #require(table[513])
        #expect(spaced == MountTableEntry(id: 513, parent: 28, mountPoint: Array("/tmp/x y".utf8),
                                          fsType: Array("tmpfs".utf8), source: Array("t".utf8),
                                          options: Array("ro,relatime".utf8)))
        let gone = try #require(table[514])
        #expect(gone.gone && gone.source.isEmpty && gone.options == Array("rw".utf8))
        #expect(table[515]?.mountPoint == Array("/a\nb".utf8))
        #expect(table[999] == nil)
    }

    @Test func malformedTableLinesAreSkipped() {
        let table = MountTableSnapshot(text: "x 1 / a b c\n1 2 / a b\n3 4 / a b c d\n5 6 / a b c gone\n-7 1 / a b c\n")
        #expect(table.count == 1)
        #expect(table[5]?.gone == true)
    }

    /// Every subtype, with and without the table: (record, with table, without).
    static let cases: [(MountNotification, String, String)] = [
        (MountNotification(.newMount, flags: [.inSubtree, .submount], triggeredOn: 28, auxiliaryMount: 513),
         "mount /tmp/x y t tmpfs ro,relatime id=513 parent=28 in-subtree submount",
         "mount ? ? ? ? id=513 parent=28 in-subtree submount"),
        (MountNotification(.unmount, triggeredOn: 28, auxiliaryMount: 514),
         "umount /mnt/gone  tmpfs rw id=514 parent=28", "umount ? ? ? ? id=514 parent=28"),
        (MountNotification(.expiry, flags: .inSubtree, triggeredOn: 28, auxiliaryMount: 513),
         "expire /tmp/x y t tmpfs ro,relatime id=513 parent=28 in-subtree",
         "expire ? ? ? ? id=513 parent=28 in-subtree"),
        (MountNotification(.readOnly, flags: .isNowReadOnly, triggeredOn: 513),
         "remount /tmp/x y t tmpfs ro,relatime ro id=513", "remount ? ? ? ? ro id=513"),
        (MountNotification(.readOnly, triggeredOn: 28),
         "remount / /dev/vda1 ext4 rw,relatime rw id=28", "remount ? ? ? ? rw id=28"),
        (MountNotification(.setattr, triggeredOn: 28),
         "remount / /dev/vda1 ext4 rw,relatime (attributes) id=28", "remount ? ? ? ? (attributes) id=28"),
        (MountNotification(.moveFrom, triggeredOn: 28, auxiliaryMount: 513),
         "move-from /tmp/x y t tmpfs ro,relatime id=513 parent=28", "move-from ? ? ? ? id=513 parent=28"),
        (MountNotification(.moveTo, triggeredOn: 28, auxiliaryMount: 515),
         #"move-to /a\012b t tmpfs rw id=515 parent=28"#, "move-to ? ? ? ? id=515 parent=28"),
        // An id the table does not know.
        (MountNotification(.newMount, triggeredOn: 28, auxiliaryMount: 999),
         "mount ? ? ? ? id=999 parent=28", "mount ? ? ? ? id=999 parent=28"),
    ]

    @Test func everySubtypeIsCovered() {
        #expect(Set(Self.cases.map(\.0.subtype)) == Set(MountSubtype.allCases))
    }

    @Test(arguments: cases.indices)
    func textLines(index: Int) throws {
        let (record, withTable, withoutTable) = Self.cases[index]
        #expect(try text(record.bytes, mounts: table) == withTable)
        #expect(try text(record.bytes) == withoutTable)
    }

    @Test(arguments: cases.indices)
    func jsonLines(index: Int) throws {
        let record = Self.cases[index].0
        let (prefix, suffix) = jsonFrame(record.bytes, kind: "mount")
        let fields = #""event":"\#(record.subtype.word)","triggered_on":\#(record.triggeredOn),"#
            + #""auxiliary_mount":\#(record.auxiliaryMount),"in_subtree":\#(record.flags.contains(.inSubtree)),"#
            + #""now_read_only":\#(record.flags.contains(.isNowReadOnly)),"submount":\#(record.flags.contains(.submount))"#
        #expect(try json(record.bytes) == prefix + fields + suffix)
        let named = try json(record.bytes, mounts: table)
        if let entry = table[record.subjectMount] {
            let names = #","mount_point":"\#(String(decoding: entry.mountPoint, as: UTF8.self))","#
                + #""fs_type":"\#(String(decoding: entry.fsType, as: UTF8.self))","#
                + #""source":"\#(String(decoding: entry.source, as: UTF8.self))","#
                + #""options":"\#(String(decoding: entry.options, as: UTF8.self))""#
            #expect(named == prefix + fields + names.replacingOccurrences("\n", with: "\\n") + suffix)
        } else {
            #expect(named == prefix + fields + suffix)
        }
    }

    @Test func oneJSONLineSpelledOut() throws {
        let record = MountNotification(.newMount, flags: .inSubtree, triggeredOn: 28, auxiliaryMount: 513)
        #expect(try json(record.bytes, mounts: table) == #"{"kind":"mount","type":2,"subtype":0,"id":0,"len":24,"info":65560,"typeinfo":1,"event":"mount","triggered_on":28,"auxiliary_mount":513,"in_subtree":true,"now_read_only":false,"submount":false,"mount_point":"/tmp/x y","fs_type":"tmpfs","source":"t","options":"ro,relatime","data":"1c000000000000000102000000000000"}"#)
        let newline = MountNotification(.moveTo, triggeredOn: 28, auxiliaryMount: 515)
        #expect(try json(newline.bytes, mounts: table).contains(#""mount_point":"/a\nb""#))
    }
}

@Suite struct ProcessRecords {
    static let time: UInt64 = 12_345_678_901_234

    static func record(_ event: ProcessNotification.Event, pid: UInt32 = 4242, tgid: UInt32 = 4242) -> ProcessNotification {
        ProcessNotification(timestampNS: time, pid: pid, tgid: tgid, event: event)
    }

    /// Every subtype: the record, its text line, and its JSON fields after `tgid`.
    static let cases: [(ProcessNotification, String, String)] = [
        (record(.fork(parentPID: 4200, parentTGID: 4100), pid: 4243, tgid: 4243),
         "[12345.678901] fork 4243 parent=4100", #","parent_pid":4200,"parent_tgid":4100"#),
        (record(.exec), "[12345.678901] exec 4242", ""),
        (record(.uid(real: 1000, effective: 0)), "[12345.678901] uid 4242 ruid=1000 euid=0", #","ruid":1000,"euid":0"#),
        (record(.gid(real: 100, effective: 65534)), "[12345.678901] gid 4242 rgid=100 egid=65534",
         #","rgid":100,"egid":65534"#),
        (record(.sid), "[12345.678901] sid 4242", ""),
        (record(.ptrace(tracerPID: 4300, tracerTGID: 4301)), "[12345.678901] ptrace 4242 tracer=4301",
         #","tracer_pid":4300,"tracer_tgid":4301"#),
        (record(.ptrace(tracerPID: 0, tracerTGID: 0)), "[12345.678901] ptrace 4242 detach",
         #","tracer_pid":0,"tracer_tgid":0"#),
        (record(.comm(ProcessComm(Array("kworker/0:1".utf8)))), "[12345.678901] comm 4242 comm=kworker/0:1",
         #","comm":"kworker/0:1""#),
        (record(.comm(ProcessComm(Array("a\nb\"c".utf8)))), #"[12345.678901] comm 4242 comm=a\012b"c"#,
         #","comm":"a\nb\"c""#),
        (record(.coredump(parentPID: 1, parentTGID: 1)), "[12345.678901] coredump 4242 parent=1",
         #","parent_pid":1,"parent_tgid":1"#),
        (record(.exit(ProcessExit(waitStatus: 0x300, parentPID: 4200, parentTGID: 4100))),
         "[12345.678901] exit 4242 code=3",
         #","exit_code":3,"exit_signal":0,"killed_by_signal":false,"dumped_core":false,"parent_pid":4200,"parent_tgid":4100"#),
        (record(.exit(ProcessExit(waitStatus: 9, parentPID: 1, parentTGID: 1))), "[12345.678901] exit 4242 signal=9",
         #","exit_code":0,"exit_signal":9,"killed_by_signal":true,"dumped_core":false,"parent_pid":1,"parent_tgid":1"#),
        (record(.exit(ProcessExit(waitStatus: 0x8b, parentPID: 1, parentTGID: 1))),
         "[12345.678901] exit 4242 signal=11 core",
         #","exit_code":0,"exit_signal":11,"killed_by_signal":true,"dumped_core":true,"parent_pid":1,"parent_tgid":1"#),
        // A thread: its tgid is shown after everything else.
        (record(.exit(ProcessExit(waitStatus: 0, parentPID: 1, parentTGID: 1)), pid: 4250, tgid: 4242),
         "[12345.678901] exit 4250 code=0 tgid=4242",
         #","exit_code":0,"exit_signal":0,"killed_by_signal":false,"dumped_core":false,"parent_pid":1,"parent_tgid":1"#),
        (ProcessNotification(timestampNS: 5_000, pid: 1, tgid: 1, event: .exec), "[0.000005] exec 1", ""),
    ]

    @Test func everySubtypeIsCovered() {
        #expect(Set(Self.cases.map(\.0.event.subtype)) == Set(ProcessSubtype.allCases))
    }

    @Test(arguments: cases.indices)
    func textAndJSON(index: Int) throws {
        let (record, line, extra) = Self.cases[index]
        #expect(try text(record.bytes) == line)
        let (prefix, suffix) = jsonFrame(record.bytes, kind: "process")
        let common = #""event":"\#(record.event.subtype.word)","timestamp_ns":\#(record.timestampNS),"#
            + #""pid":\#(record.pid),"tgid":\#(record.tgid)"#
        #expect(try json(record.bytes) == prefix + common + extra + suffix)
    }

    @Test func oneJSONLineSpelledOut() throws {
        let record = Self.record(.exit(ProcessExit(waitStatus: 0x300, parentPID: 4200, parentTGID: 4100)))
        #expect(try json(record.bytes) == #"{"kind":"process","type":64,"subtype":8,"id":0,"len":40,"info":40,"typeinfo":0,"event":"exit","timestamp_ns":12345678901234,"pid":4242,"tgid":4242,"exit_code":3,"exit_signal":0,"killed_by_signal":false,"dumped_core":false,"parent_pid":4200,"parent_tgid":4100,"data":"f22fce733a0b0000921000009210000003000000000000006810000004100000"}"#)
    }
}

@Suite struct DeviceRecords {
    static let null = DeviceNotification(action: .change, seqnum: 1514, major: 1, minor: 3,
                                         subsystem: Array("mem".utf8), devpath: Array("/devices/virtual/mem/null".utf8))

    @Test func everyActionHasUeventsWord() throws {
        for action in DeviceAction.allCases {
            let record = DeviceNotification(action: action, seqnum: 7, subsystem: Array("cpu".utf8),
                                            devpath: Array("/devices/system/cpu/cpu0".utf8))
            #expect(try text(record.bytes) == "KERNEL[7] \(action.word) /devices/system/cpu/cpu0 (cpu)")
            let (prefix, suffix) = jsonFrame(record.bytes, kind: "device")
            #expect(try json(record.bytes) == prefix + #""event":"\#(action.word)","seqnum":7,"subsystem":"cpu","#
                + #""devpath":"/devices/system/cpu/cpu0","devpath_truncated":false,"subsystem_truncated":false"# + suffix)
        }
    }

    @Test func deviceNumbersAndTruncation() throws {
        #expect(try text(Self.null.bytes) == "KERNEL[1514] change /devices/virtual/mem/null (mem) dev=1:3")
        let long = DeviceNotification(action: .add, seqnum: 9, major: 8, minor: 0, subsystem: Array("seventeen-bytes-x".utf8),
                                      devpath: Array(("/devices" + String(repeating: "/x", count: 40)).utf8))
        #expect(try text(long.bytes) == "KERNEL[9] add /devices" + String(repeating: "/x", count: 36)
            + " (seventeen-bytes-) dev=8:0 truncated")
        #expect(try json(long.bytes).contains(#""devpath_truncated":true,"subsystem_truncated":true"#))
        // Only one number: text needs both; JSON shows the one there is.
        let half = DeviceNotification(action: .add, seqnum: 9, major: 5, subsystem: Array("tty".utf8), devpath: Array("/t".utf8))
        #expect(try text(half.bytes) == "KERNEL[9] add /t (tty)")
        #expect(try json(half.bytes).contains(#""seqnum":9,"major":5,"subsystem":"tty""#))
    }

    @Test func oneJSONLineSpelledOut() throws {
        #expect(try json(Self.null.bytes) == #"{"kind":"device","type":65,"subtype":2,"id":0,"len":72,"info":72,"typeinfo":0,"event":"change","seqnum":1514,"major":1,"minor":3,"subsystem":"mem","devpath":"/devices/virtual/mem/null","devpath_truncated":false,"subsystem_truncated":false,"data":"ea0500000000000001000000030000006d656d000000000000000000000000002f646576696365732f7669727475616c2f6d656d2f6e756c6c00000000000000"}"#)
    }
}

@Suite struct SystemRecordFallback {
    /// `bytes` with `extra` zero bytes appended and the header's length to match.
    static func grown(_ bytes: [UInt8], by extra: Int) -> [UInt8] {
        var copy = bytes + [UInt8](repeating: 0, count: extra)
        copy[RecordLayout.lengthByte] = UInt8(copy.count)
        return copy
    }

    /// `bytes` cut to `length`, with the header's length to match.
    static func cut(_ bytes: [UInt8], to length: Int) -> [UInt8] {
        var copy = Array(bytes.prefix(length))
        copy[RecordLayout.lengthByte] = UInt8(length)
        return copy
    }

    @Test(arguments: [
        grown(MountNotification(.newMount, triggeredOn: 1, auxiliaryMount: 2).bytes, by: 8),
        cut(MountNotification(.newMount, triggeredOn: 1, auxiliaryMount: 2).bytes, to: 16),
        grown(ProcessNotification(timestampNS: 1, pid: 2, tgid: 2, event: .exec).bytes, by: 8),
        cut(ProcessNotification(timestampNS: 1, pid: 2, tgid: 2, event: .fork(parentPID: 1, parentTGID: 1)).bytes, to: 24),
        grown(DeviceRecords.null.bytes, by: 4),
        cut(DeviceRecords.null.bytes, to: 32),
    ])
    func wrongLengthsKeepTheGenericLine(bytes: [UInt8]) throws {
        let record = try #require(CapturedRecord(bytes: bytes))
        #expect(record.meaning == .other)
        let header = record.header
        #expect(try text(bytes).hasPrefix("type=\(header.type) subtype=\(header.subtype) id=0 len=\(bytes.count) "))
        #expect(try json(bytes).hasPrefix(#"{"kind":"other","type":\#(header.type),"#))
    }

    @Test func unknownSubtypesKeepTheGenericLine() throws {
        var bytes = MountNotification(.newMount, triggeredOn: 1, auxiliaryMount: 2).bytes
        bytes[3] = 7
        #expect(try text(bytes) == "type=2 subtype=7 id=0 len=24 info=0x00000018 typeinfo=0x0000"
            + " data=01000000000000000200000000000000")
    }

    @Test func meaningsDecodeSystemRecords() throws {
        let mount = MountNotification(.unmount, triggeredOn: 1, auxiliaryMount: 2)
        #expect(try #require(CapturedRecord(bytes: mount.bytes)).meaning == .mount(mount))
        let process = ProcessNotification(timestampNS: 1, pid: 2, tgid: 2, event: .sid)
        #expect(try #require(CapturedRecord(bytes: process.bytes)).meaning == .process(process))
        #expect(try #require(CapturedRecord(bytes: DeviceRecords.null.bytes)).meaning == .device(DeviceRecords.null))
    }
}

extension String {
    /// Foundation-free `replacingOccurrences(of:with:)`, for building expected lines.
    fileprivate func replacingOccurrences(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
