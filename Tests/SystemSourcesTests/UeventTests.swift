import Testing
@testable import SystemSources
import CSystemRecordsABI

/// Datagrams the kernel (nl_pid 0) sent on NETLINK_KOBJECT_UEVENT group 1 on this
/// machine for `echo change > /sys/class/mem/null/uevent`, `.../net/lo/uevent` and
/// `/sys/block/vda/uevent`.
enum CapturedUevent {
    static let null = hex("""
        63 68 61 6e 67 65 40 2f 64 65 76 69 63 65 73 2f 76 69 72 74 75 61 6c 2f 6d 65 6d 2f 6e 75 6c 6c
        00 41 43 54 49 4f 4e 3d 63 68 61 6e 67 65 00 44 45 56 50 41 54 48 3d 2f 64 65 76 69 63 65 73 2f
        76 69 72 74 75 61 6c 2f 6d 65 6d 2f 6e 75 6c 6c 00 53 55 42 53 59 53 54 45 4d 3d 6d 65 6d 00 53
        59 4e 54 48 5f 55 55 49 44 3d 30 00 4d 41 4a 4f 52 3d 31 00 4d 49 4e 4f 52 3d 33 00 44 45 56 4e
        41 4d 45 3d 6e 75 6c 6c 00 44 45 56 4d 4f 44 45 3d 30 36 36 36 00 53 45 51 4e 55 4d 3d 31 33 37
        30 00
        """)
    static let lo = hex("""
        63 68 61 6e 67 65 40 2f 64 65 76 69 63 65 73 2f 76 69 72 74 75 61 6c 2f 6e 65 74 2f 6c 6f 00 41
        43 54 49 4f 4e 3d 63 68 61 6e 67 65 00 44 45 56 50 41 54 48 3d 2f 64 65 76 69 63 65 73 2f 76 69
        72 74 75 61 6c 2f 6e 65 74 2f 6c 6f 00 53 55 42 53 59 53 54 45 4d 3d 6e 65 74 00 53 59 4e 54 48
        5f 55 55 49 44 3d 30 00 49 4e 54 45 52 46 41 43 45 3d 6c 6f 00 49 46 49 4e 44 45 58 3d 31 00 53
        45 51 4e 55 4d 3d 31 33 37 31 00
        """)
    static let vda = Array("""
        change@/devices/pci0000:00/0000:00:02.0/virtio1/block/vda\0ACTION=change\0\
        DEVPATH=/devices/pci0000:00/0000:00:02.0/virtio1/block/vda\0SUBSYSTEM=block\0SYNTH_UUID=0\0\
        MAJOR=254\0MINOR=0\0DEVNAME=vda\0DEVTYPE=disk\0DISKSEQ=9\0SEQNUM=1372\0
        """.utf8)
}

/// A uevent whose devpath (95 bytes) and subsystem (20) do not fit a record.
enum LongUevent {
    static let path = "/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb/sdb1"
    static let subsystem = "a-subsystem-name-of-20"
    static let datagram = Array("add@\(path)\0ACTION=add\0DEVPATH=\(path)\0SUBSYSTEM=\(subsystem)\0SEQNUM=9\0".utf8)
}

@Suite("SystemSources: uevents")
struct UeventTests {
    func string(_ bytes: [UInt8]?) -> String? { bytes.map { String(decoding: $0, as: UTF8.self) } }

    @Test func capturedUeventsDecode() throws {
        let null = try Uevent(decoding: CapturedUevent.null)
        #expect(null.action == .change && string(null.devpath) == "/devices/virtual/mem/null")
        #expect(string(null.subsystem) == "mem" && null.seqnum == 1370 && null.major == 1 && null.minor == 3)
        #expect(string(null.devname) == "null" && null.devtype == nil)
        #expect(null.properties.map { string($0.key)! }
            == ["ACTION", "DEVPATH", "SUBSYSTEM", "SYNTH_UUID", "MAJOR", "MINOR", "DEVNAME", "DEVMODE", "SEQNUM"])
        #expect(null.properties[7] == Uevent.Property("DEVMODE", "0666"))
        #expect(null.datagram == CapturedUevent.null)

