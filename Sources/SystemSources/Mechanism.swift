import CSystemCalls
import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// A descriptor a mechanism wants the event thread to wait on, and for what
/// (`EPOLLIN`, `EPOLLPRI`…).
struct Descriptor: Equatable {
    let fd: Int32
    let events: UInt32
}

/// One kernel mechanism behind one system source (DESIGN.md §6).
///
/// `adjust` and `ready` run on the event thread only, so a mechanism's kernel
/// state needs no lock; `status` and `table` are read by FUSE threads and come from
/// state each mechanism keeps behind a lock of its own.
protocol Mechanism: AnyObject, Sendable {
    /// The source's name under `sources/`.
    var name: String { get }
    /// The type its records carry.
    var type: UInt32 { get }
    /// Why the mechanism cannot work here, or nil; tried once, at mount.
    func probe() -> String?
    /// Opens, re-subscribes or closes the kernel side for what the watchers now
    /// want (no watches: everything closed) and returns the descriptors to wait on.
    func adjust(to demand: SourceDemand, sink: RecordSink) -> [Descriptor]
    /// Reads everything `fd` has ready and posts what it means.
    func ready(_ fd: Int32, events: UInt32, sink: RecordSink)
    /// Work a wake-up leaves for after its records have gone out (the sink is
    /// flushed before); runs once per wake-up in which `ready` ran.
    func settle(sink: RecordSink)
    /// The `status` file: `key value` lines.
    var status: String { get }
    /// Whether the source has a side file naming what its records refer to.
    var hasTable: Bool { get }
    /// The side file's text; nil when the source has none.
    var table: String? { get }
}

extension Mechanism {
    func settle(sink: RecordSink) {}
}

/// Counts every mechanism keeps for its `status` file.
struct MechanismCounters {
    /// Kernel messages or events read.
    var events: UInt64 = 0
    /// Records posted.
    var records: UInt64 = 0
    /// Times the kernel dropped events before they were read (each a loss record).
    var overflows: UInt64 = 0
    /// Times the state was read again after a loss.
    var resyncs: UInt64 = 0
    /// Messages refused: not from the kernel, or not decodable.
    var ignored: UInt64 = 0
    /// Whether the kernel side is open (some queue watches).
    var open = false
    /// The last error a kernel call gave, if any.
    var lastError: String?
    /// Lines of the mechanism's own, after the common ones.
    var details: [(String, String)] = []

    /// The `status` text.
    func text(mechanism: String) -> String {
        var lines = [("mechanism", mechanism), ("state", open ? "watching" : "idle"),
                     ("events", "\(events)"), ("records", "\(records)"), ("lost", "\(overflows)"),
                     ("resyncs", "\(resyncs)"), ("ignored", "\(ignored)")] + details
        if let lastError { lines.append(("error", lastError)) }
        return lines.map { "\($0.0) \($0.1)\n" }.joined()
    }
}

/// Collects the records one wake-up of a mechanism makes and posts them together:
/// one engine call per batch into a buffer made once, so a record costs no
/// allocation. Used on the event thread only.
final class RecordSink {
    let engine: Engine
    let source: SourceID
    private let deliver: @Sendable (Wakeups) -> Void
    private let buffer: UnsafeMutableRawBufferPointer
    private var used = 0, count = 0
    /// Records posted through this sink, for `status`.
    private(set) var posted: UInt64 = 0

    init(engine: Engine, source: SourceID, deliver: @escaping @Sendable (Wakeups) -> Void) {
        self.engine = engine
        self.source = source
        self.deliver = deliver
        buffer = .allocate(byteCount: 64 * 1024, alignment: 8)
    }

    deinit { buffer.deallocate() }

    /// Adds one record of at most `length` bytes, written by `encode` (which returns
    /// the bytes it wrote).
    func append(maxLength length: Int, _ encode: (UnsafeMutableRawBufferPointer) -> Int) {
        if used + length > buffer.count { flush() }
        used += encode(UnsafeMutableRawBufferPointer(rebasing: buffer[used..<(used + length)]))
        count += 1
    }

    /// Posts what was collected.
    func flush() {
        guard count > 0 else { return }
        let wakeups = engine.postSystem(UnsafeRawBufferPointer(rebasing: buffer[..<used]), count: count, to: source)
        posted += UInt64(count)
        used = 0
        count = 0
        deliver(wakeups)
    }

    /// The kernel lost events: what was collected goes first, then every watching
    /// queue gets a loss record.
    func loss() {
        flush()
        deliver(engine.reportLoss(on: source))
    }
}

/// Reads every datagram a netlink socket holds into `buffer` and hands each one the
/// kernel sent (port 0: any process may send to a multicast group) to `handle`,
/// which posts what it means and says whether it could decode it; then, for one it
/// could, to `keep`, once the first event of the wake-up has gone out (what is kept
/// for a side file is not copied before the reply). ENOBUFS means the socket's queue
/// overflowed: events are gone, nothing can tell which, so every watcher gets a loss
/// record. The counts go into `counters`.
func drainNetlink(_ fd: Int32, buffer: inout [UInt8], sink: RecordSink, counters: borrowing Locked<MechanismCounters>,
                  keep: ((UnsafeRawBufferPointer) -> Void)? = nil, _ handle: (UnsafeRawBufferPointer) -> Bool) {
    var read: UInt64 = 0, ignored: UInt64 = 0, lost: UInt64 = 0
    while true {
        var sender: UInt32 = 0
        let n = buffer.withUnsafeMutableBytes { wq_netlink_receive(fd, $0.baseAddress, $0.count, &sender) }
        if n < 0 {
            guard errno == ENOBUFS else { break }
            lost += 1
            sink.loss()
            continue
        }
        // A datagram cut short by the buffer (MSG_TRUNC gives its whole length) is
        // refused like a foreign one.
        guard sender == 0, n <= buffer.count else {
            ignored += 1
            continue
        }
        read += 1
        let handled = buffer.withUnsafeBytes { handle(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
        if !handled { ignored += 1 }
        // The first event of a wake-up goes out before the next receive; a burst
        // behind it is posted in batches.
        if read == 1 { sink.flush() }
        if handled, let keep { buffer.withUnsafeBytes { keep(UnsafeRawBufferPointer(rebasing: $0[..<n])) } }
    }
    let posted = sink.posted
    counters.withLock {
        $0.events += read
        $0.ignored += ignored
        $0.overflows += lost
        $0.records = posted
    }
}

/// The whole of a file (a /proc file, whose size stat does not tell), or nil.
func readWholeFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var text: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16 * 1024)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return n == 0 ? text : nil }
        text += chunk.prefix(n)
    }
}

/// `strerror`-style text for an errno, with its name when the core knows it.
func callFailed(_ call: String, errno code: Int32) -> String {
    "\(call): \(String(cString: strerror(code))) (\(WQError.errnoName(code)))"
}
