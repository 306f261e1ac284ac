import Testing
@testable import SystemSources
import CSystemRecordsABI

/// Datagrams a Linux 6.18 kernel sent to a NETLINK_CONNECTOR socket on this machine
/// (listening for everything, then running setpriv, a SEGV, setsid, a comm write).
enum CapturedConnector {
    static let ack = hex("""
        4c 00 00 00 03 00 00 00 7e 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 7e 00 00 00 01 00 00 00
        28 00 00 00 00 00 00 00 00 00 00 00 27 69 93 55 13 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00
        """)
    static let fork = hex("""
        4c 00 00 00 03 00 00 00 7f 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 7f 00 00 00 00 00 00 00
        28 00 00 00 01 00 00 00 00 00 00 00 95 f2 93 55 13 01 00 00 f0 6b 00 00 f0 6b 00 00 f4 6b 00 00
        f4 6b 00 00 00 00 00 00 00 00 00 00
        """)
    static let exec = hex("""
        4c 00 00 00 03 00 00 00 8c 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 8c 00 00 00 00 00 00 00
        28 00 00 00 02 00 00 00 01 00 00 00 ff 47 9b 55 13 01 00 00 f1 6b 00 00 f1 6b 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00
        """)
    static let uid = hex("""
        4c 00 00 00 03 00 00 00 84 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 84 00 00 00 00 00 00 00
        28 00 00 00 04 00 00 00 00 00 00 00 1b f8 f8 55 13 01 00 00 f5 6b 00 00 f5 6b 00 00 fe ff 00 00
        fe ff 00 00 00 00 00 00 00 00 00 00
        """)
    static let gid = hex("""
        4c 00 00 00 03 00 00 00 85 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 85 00 00 00 00 00 00 00
        28 00 00 00 40 00 00 00 00 00 00 00 17 17 f9 55 13 01 00 00 f5 6b 00 00 f5 6b 00 00 fe ff 00 00
        fe ff 00 00 00 00 00 00 00 00 00 00
        """)
    static let sid = hex("""
        4c 00 00 00 03 00 00 00 8e 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 8e 00 00 00 00 00 00 00
        28 00 00 00 80 00 00 00 00 00 00 00 d3 b7 a4 56 13 01 00 00 f7 6b 00 00 f7 6b 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00
        """)
    static let comm = hex("""
        4c 00 00 00 03 00 00 00 91 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 91 00 00 00 00 00 00 00
        28 00 00 00 00 02 00 00 00 00 00 00 09 77 b4 56 13 01 00 00 f4 6b 00 00 f4 6b 00 00 61 62 63 00
        00 00 00 00 00 00 00 00 00 00 00 00
        """)
    static let coredump = hex("""
        4c 00 00 00 03 00 00 00 9b 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 9b 00 00 00 00 00 00 00
        28 00 00 00 00 00 00 40 01 00 00 00 a7 1f 72 22 14 01 00 00 0c 6c 00 00 0c 6c 00 00 0b 6c 00 00
        0b 6c 00 00 00 00 00 00 00 00 00 00
        """)
    /// Killed by SIGSEGV with a core dump: status 0x8b; the kernel's exit_signal is SIGCHLD (0x11).
    static let exitSegv = hex("""
        4c 00 00 00 03 00 00 00 9c 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 9c 00 00 00 00 00 00 00
        28 00 00 00 00 00 00 80 01 00 00 00 77 1a 85 22 14 01 00 00 0c 6c 00 00 0c 6c 00 00 8b 00 00 00
        11 00 00 00 0b 6c 00 00 0b 6c 00 00
        """)
    /// `sh -c 'exit 3'`: status 0x300.
    static let exit3 = hex("""
        4c 00 00 00 03 00 00 00 03 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 03 00 00 00 00 00 00 00
        28 00 00 00 00 00 00 80 00 00 00 00 f3 9f f5 e7 11 01 00 00 96 6b 00 00 96 6b 00 00 00 03 00 00
        11 00 00 00 95 6b 00 00 95 6b 00 00
        """)
    /// A thread exiting: exit_signal -1, no parent.
    static let threadExit = hex("""
        4c 00 00 00 03 00 00 00 9e 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 9e 00 00 00 00 00 00 00
        28 00 00 00 00 00 00 80 01 00 00 00 19 3a a4 22 14 01 00 00 c6 6b 00 00 c0 6b 00 00 00 00 00 00
        ff ff ff ff 00 00 00 00 00 00 00 00
        """)
    /// The listen message the capture program (built with the kernel headers) sent:
    /// LISTEN with the 6.6 filter EXIT only, port 0x6b94.
    static let listenExitOnly = hex("""
        2c 00 00 00 03 00 00 00 00 00 00 00 94 6b 00 00 01 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00
        08 00 00 00 01 00 00 00 00 00 00 80
        """)
}

