/// Decoding the proc connector's datagrams (`NETLINK_CONNECTOR`, group `CN_IDX_PROC`)
/// into PROCESS records, and building the message that subscribes to them.
///
/// A datagram holds one netlink message, laid out as in linux/netlink.h,
/// linux/connector.h and linux/cn_proc.h (checked against the 6.1 headers and the
/// bytes a 6.18 kernel sends; proc_event starts at offset 36, so nothing is aligned):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 16 | `struct nlmsghdr`: u32 len, u16 type (`NLMSG_DONE`), u16 flags, u32 seq, u32 pid |
/// | 16 | 20 | `struct cn_msg`: u32 idx (1), u32 val (1), u32 seq, u32 ack, u16 len (40), u16 flags |
/// | 36 | 4 | `proc_event.what` |
/// | 40 | 4 | `proc_event.cpu` |
/// | 44 | 8 | `proc_event.timestamp_ns` (CLOCK_MONOTONIC) |
/// | 52 | 24 | `proc_event.event_data`, the union below |
///
/// The union, as u32 words: fork {parent_pid, parent_tgid, child_pid, child_tgid};
/// exec and sid {pid, tgid}; uid and gid {pid, tgid, r, e}; ptrace {pid, tgid,
/// tracer_pid, tracer_tgid}; comm {pid, tgid, char comm[16]}; coredump {pid, tgid,
/// parent_pid, parent_tgid}; exit {pid, tgid, exit_code, exit_signal, parent_pid,
/// parent_tgid}; for `what` = NONE (the reply to a listen message), ack {err}.
/// Everything but `PROC_EVENT_NONZERO_EXIT` and `struct proc_input` (both 6.6) is in
/// the 6.1 headers. Pids are the initial pid namespace's.
public enum ProcConnector {
    /// `CN_IDX_PROC`, `CN_VAL_PROC`: the connector id of process events; the index
    /// is also the netlink multicast group to bind to.
    public static let index: UInt32 = 1
    public static let value: UInt32 = 1
    /// `NLMSG_DONE`: the type the connector gives its messages.
    public static let netlinkDone: UInt16 = 3
    public static let netlinkHeaderLength = 16
    public static let connectorHeaderLength = 20
    /// `struct proc_event` without its union, and with the largest member of it.
    public static let eventHeaderLength = 16
    public static let eventLength = 40
    /// Where `proc_event` starts in a datagram.
    public static let eventOffset = netlinkHeaderLength + connectorHeaderLength

    /// `enum what` (also the bits of the 6.6+ listen filter).
    public enum What {
        public static let none: UInt32 = 0
        public static let fork: UInt32 = 0x0000_0001
        public static let exec: UInt32 = 0x0000_0002
        public static let uid: UInt32 = 0x0000_0004
        public static let gid: UInt32 = 0x0000_0040
        public static let sid: UInt32 = 0x0000_0080
        public static let ptrace: UInt32 = 0x0000_0100
        public static let comm: UInt32 = 0x0000_0200
        /// Filter-only (6.6+): admits exits with a non-zero status. No event has it.
        public static let nonzeroExit: UInt32 = 0x2000_0000
        public static let coredump: UInt32 = 0x4000_0000
        public static let exit: UInt32 = 0x8000_0000
    }

    /// `enum proc_cn_mcast_op`.
    public enum MulticastOp: UInt32, Sendable {
        case listen = 1, ignore = 2
    }

    /// A decoded datagram.
    public enum Message: Equatable, Hashable, Sendable {
        /// The kernel's answer to a listen or ignore message (`what` = NONE):
        /// `error` is 0 or an errno; `sequence`/`acknowledge` echo the request's.
        case acknowledgement(error: UInt32, sequence: UInt32, acknowledge: UInt32)
        /// A process event, as the record it becomes, and the CPU it was seen on.
        case event(ProcessNotification, cpu: UInt32)
    }

    /// Decodes one datagram. The kernel sends one netlink message per datagram;
    /// bytes after it (beyond the 4-byte netlink alignment) are refused.
    public static func decode(_ datagram: UnsafeRawBufferPointer) throws(DecodeError) -> Message {
        let reader = ByteReader(datagram, .procConnector)
        try reader.need(netlinkHeaderLength, at: 0, for: "netlink header")
        let netlinkLength = Int(try reader.u32(at: 0))
        let netlinkType = try reader.u16(at: 4)
        guard netlinkLength >= netlinkHeaderLength, netlinkLength <= reader.count else {
            throw reader.error(at: 0, "nlmsg_len \(netlinkLength) outside \(netlinkHeaderLength)...\(reader.count)")
        }
        guard reader.count <= ((netlinkLength + 3) & ~3) else {
            throw reader.error(at: netlinkLength, "\(reader.count - netlinkLength) bytes after the netlink message")
        }
        guard netlinkType == netlinkDone else {
            throw reader.error(at: 4, "netlink message type \(netlinkType), expected NLMSG_DONE (3)")
        }
        let message = try reader.slice(0, netlinkLength, for: "netlink message")
        let body = ByteReader(message, .procConnector)

        try body.need(connectorHeaderLength, at: netlinkHeaderLength, for: "connector header")
        let idx = try body.u32(at: 16), val = try body.u32(at: 20)
        let sequence = try body.u32(at: 24), acknowledge = try body.u32(at: 28)
        let dataLength = Int(try body.u16(at: 32))
        guard idx == index, val == value else {
            throw body.error(at: 16, "connector id \(idx):\(val), expected \(index):\(value)")
        }
        guard dataLength <= body.count - eventOffset else {
            throw body.error(at: 32, "connector len \(dataLength) runs past the message (\(body.count - eventOffset) left)")
        }
        let event = ByteReader(try body.slice(eventOffset, dataLength, for: "proc event"), .procConnector)
        return try decodeEvent(event, sequence: sequence, acknowledge: acknowledge)
    }

