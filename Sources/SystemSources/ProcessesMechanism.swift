import CSystemCalls
import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// `sources/processes`: the proc connector (`NETLINK_CONNECTOR`, group
/// `CN_IDX_PROC`). Since Linux 6.6 any user may listen, and the listen message
/// carries a filter, so the kernel sends only the kinds some watching queue's filter
/// admits: a queue that keeps only exits does not make the server receive forks.
final class ProcessesMechanism: Mechanism, @unchecked Sendable {
    let name = "processes"
    let type = SystemNotificationType.process
    private let receiveBuffer: Int
    /// Event-thread state.
    private var socket: Int32 = -1
    private var mask: UInt32 = 0
    private var buffer = [UInt8](repeating: 0, count: 4096)
    private let counters = Locked(MechanismCounters())

    /// NETLINK_CONNECTOR and CN_IDX_PROC.
    private static let netlinkConnector: Int32 = 11

    init(receiveBuffer: Int) { self.receiveBuffer = receiveBuffer }

    func probe() -> String? {
        let fd = wq_netlink_open(Self.netlinkConnector, ProcConnector.index, 0)
        guard fd >= 0 else { return callFailed("socket(NETLINK_CONNECTOR)", errno: errno) }
        defer { close(fd) }
        // Inside a new network namespace the connector refuses with ECONNREFUSED.
        guard send(fd, .listen, mask: nil) else { return callFailed("proc connector listen", errno: errno) }
        _ = send(fd, .ignore, mask: nil)
        return nil
    }

    func adjust(to demand: SourceDemand, sink: RecordSink) -> [Descriptor] {
        let subtypes = ProcessSubtype.allCases.filter { demand.subtypes.contains($0.rawValue) }
        let wanted = demand.watches > 0 ? ProcConnector.eventMask(for: subtypes) : 0
        guard wanted != mask || (wanted != 0) != (socket >= 0) else { return socket >= 0 ? [Descriptor(fd: socket, events: EPOLLIN.rawValue)] : [] }
        closeSocket()
        mask = wanted
        // The kinds the kernel was asked for, as proc_event `what` bits.
        counters.withLock { $0.details = [("kinds", "0x" + String(wanted, radix: 16))] }
        guard wanted != 0 else {
            counters.withLock { $0.open = false }
            return []
        }
        let fd = wq_netlink_open(Self.netlinkConnector, ProcConnector.index, Int32(clamping: receiveBuffer))
        guard fd >= 0, send(fd, .listen, mask: wanted) else {
            let reason = callFailed("proc connector", errno: errno)
            if fd >= 0 { close(fd) }
            counters.withLock { $0.lastError = reason; $0.open = false }
            return []
        }
        socket = fd
        counters.withLock { $0.open = true }
        return [Descriptor(fd: fd, events: EPOLLIN.rawValue)]
    }

    func ready(_ fd: Int32, events: UInt32, sink: RecordSink) {
        drainNetlink(fd, buffer: &buffer, sink: sink, counters: counters) { datagram in
            switch try? ProcConnector.decode(datagram) {
            case .event(let notification, _)?:
                sink.append(maxLength: notification.length) { notification.encode(into: $0) }
                return true
            case .acknowledgement?: return true
            case nil: return false
            }
        }
    }

    var hasTable: Bool { false }

    var status: String { counters.withLock { $0 }.text(mechanism: "proc-connector") }

    var table: String? { nil }

    private func closeSocket() {
        guard socket >= 0 else { return }
        // IGNORE first: the kernel counts listeners, and a socket closed without it
        // stays counted.
        _ = send(socket, .ignore, mask: mask)
        close(socket)
        socket = -1
    }

    private func send(_ fd: Int32, _ op: ProcConnector.MulticastOp, mask: UInt32?) -> Bool {
        var message = [UInt8](repeating: 0, count: ProcConnector.subscriptionLength(filtered: true))
        let length = message.withUnsafeMutableBytes { ProcConnector.subscription(op, eventMask: mask, into: $0) }
        return message.withUnsafeBytes { wq_netlink_send_to_kernel(fd, $0.baseAddress, length) } == length
    }
}