@Suite("SystemSources: proc connector")
struct ProcConnectorTests {
    func decode(_ bytes: [UInt8]) throws(DecodeError) -> ProcConnector.Message {
        try bytes.withUnsafeBufferPointer { (raw) throws(DecodeError) -> ProcConnector.Message in
            try ProcConnector.decode(UnsafeRawBufferPointer(raw))
        }
    }

    func event(_ bytes: [UInt8]) throws -> ProcessNotification {
        guard case .event(let record, _) = try decode(bytes) else { throw DecodeError(.procConnector, at: 0, "not an event") }
        return record
    }

    @Test func capturedEventsDecodeIntoTheirRecords() throws {
        #expect(try decode(CapturedConnector.ack) == .acknowledgement(error: 0, sequence: 0x7e, acknowledge: 1))
        #expect(try event(CapturedConnector.fork)
            == ProcessNotification(timestampNS: 0x113_5593_f295, pid: 0x6bf4, tgid: 0x6bf4,
                                   event: .fork(parentPID: 0x6bf0, parentTGID: 0x6bf0)))
        #expect(try event(CapturedConnector.exec) == ProcessNotification(timestampNS: 0x113_559b_47ff, pid: 0x6bf1, tgid: 0x6bf1, event: .exec))
        #expect(try event(CapturedConnector.uid).event == .uid(real: 65534, effective: 65534))
        #expect(try event(CapturedConnector.gid).event == .gid(real: 65534, effective: 65534))
        #expect(try event(CapturedConnector.sid).event == .sid)
        #expect(try event(CapturedConnector.comm).event == .comm(ProcessComm(Array("abc".utf8))))
        #expect(try event(CapturedConnector.coredump).event == .coredump(parentPID: 0x6c0b, parentTGID: 0x6c0b))
        let segv = try event(CapturedConnector.exitSegv)
        #expect(segv.event == .exit(ProcessExit(exitCode: 0, exitSignal: 11, killedBySignal: true, dumpedCore: true,
                                                parentPID: 0x6c0b, parentTGID: 0x6c0b)))
        #expect(segv.flags == [.killedBySignal, .dumpedCore])
        #expect(try event(CapturedConnector.exit3).event
            == .exit(ProcessExit(exitCode: 3, exitSignal: 0, killedBySignal: false, dumpedCore: false,
                                 parentPID: 0x6b95, parentTGID: 0x6b95)))
        let thread = try event(CapturedConnector.threadExit)
        #expect(thread.pid == 0x6bc6 && thread.tgid == 0x6bc0)
        #expect(thread.event == .exit(ProcessExit(exitCode: 0, exitSignal: 0, killedBySignal: false, dumpedCore: false,
                                                  parentPID: 0, parentTGID: 0)))
        if case .event(_, let cpu) = try decode(CapturedConnector.coredump) { #expect(cpu == 1) }
    }

    @Test func capturedExitBecomesTheExpectedRecordBytes() throws {
        let record = try event(CapturedConnector.exitSegv).bytes
        #expect(record == hex("""
            40 00 00 08 28 00 03 00  77 1a 85 22 14 01 00 00  0c 6c 00 00 0c 6c 00 00
            00 00 00 00 0b 00 00 00  0b 6c 00 00 0b 6c 00 00
            """))
    }

    @Test func everyEventBuiltWithTheKernelStructsDecodes() throws {
        let f: [UInt32] = [11, 12, 13, 14, 15, 16]
        func built(_ what: UInt32) -> [UInt8] { cBytes { wqfs_abi_cn_event($0, what, 1, 99, 5, f) } }
        #expect(try event(built(ProcConnector.What.fork)) == ProcessNotification(timestampNS: 99, pid: 13, tgid: 14, event: .fork(parentPID: 11, parentTGID: 12)))
        #expect(try event(built(ProcConnector.What.exec)) == ProcessNotification(timestampNS: 99, pid: 11, tgid: 12, event: .exec))
        #expect(try event(built(ProcConnector.What.uid)).event == .uid(real: 13, effective: 14))
        #expect(try event(built(ProcConnector.What.gid)).event == .gid(real: 13, effective: 14))
        #expect(try event(built(ProcConnector.What.sid)).event == .sid)
        #expect(try event(built(ProcConnector.What.ptrace)).event == .ptrace(tracerPID: 13, tracerTGID: 14))
        #expect(try event(built(ProcConnector.What.coredump)).event == .coredump(parentPID: 13, parentTGID: 14))
        #expect(try event(built(ProcConnector.What.exit)).event
            == .exit(ProcessExit(waitStatus: 13, parentPID: 15, parentTGID: 16)))
        #expect(try decode(built(ProcConnector.What.none)) == .acknowledgement(error: 11, sequence: 5, acknowledge: 0))
        let comm = cBytes { wqfs_abi_cn_comm($0, 7, 1, 2, "sixteen-chars-xy") }
        #expect(try event(comm).event == .comm(ProcessComm(Array("sixteen-chars-xy".utf8))))
        #expect(built(ProcConnector.What.exit).count == 76)
    }

    @Test func eventCodesEqualTheHeader() {
        #expect(ProcConnector.What.fork == cConstant("PROC_EVENT_FORK"))
        #expect(ProcConnector.What.exec == cConstant("PROC_EVENT_EXEC"))
        #expect(ProcConnector.What.uid == cConstant("PROC_EVENT_UID"))
        #expect(ProcConnector.What.gid == cConstant("PROC_EVENT_GID"))
        #expect(ProcConnector.What.sid == cConstant("PROC_EVENT_SID"))
        #expect(ProcConnector.What.ptrace == cConstant("PROC_EVENT_PTRACE"))
        #expect(ProcConnector.What.comm == cConstant("PROC_EVENT_COMM"))
        #expect(ProcConnector.What.coredump == cConstant("PROC_EVENT_COREDUMP"))
        #expect(ProcConnector.What.exit == cConstant("PROC_EVENT_EXIT"))
        #expect(ProcConnector.index == cConstant("CN_IDX_PROC") && ProcConnector.value == cConstant("CN_VAL_PROC"))
        #expect(UInt32(ProcConnector.netlinkDone) == cConstant("NLMSG_DONE"))
        #expect(ProcConnector.MulticastOp.listen.rawValue == cConstant("PROC_CN_MCAST_LISTEN"))
        #expect(ProcConnector.MulticastOp.ignore.rawValue == cConstant("PROC_CN_MCAST_IGNORE"))
    }

    @Test func subscriptionMessagesEqualTheCapturedAndTheCBuiltOnes() {
        #expect(ProcConnector.subscription(.listen, eventMask: 0x8000_0000, portID: 0x6b94) == CapturedConnector.listenExitOnly)
        for op in [ProcConnector.MulticastOp.listen, .ignore] {
            for mask: UInt32? in [nil, 0, 0x8000_0000, 0xe000_03c7] {
                let swift = ProcConnector.subscription(op, eventMask: mask, sequence: 3, portID: 42)
                let c = cBytes { wqfs_abi_cn_listen($0, op.rawValue, mask == nil ? 0 : 1, mask ?? 0, 3, 42) }
                #expect(swift == c, "\(op) \(String(describing: mask))")
            }
        }
        #expect(ProcConnector.subscription(.listen, eventMask: nil).count == 40)
    }

    @Test func subtypeSetsMapToTheFilterMask() {
        #expect(ProcConnector.eventMask(for: [ProcessSubtype]()) == 0)
        #expect(ProcConnector.eventMask(for: [.exit]) == 0x8000_0000)
        #expect(ProcConnector.eventMask(for: [.fork, .exec, .exit]) == 0x8000_0003)
        #expect(ProcConnector.eventMask(for: ProcessSubtype.allCases) == 0xc000_03c7)
        #expect(ProcConnector.eventMask(for: [.uid, .gid, .sid, .ptrace, .comm, .coredump]) == 0x4000_03c4)
    }

    @Test func everyTruncationIsAnErrorNotACrash() {
        let whole = CapturedConnector.exitSegv
        for length in 0..<whole.count {
            // Cut the datagram and keep nlmsg_len consistent where it still fits.
            let cut = Array(whole.prefix(length))
            #expect(decodeError { try decode(cut) } != nil, "length \(length)")
            if length >= 16 {
                let consistent = patch(cut, at: 0, UInt32(length))
                #expect(decodeError { try decode(consistent) } != nil, "consistent length \(length)")
            }
        }
    }

    @Test func malformedHeadersAreRefusedWithAReason() {
        let good = CapturedConnector.fork
        let cases: [(String, [UInt8])] = [
            ("nlmsg_len past the datagram", patch(good, at: 0, UInt32(200))),
            ("nlmsg_len under the header", patch(good, at: 0, UInt32(8))),
            ("NLMSG_ERROR", patch(good, at: 4, UInt16(2))),
            ("another connector", patch(good, at: 16, UInt32(4))),
            ("cn_msg.len past the message", patch(good, at: 32, UInt16(41))),
            ("cn_msg.len under the union", patch(good, at: 32, UInt16(20))),
            ("unknown what", patch(good, at: 36, UInt32(0x400))),
            ("NONZERO_EXIT as what", patch(good, at: 36, UInt32(0x2000_0000))),
            ("a second message", good + good),
        ]
        for (name, bytes) in cases {
            let error = decodeError { try decode(bytes) }
            #expect(error != nil, "\(name)")
            #expect(error?.format == .procConnector && error?.reason.isEmpty == false, "\(name)")
        }
        // Alignment padding after the message is what netlink adds: accepted.
        let padded = patch(patch(CapturedConnector.exec, at: 0, UInt32(74)), at: 32, UInt16(38))
        #expect(decodeError { try decode(padded) } == nil)
    }
}
