import Testing
@testable import SystemSources
import WatchQueueCore

/// The decoders read back exactly what the encoders write, and nothing whose shape
/// the layout table does not allow.
@Suite("SystemSources: record decoders")
struct RecordDecodingTests {
    static let processEvents: [ProcessNotification.Event] = [
        .fork(parentPID: 7, parentTGID: 8), .exec, .uid(real: 1000, effective: 0),
        .gid(real: 65534, effective: 100), .sid, .ptrace(tracerPID: 0, tracerTGID: 0),
        .ptrace(tracerPID: 0xfffe, tracerTGID: 9), .comm(ProcessComm(Array("sixteen-chars-xy".utf8))),
        .comm(ProcessComm(Array("sh".utf8))), .coredump(parentPID: 1, parentTGID: 1),
        .exit(ProcessExit(waitStatus: 0x300, parentPID: 3, parentTGID: 4)),
        .exit(ProcessExit(waitStatus: 9, parentPID: 3, parentTGID: 4)),
        .exit(ProcessExit(waitStatus: 0x8b, parentPID: 3, parentTGID: 4)),
    ]

    @Test func mountRoundTripsForEverySubtypeAndFlag() {
        for subtype in MountSubtype.allCases {
            for flags: MountFlags in [[], .inSubtree, .isNowReadOnly, .submount, [.inSubtree, .submount],
                                      MountFlags(rawValue: 0xfff8_0000)] {
                let record = MountNotification(subtype, flags: flags, triggeredOn: 0x8000_0140, auxiliaryMount: .max)
                #expect(MountNotification(record: record.bytes) == record, "\(subtype) \(flags)")
                #expect(record.bytes.withUnsafeBytes { MountNotification(record: $0) } == record)
            }
        }
    }

    @Test func processRoundTripsForEverySubtype() {
        #expect(Set(Self.processEvents.map(\.subtype)) == Set(ProcessSubtype.allCases))
        for event in Self.processEvents {
            let record = ProcessNotification(timestampNS: 1_181_116_735_475, pid: 0x6b96, tgid: 0x6b90, event: event)
            #expect(ProcessNotification(record: record.bytes) == record, "\(event)")
            #expect(ProcessNotification(record: record.bytes[...]) == record)
        }
    }

    @Test func deviceRoundTripsForEveryAction() {
        for action in DeviceAction.allCases {
            for path in ["", "/a", "/devices/virtual/mem/null", String(repeating: "x", count: 79),
                         String(repeating: "y", count: 80)] {
                for (major, minor) in [(DeviceNotification.noNumber, DeviceNotification.noNumber), (1, 3)] {
                    let record = DeviceNotification(action: action, seqnum: 1514, major: major, minor: minor,
                                                    subsystem: Array("mem".utf8), devpath: Array(path.utf8))
                    #expect(DeviceNotification(record: record.bytes) == record, "\(action) \(path)")
                }
            }
        }
        // A subsystem of exactly 16 bytes has no NUL and is whole.
        let full = DeviceNotification(action: .add, seqnum: 1, subsystem: Array("sixteen-bytes-xy".utf8), devpath: [])
        #expect(DeviceNotification(record: full.bytes) == full)
    }

    @Test func cutDevpathAndSubsystemKeepTheirFlags() throws {
        let long = DeviceNotification(action: .add, seqnum: 1, subsystem: Array("seventeen-bytes-x".utf8),
                                      devpath: Array(String(repeating: "z", count: 81).utf8))
        let decoded = try #require(DeviceNotification(record: long.bytes))
        #expect(decoded.devpath == Array(String(repeating: "z", count: 80).utf8))
        #expect(decoded.subsystem == Array("seventeen-bytes-".utf8))
        #expect(decoded.flags == [.devpathTruncated, .subsystemTruncated])
        #expect(decoded.decodedFlags == [.devpathTruncated, .subsystemTruncated])
        #expect(decoded.bytes == long.bytes)
    }

