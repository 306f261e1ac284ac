import Testing
@testable import SystemSources
import WatchQueueCore
import CSystemRecordsABI

/// The Swift encoders write exactly what include/wqfs/records.h's structs hold.
@Suite("SystemSources: record layouts")
struct RecordLayoutTests {
    @Test func constantsEqualTheHeader() {
        #expect(SystemNotificationType.mount == cConstant("WQFS_WATCH_TYPE_MOUNT_NOTIFY"))
        #expect(SystemNotificationType.process == cConstant("WQFS_WATCH_TYPE_PROCESS"))
        #expect(SystemNotificationType.device == cConstant("WQFS_WATCH_TYPE_DEVICE"))
        #expect(MountFlags.inSubtree.rawValue == cConstant("WQFS_MOUNT_IN_SUBTREE"))
        #expect(MountFlags.isNowReadOnly.rawValue == cConstant("WQFS_MOUNT_IS_NOW_RO"))
        #expect(MountFlags.submount.rawValue == cConstant("WQFS_MOUNT_IS_SUBMOUNT"))
        #expect(UInt32(MountSubtype.moveTo.rawValue) == cConstant("WQFS_MOUNT_MOVE_TO"))
        #expect(ProcessFlags.killedBySignal.rawValue == cConstant("WQFS_PROCESS_KILLED"))
        #expect(ProcessFlags.dumpedCore.rawValue == cConstant("WQFS_PROCESS_CORE"))
        #expect(UInt32(ProcessSubtype.exit.rawValue) == cConstant("WQFS_PROCESS_EXIT"))
        #expect(DeviceFlags.devpathTruncated.rawValue == cConstant("WQFS_DEVICE_DEVPATH_TRUNCATED"))
        #expect(DeviceFlags.subsystemTruncated.rawValue == cConstant("WQFS_DEVICE_SUBSYSTEM_TRUNCATED"))
        #expect(DeviceNotification.noNumber == cConstant("WQFS_DEVICE_NO_NUMBER"))
        #expect(UInt32(DeviceAction.unbind.rawValue) == cConstant("WQFS_DEVICE_UNBIND"))
        #expect(UInt32(DeviceNotification.maxLength) == cConstant("WQFS_DEVICE_MAX_LEN"))
        #expect(systemRecordMaxLength == DeviceNotification.maxLength)
        #expect(systemRecordMaxLength <= RecordLayout.maxLength)
    }