        let lo = try Uevent(decoding: CapturedUevent.lo)
        #expect(lo.major == nil && lo.minor == nil && string(lo.subsystem) == "net" && lo.seqnum == 1371)
        #expect(lo.notification.major == 0xffff_ffff && lo.notification.minor == 0xffff_ffff)

        let vda = try Uevent(decoding: CapturedUevent.vda)
        #expect(vda.major == 254 && vda.minor == 0 && string(vda.devtype) == "disk" && vda.seqnum == 1372)
        #expect(vda.datagram == CapturedUevent.vda)
    }

    @Test func capturedUeventBecomesTheCBuiltRecord() throws {
        for (datagram, major, minor) in [(CapturedUevent.null, UInt32(1), UInt32(3)),
                                         (CapturedUevent.lo, 0xffff_ffff, 0xffff_ffff),
                                         (CapturedUevent.vda, 254, 0)] {
            let event = try Uevent(decoding: datagram)
            let c = cBytes {
                wqfs_abi_device($0, UInt32(DeviceAction.change.rawValue), event.seqnum, major, minor,
                                string(event.subsystem)!, string(event.devpath)!)
            }
            #expect(event.notification.bytes == c)
        }
        // /devices/virtual/mem/null: 25 bytes, padded to 32: a 72-byte record.
        #expect(try Uevent(decoding: CapturedUevent.null).notification.bytes == hex("""
            41 00 00 02 48 00 00 00  5a 05 00 00 00 00 00 00  01 00 00 00 03 00 00 00
            6d 65 6d 00 00 00 00 00 00 00 00 00 00 00 00 00
            2f 64 65 76 69 63 65 73 2f 76 69 72 74 75 61 6c 2f 6d 65 6d 2f 6e 75 6c 6c 00 00 00 00 00 00 00
            """))
    }

    @Test func everyActionMaps() throws {
        for action in DeviceAction.allCases {
            let text = "\(action.word)@/devices/x\0ACTION=\(action.word)\0DEVPATH=/devices/x\0SUBSYSTEM=s\0SEQNUM=1\0"
            #expect(try Uevent(decoding: Array(text.utf8)).notification.action == action)
        }
        #expect(DeviceAction(word: Array("bogus".utf8)) == nil)
    }

    @Test func malformedAndForeignMessagesAreRefused() {
        let good = "add@/d\0ACTION=add\0DEVPATH=/d\0SUBSYSTEM=s\0SEQNUM=5\0"
        #expect(decodeError { try Uevent(decoding: Array(good.utf8)) } == nil)
        let cases: [(String, String)] = [
            ("udev's format", "libudev\0\u{feed}\u{cafe}rest"),
            ("empty", ""),
            ("no final NUL", String(good.dropLast())),
            ("no @", "add/d\0ACTION=add\0DEVPATH=/d\0SUBSYSTEM=s\0SEQNUM=5\0"),
            ("empty string", "add@/d\0\0ACTION=add\0DEVPATH=/d\0SUBSYSTEM=s\0SEQNUM=5\0"),
            ("no =", "add@/d\0ACTION=add\0DEVPATH=/d\0SUBSYSTEM=s\0SEQNUM=5\0JUNK\0"),
            ("empty key", "add@/d\0ACTION=add\0DEVPATH=/d\0SUBSYSTEM=s\0SEQNUM=5\0=x\0"),
            ("unknown action", "fly@/d\0ACTION=fly\0DEVPATH=/d\0SUBSYSTEM=s\0SEQNUM=5\0"),
            ("no ACTION", "add@/d\0DEVPATH=/d\0SUBSYSTEM=s\0SEQNUM=5\0"),
            ("no DEVPATH", "add@/d\0ACTION=add\0SUBSYSTEM=s\0SEQNUM=5\0"),
            ("no SUBSYSTEM", "add@/d\0ACTION=add\0DEVPATH=/d\0SEQNUM=5\0"),
            ("no SEQNUM", "add@/d\0ACTION=add\0DEVPATH=/d\0SUBSYSTEM=s\0"),
            ("bad SEQNUM", "add@/d\0ACTION=add\0DEVPATH=/d\0SUBSYSTEM=s\0SEQNUM=5x\0"),
            ("SEQNUM overflow", "add@/d\0ACTION=add\0DEVPATH=/d\0SUBSYSTEM=s\0SEQNUM=18446744073709551616\0"),
            ("MAJOR too big", "add@/d\0ACTION=add\0DEVPATH=/d\0SUBSYSTEM=s\0SEQNUM=5\0MAJOR=4294967296\0"),
            ("empty MINOR", "add@/d\0ACTION=add\0DEVPATH=/d\0SUBSYSTEM=s\0SEQNUM=5\0MINOR=\0"),
            ("two ACTIONs", "add@/d\0ACTION=add\0ACTION=add\0DEVPATH=/d\0SUBSYSTEM=s\0SEQNUM=5\0"),
            ("summary disagrees", "remove@/d\0ACTION=add\0DEVPATH=/d\0SUBSYSTEM=s\0SEQNUM=5\0"),
            ("path disagrees", "add@/e\0ACTION=add\0DEVPATH=/d\0SUBSYSTEM=s\0SEQNUM=5\0"),
        ]
        for (name, text) in cases {
            let error = decodeError { try Uevent(decoding: Array(text.utf8)) }
            #expect(error?.format == .uevent && error?.reason.isEmpty == false, "\(name)")
        }
        for length in 0..<CapturedUevent.null.count {
            #expect(decodeError { try Uevent(decoding: Array(CapturedUevent.null.prefix(length))) } != nil, "cut at \(length)")
        }
    }

    /// What the event thread posts: `Uevent.scan`'s ranges into the datagram, encoded
    /// by `Fields.encode(from:into:)` straight into the sink's buffer.
    func scannedRecord(_ datagram: [UInt8]) throws -> (record: [UInt8], devpath: String, subsystem: String) {
        try datagram.withUnsafeBytes { (bytes) throws -> ([UInt8], String, String) in
            let fields = try Uevent.scan(bytes)
            var buffer = [UInt8](repeating: 0xee, count: DeviceNotification.maxLength + 8)
            let length = buffer.withUnsafeMutableBytes { fields.encode(from: bytes, into: $0) }
            #expect(buffer[length...].allSatisfy { $0 == 0xee }, "wrote past the length it returned")
            return (Array(buffer[..<length]), String(decoding: bytes[fields.devpath], as: UTF8.self),
                    String(decoding: bytes[fields.subsystem], as: UTF8.self))
        }
    }

    @Test func scanFindsTheFieldsAndEncodesTheCBuiltRecord() throws {
        for (datagram, devpath, subsystem, seqnum, major, minor) in [
            (CapturedUevent.null, "/devices/virtual/mem/null", "mem", UInt64(1370), UInt32(1), UInt32(3)),
            (CapturedUevent.lo, "/devices/virtual/net/lo", "net", 1371, 0xffff_ffff, 0xffff_ffff),
            (CapturedUevent.vda, "/devices/pci0000:00/0000:00:02.0/virtio1/block/vda", "block", 1372, 254, 0),
        ] {
            let scanned = try scannedRecord(datagram)
            #expect(scanned.devpath == devpath && scanned.subsystem == subsystem)
            #expect(scanned.record == cBytes {
                wqfs_abi_device($0, UInt32(DeviceAction.change.rawValue), seqnum, major, minor, subsystem, devpath)
            })
        }
        // Cut where the record has no room, with the flags the C header sets.
        let long = try scannedRecord(LongUevent.datagram)
        #expect(long.devpath == LongUevent.path && long.record.count == 120)
        #expect(long.record == cBytes {
            wqfs_abi_device($0, UInt32(DeviceAction.add.rawValue), 9, 0xffff_ffff, 0xffff_ffff, LongUevent.subsystem, LongUevent.path)
        })
        // Refused before anything is written.
        #expect(throws: DecodeError.self) { try scannedRecord(Array("libudev\0rest\0".utf8)) }
    }

    @Test func longDevpathsAndSubsystemsAreCutAndFlagged() throws {
        let path = LongUevent.path
        let record = try Uevent(decoding: LongUevent.datagram).notification
        #expect(record.flags == [.devpathTruncated, .subsystemTruncated])
        #expect(record.bytes.count == 120)
        #expect(record.bytes[40...].elementsEqual(path.utf8.prefix(80)))
        #expect(record.bytes[24..<40].elementsEqual("a-subsystem-name".utf8))
    }
}