    @Test func devpathEndsAtItsFirstNUL() throws {
        // 48 bytes: "/x", a NUL, then garbage the decoder must not take.
        let record = DeviceNotification(action: .change, seqnum: 2, subsystem: Array("mem".utf8),
                                        devpath: Array("/x".utf8)).bytes
        let dirty = patch(record, at: 43, UInt32(0x4142_4344))
        #expect(DeviceNotification(record: dirty)?.devpath == Array("/x".utf8))
    }

    @Test func watchIDIsIgnored() {
        let record = MountNotification(.unmount, triggeredOn: 1, auxiliaryMount: 2)
        var bytes = record.bytes
        bytes[5] = 7  // The watch ID byte the engine sets per watch.
        #expect(MountNotification(record: bytes) == record)
    }

    @Test func wrongShapesAreNil() {
        let mount = MountNotification(.newMount, triggeredOn: 1, auxiliaryMount: 2).bytes
        let process = ProcessNotification(timestampNS: 1, pid: 2, tgid: 3, event: .exec).bytes
        let fork = ProcessNotification(timestampNS: 1, pid: 2, tgid: 3, event: .fork(parentPID: 1, parentTGID: 1)).bytes
        let device = DeviceNotification(action: .add, seqnum: 1, subsystem: [], devpath: Array("/d".utf8)).bytes

        // Fewer or more bytes than the header says, or fewer than a header.
        #expect(MountNotification(record: mount.prefix(16)) == nil)
        #expect(MountNotification(record: mount + [0]) == nil)
        #expect(MountNotification(record: [UInt8]()) == nil)
        #expect(MountNotification(record: mount.prefix(7)) == nil)
        // A header length the layout table does not allow, bytes to match.
        #expect(MountNotification(record: relength(mount + [0, 0, 0, 0, 0, 0, 0, 0], to: 32)) == nil)
        #expect(ProcessNotification(record: relength(process + le(UInt64(0)), to: 32)) == nil)  // exec is 24
        #expect(ProcessNotification(record: relength(Array(fork.prefix(24)), to: 24)) == nil)  // fork is 32
        #expect(DeviceNotification(record: relength(Array(device.prefix(44)), to: 44)) == nil)  // not a multiple of 8
        #expect(DeviceNotification(record: relength(Array(device.prefix(32)), to: 32)) == nil)  // under 40
        // Unknown subtypes.
        #expect(MountNotification(record: resubtype(mount, to: 7)) == nil)
        #expect(ProcessNotification(record: resubtype(process, to: 9)) == nil)
        #expect(DeviceNotification(record: resubtype(device, to: 8)) == nil)
        // The right shape of another type.
        #expect(MountNotification(record: retype(mount, to: 1)) == nil)
        #expect(ProcessNotification(record: retype(process, to: 65)) == nil)
        #expect(DeviceNotification(record: retype(device, to: 64)) == nil)
        #expect(ProcessNotification(record: mount) == nil && DeviceNotification(record: mount) == nil)
    }
}

/// `bytes` with the header's length field set to `length`.
private func relength(_ bytes: [UInt8], to length: UInt8) -> [UInt8] {
    var copy = bytes
    copy[RecordLayout.lengthByte] = length
    return copy
}

/// `bytes` with the header's subtype byte set to `subtype`.
private func resubtype(_ bytes: [UInt8], to subtype: UInt8) -> [UInt8] {
    var copy = bytes
    copy[3] = subtype
    return copy
}

/// `bytes` with the header's type set to `type`.
private func retype(_ bytes: [UInt8], to type: UInt32) -> [UInt8] {
    var copy = bytes
    let header = bytes.withUnsafeBytes { RecordHeader(bytes: $0) }
    copy.replaceSubrange(0..<4, with: le(RecordHeader(type: type, subtype: header.subtype, info: header.info).word0))
    return copy
}