    @Test func mountRecordsEqualC() {
        for subtype in MountSubtype.allCases {
            for flags: MountFlags in [[], .inSubtree, .isNowReadOnly, .submount, [.inSubtree, .submount]] {
                for (on, aux): (UInt64, UInt64) in [(0, 0), (1, 2), (0x8000_0140, 0x8000_0141), (.max, 0x0102_0304_0506_0708)] {
                    let swift = MountNotification(subtype, flags: flags, triggeredOn: on, auxiliaryMount: aux).bytes
                    let c = cBytes { wqfs_abi_mount($0, UInt32(subtype.rawValue), flags.rawValue, on, aux) }
                    #expect(swift == c, "\(subtype) \(flags) \(on) \(aux)")
                    #expect(swift.count == 24)
                }
            }
        }
        // One spelled out: new mount 0x8000_0141 on 0x8000_0140, bytes 0–7 the header.
        #expect(MountNotification(.newMount, triggeredOn: 0x8000_0140, auxiliaryMount: 0x8000_0141).bytes
            == hex("02 00 00 00 18 00 00 00  40 01 00 80 00 00 00 00  41 01 00 80 00 00 00 00"))
    }

    @Test func processRecordsEqualC() {
        let pairs: [(ProcessNotification.Event, UInt32, UInt32)] = [
            (.fork(parentPID: 7, parentTGID: 8), 7, 8), (.exec, 0, 0), (.uid(real: 1000, effective: 0), 1000, 0),
            (.gid(real: 65534, effective: 100), 65534, 100), (.sid, 0, 0),
            (.ptrace(tracerPID: 0, tracerTGID: 0), 0, 0), (.ptrace(tracerPID: 0xfffe, tracerTGID: 9), 0xfffe, 9),
            (.coredump(parentPID: 1, parentTGID: 1), 1, 1),
        ]
        for (event, a, b) in pairs {
            for ts: UInt64 in [0, 1_181_116_735_475, .max] {
                let swift = ProcessNotification(timestampNS: ts, pid: 0x6b96, tgid: 0x6b90, event: event).bytes
                let c = cBytes { wqfs_abi_process($0, UInt32(event.subtype.rawValue), ts, 0x6b96, 0x6b90, a, b) }
                #expect(swift == c, "\(event)")
                #expect(swift.count == event.subtype.recordLength)
            }
        }
        for name in ["", "a", "abc", "fifteen-chars-x", "sixteen-chars-xy"] {
            let swift = ProcessNotification(timestampNS: 5, pid: 1, tgid: 2, event: .comm(ProcessComm(Array(name.utf8)))).bytes
            let c = cBytes { wqfs_abi_process_comm($0, 5, 1, 2, name) }
            #expect(swift == c, "\(name)")
            #expect(swift.count == 40)
        }
        #expect(ProcessComm(Array("a-name-longer-than-16".utf8)).description == "a-name-longer-th")
        for status: UInt32 in [0, 0x300, 0xff00, 9, 0x8b, 0x7f, 15 | 0x80] {
            let exit = ProcessExit(waitStatus: status, parentPID: 3, parentTGID: 4)
            let record = ProcessNotification(timestampNS: 9, pid: 5, tgid: 6, event: .exit(exit))
            let c = cBytes {
                wqfs_abi_process_exit($0, record.flags.rawValue, 9, 5, 6, exit.exitCode, exit.exitSignal, 3, 4)
            }
            #expect(record.bytes == c, "status \(status)")
            #expect(record.bytes.count == 40)
        }
    }

    @Test func waitStatusesDecodeAsWaitMacrosDo() {
        let exited = ProcessExit(waitStatus: 0x300, parentPID: 0, parentTGID: 0)
        #expect(exited.exitCode == 3 && exited.exitSignal == 0 && !exited.killedBySignal && !exited.dumpedCore)
        let killed = ProcessExit(waitStatus: 9, parentPID: 0, parentTGID: 0)
        #expect(killed.exitCode == 0 && killed.exitSignal == 9 && killed.killedBySignal && !killed.dumpedCore)
        let cored = ProcessExit(waitStatus: 0x8b, parentPID: 0, parentTGID: 0)
        #expect(cored.exitCode == 0 && cored.exitSignal == 11 && cored.killedBySignal && cored.dumpedCore)
        let stopped = ProcessExit(waitStatus: 0x137f, parentPID: 0, parentTGID: 0)
        #expect(stopped.exitCode == 0 && stopped.exitSignal == 0 && !stopped.killedBySignal)
        let record = ProcessNotification(timestampNS: 0, pid: 1, tgid: 1, event: .exit(cored))
        #expect(record.flags == [.killedBySignal, .dumpedCore])
        #expect(record.bytes.withUnsafeBytes { RecordHeader(bytes: $0) }.info == 0x0003_0028)
    }

    @Test func deviceRecordsEqualC() {
        let paths = ["", "/a", "/devices/virtual/mem/null", "/devices/pci0000:00/0000:00:02.0/virtio1/block/vda",
                     String(repeating: "x", count: 79), String(repeating: "y", count: 80),
                     String(repeating: "z", count: 81), String(repeating: "/p", count: 100)]
        for path in paths {
            for subsystem in ["mem", "block", "sixteen-bytes-xy", "seventeen-bytes-x", ""] {
                for action in DeviceAction.allCases {
                    let record = DeviceNotification(action: action, seqnum: 1370, major: 1, minor: 3,
                                                    subsystem: Array(subsystem.utf8), devpath: Array(path.utf8))
                    let c = cBytes { wqfs_abi_device($0, UInt32(action.rawValue), 1370, 1, 3, subsystem, path) }
                    #expect(record.bytes == c, "\(action) \(subsystem) \(path)")
                    #expect(record.bytes.count % 8 == 0 && record.bytes.count <= 120 && record.bytes.count >= 40)
                    #expect(SystemRecordLayout.isValid(type: 65, subtype: action.rawValue, length: record.length))
                }
            }
        }
        let long = DeviceNotification(action: .add, seqnum: 1, subsystem: Array("seventeen-bytes-x".utf8),
                                      devpath: Array(String(repeating: "z", count: 81).utf8))
        #expect(long.flags == [.devpathTruncated, .subsystemTruncated])
        #expect(long.length == 120)
        #expect(long.bytes[16..<24].elementsEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))
    }

    @Test func encodersWriteIntoACallersBufferAndReturnTheLength() {
        var buffer = [UInt8](repeating: 0xaa, count: 200)
        let length = buffer.withUnsafeMutableBytes {
            DeviceNotification(action: .change, seqnum: 7, subsystem: Array("mem".utf8), devpath: Array("/x".utf8))
                .encode(into: UnsafeMutableRawBufferPointer(rebasing: $0[10...]))
        }
        #expect(length == 48)
        #expect(buffer[0..<10].allSatisfy { $0 == 0xaa } && buffer[58...].allSatisfy { $0 == 0xaa })
        #expect(buffer[52..<58].allSatisfy { $0 == 0 })  // devpath padding
    }

    @Test func layoutTableAgreesWithTheEncoders() {
        for subtype in ProcessSubtype.allCases {
            #expect(SystemRecordLayout.isValid(type: 64, subtype: subtype.rawValue, length: subtype.recordLength))
            #expect(!SystemRecordLayout.isValid(type: 64, subtype: subtype.rawValue, length: subtype.recordLength + 8))
        }
        #expect(!SystemRecordLayout.isValid(type: 64, subtype: 9, length: 24))
        #expect(SystemRecordLayout.isValid(type: 2, subtype: 6, length: 24))
        #expect(!SystemRecordLayout.isValid(type: 2, subtype: 7, length: 24))
        #expect(!SystemRecordLayout.isValid(type: 65, subtype: 0, length: 44))
        #expect(!SystemRecordLayout.isValid(type: 65, subtype: 8, length: 48))
        #expect(!SystemRecordLayout.isValid(type: 1, subtype: 0, length: 16))
    }
}