    /// Decodes `struct proc_event` (offsets in errors are within it).
    static func decodeEvent(_ event: ByteReader, sequence: UInt32, acknowledge: UInt32) throws(DecodeError) -> Message {
        try event.need(eventHeaderLength, at: 0, for: "proc_event header")
        let what = try event.u32(at: 0)
        let cpu = try event.u32(at: 4)
        let timestamp = try event.u64(at: 8)
        // Union words: word(n) is the nth u32 of event_data.
        func word(_ n: Int) throws(DecodeError) -> UInt32 { try event.u32(at: eventHeaderLength + 4 * n) }
        func record(_ pid: UInt32, _ tgid: UInt32, _ kind: ProcessNotification.Event) -> Message {
            .event(ProcessNotification(timestampNS: timestamp, pid: pid, tgid: tgid, event: kind), cpu: cpu)
        }
        switch what {
        case What.none:
            return .acknowledgement(error: try word(0), sequence: sequence, acknowledge: acknowledge)
        case What.fork:
            // The record is about the child; the parent goes in the extra fields.
            return record(try word(2), try word(3), .fork(parentPID: try word(0), parentTGID: try word(1)))
        case What.exec:
            return record(try word(0), try word(1), .exec)
        case What.uid:
            return record(try word(0), try word(1), .uid(real: try word(2), effective: try word(3)))
        case What.gid:
            return record(try word(0), try word(1), .gid(real: try word(2), effective: try word(3)))
        case What.sid:
            return record(try word(0), try word(1), .sid)
        case What.ptrace:
            return record(try word(0), try word(1), .ptrace(tracerPID: try word(2), tracerTGID: try word(3)))
        case What.comm:
            let name = try event.slice(eventHeaderLength + 8, ProcessComm.width, for: "comm")
            return record(try word(0), try word(1), .comm(ProcessComm(name)))
        case What.coredump:
            return record(try word(0), try word(1), .coredump(parentPID: try word(2), parentTGID: try word(3)))
        case What.exit:
            // exit_code is the raw wait status (task->exit_code). The kernel's
            // exit_signal is the signal the parent is sent (SIGCHLD, or -1 for a
            // thread), not how the task died, so the record derives both from the
            // status instead.
            let exit = ProcessExit(waitStatus: try word(2), parentPID: try word(4), parentTGID: try word(5))
            _ = try word(3)  // present, as the layout requires, but not carried
            return record(try word(0), try word(1), .exit(exit))
        default:
            throw event.error(at: 0, "unknown proc event 0x\(String(what, radix: 16))")
        }
    }

    // MARK: subscribing

    /// The listen filter (6.6+) that admits exactly `subtypes`. An empty set gives
    /// 0, which the kernel reads as "everything": with nothing to watch, send
    /// `ignore` (or do not listen) instead.
    public static func eventMask<S: Sequence>(for subtypes: S) -> UInt32 where S.Element == ProcessSubtype {
        subtypes.reduce(0) { mask, subtype in
            mask | {
                switch subtype {
                case .fork: What.fork
                case .exec: What.exec
                case .uid: What.uid
                case .gid: What.gid
                case .sid: What.sid
                case .ptrace: What.ptrace
                case .comm: What.comm
                case .coredump: What.coredump
                case .exit: What.exit
                }
            }()
        }
    }

    /// The length of a subscription message.
    public static func subscriptionLength(filtered: Bool) -> Int {
        netlinkHeaderLength + connectorHeaderLength + (filtered ? 8 : 4)
    }

    /// Writes a listen or ignore message at the start of `buffer` and returns its
    /// length (44 bytes; 40 when `eventMask` is nil):
    ///
    /// | offset | size | field |
    /// |---|---|---|
    /// | 0 | 16 | `nlmsghdr`: len, type `NLMSG_DONE`, flags 0, `sequence`, `portID` |
    /// | 16 | 20 | `cn_msg`: idx 1, val 1, `sequence`, ack 0, len (8 or 4), flags 0 |
    /// | 36 | 4 | `proc_input.mcast_op` (1 listen, 2 ignore) |
    /// | 40 | 4 | `proc_input.event_type`: the filter (6.6+) |
    ///
    /// With `eventMask` nil the message carries only the op, as kernels before 6.6
    /// require: they drop a message whose data is not exactly 4 bytes.
    public static func subscription(_ op: MulticastOp, eventMask: UInt32?, sequence: UInt32 = 0, portID: UInt32 = 0,
                                    into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let length = subscriptionLength(filtered: eventMask != nil)
        precondition(buffer.count >= length, "subscription buffer of \(buffer.count) bytes, \(length) needed")
        let writer = RecordWriter(buffer, length: length)
        writer.u32(UInt32(length), at: 0)
        writer.u32(UInt32(netlinkDone), at: 4)  // type, then flags 0
        writer.u32(sequence, at: 8)
        writer.u32(portID, at: 12)
        writer.u32(index, at: 16)
        writer.u32(value, at: 20)
        writer.u32(sequence, at: 24)
        writer.u32(0, at: 28)
        writer.u32(UInt32(length - eventOffset), at: 32)  // len, then flags 0
        writer.u32(op.rawValue, at: 36)
        if let eventMask { writer.u32(eventMask, at: 40) }
        return length
    }

    /// The subscription message's bytes.
    public static func subscription(_ op: MulticastOp, eventMask: UInt32?, sequence: UInt32 = 0,
                                    portID: UInt32 = 0) -> [UInt8] {
        encodedBytes { subscription(op, eventMask: eventMask, sequence: sequence, portID: portID, into: $0) }
    }
}
