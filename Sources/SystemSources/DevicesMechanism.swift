import CSystemCalls
import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// `sources/devices`: kernel uevents (`NETLINK_KOBJECT_UEVENT`, group 1), which any
/// user may read. Only datagrams from port 0, the kernel, are trusted: any process
/// may send to the group. The side file keeps the full properties of recent events,
/// since a record has room only for the action, numbers, subsystem and devpath.
final class DevicesMechanism: Mechanism, @unchecked Sendable {
    let name = "devices"
    let type = SystemNotificationType.device
    private let receiveBuffer: Int
    /// Event-thread state.
    private var socket: Int32 = -1
    private var buffer = [UInt8](repeating: 0, count: 8192)
    private let counters = Locked(MechanismCounters())
    /// The datagrams of the most recent events, oldest first, for the side file:
    /// decoded in full only when it is read.
    private let recent = Locked<[[UInt8]]>([])

    /// How many events the side file keeps.
    static let kept = 64
    private static let netlinkKobjectUevent: Int32 = 15

    init(receiveBuffer: Int) { self.receiveBuffer = receiveBuffer }

    func probe() -> String? {
        let fd = wq_netlink_open(Self.netlinkKobjectUevent, 1, 0)
        guard fd >= 0 else { return callFailed("socket(NETLINK_KOBJECT_UEVENT)", errno: errno) }
        close(fd)
        return nil
    }

    func adjust(to demand: SourceDemand, sink: RecordSink) -> [Descriptor] {
        if demand.watches == 0 {
            if socket >= 0 { close(socket) }
            socket = -1
            counters.withLock { $0.open = false }
            return []
        }
        if socket < 0 {
            socket = wq_netlink_open(Self.netlinkKobjectUevent, 1, Int32(clamping: receiveBuffer))
            let reason = socket < 0 ? callFailed("socket(NETLINK_KOBJECT_UEVENT)", errno: errno) : nil
            counters.withLock { $0.open = reason == nil; $0.lastError = reason ?? $0.lastError }
        }
        return socket >= 0 ? [Descriptor(fd: socket, events: EPOLLIN.rawValue)] : []
    }

    func ready(_ fd: Int32, events: UInt32, sink: RecordSink) {
        var seen: [[UInt8]] = []
        drainNetlink(fd, buffer: &buffer, sink: sink, counters: counters, keep: { seen.append(Array($0)) }) { datagram in
            guard let fields = try? Uevent.scan(datagram) else { return false }
            sink.append(maxLength: DeviceNotification.maxLength) { fields.encode(from: datagram, into: $0) }
            return true
        }
        guard !seen.isEmpty else { return }
        recent.withLock { list in
            list.append(contentsOf: seen.suffix(Self.kept))
            if list.count > Self.kept { list.removeFirst(list.count - Self.kept) }
        }
    }

    var hasTable: Bool { true }

    var status: String { counters.withLock { $0 }.text(mechanism: "uevent") }

    /// Per recent event, oldest first: `seqnum N ACTION DEVPATH (SUBSYSTEM)`, then
    /// each property as `  KEY=VALUE`, then a blank line.
    var table: String? {
        recent.withLock { $0 }.compactMap { try? Uevent(decoding: $0) }.map { event in
            let header = "seqnum \(event.seqnum) \(event.action.word) \(text(event.devpath)) (\(text(event.subsystem)))\n"
            return header + event.properties.map { "  \(text($0.key))=\(text($0.value))\n" }.joined() + "\n"
        }.joined()
    }

    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
}
