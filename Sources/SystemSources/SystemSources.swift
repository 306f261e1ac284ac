import CSystemCalls
import Dispatch
import Synchronization
import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// The system sources of one mount (DESIGN.md §6): `sources/mounts`,
/// `sources/processes` and `sources/devices`, each fed by a kernel mechanism.
///
/// At mount each chosen mechanism is tried once; one that works gets its source,
/// one that does not is left out and the reason kept for the mount's README and
/// the log. The mechanisms run on one event thread of their own, which sleeps in
/// `epoll_wait` with no timeout: a mechanism is opened when the first queue watches
/// its source and closed when the last watch goes, so an idle mount costs nothing.
public final class SystemSources: @unchecked Sendable {
    /// What `-o sources=` and `-o source_buffer=` say.
    public struct Configuration: Sendable, Equatable {
        /// The sources to start, of ``SystemSources/names``, and `keys` for the
        /// observer of key changes behind `keys/SERIAL`.
        public var enabled: Set<String>
        /// The receive buffer of the netlink sockets in bytes (0: the kernel's
        /// default): small values make overflow easy to provoke in tests.
        public var receiveBuffer: Int
        /// The event thread's SCHED_FIFO priority, 1-99; 0 (the default) keeps normal
        /// scheduling. Real-time cuts the processes source's latency while forks
        /// and exits crowd the CPUs, but the reader a reply wakes is then put on
        /// another, often idle, CPU, which costs the quiet case more (BENCHMARKS.md).
        public var eventPriority: Int32

        public init(enabled: Set<String> = Set(SystemSources.names + ["keys"]), receiveBuffer: Int = 0,
                    eventPriority: Int32 = 0) {
            self.enabled = enabled
            self.receiveBuffer = receiveBuffer
            self.eventPriority = eventPriority
        }
    }

    /// The reserved names, in the order their sources are made.
    public static let names = ["mounts", "processes", "devices"]

    /// One line per known source for the mount's README, running or why not, and
    /// how the event thread is scheduled.
    public var report: [String] { sourceReport + [scheduling.withLock { $0 }] }
    private let sourceReport: [String]
    private let eventPriority: Int32
    private let scheduling = Locked("event thread: not running (no system source)")

    /// The observer of key changes, when asked for.
    private let keys: KeysMechanism?

    private let engine: Engine
    /// The sources that started, with their mechanisms (fixed after init).
    private let started: [(source: SourceID, mechanism: any Mechanism)]
    private let epoll: Int32
    private let wake: Int32
    /// Work for the event thread from other threads.
    private let pending = Locked<Pending>(Pending())

    /// Work asked of the event thread.
    private struct Pending {
        var sources: Set<SourceID> = []
        var keys = false
        var stop = false
    }

    /// How long a new watch waits for its mechanism to open.
    private static let openWait = 5.0
    private let thread = Locked<pthread_t?>(nil)
    /// Whether some key is watched, read without a lock on every queue read and
    /// stat, so a mount that watches no key pays nothing for key synchronization.
    /// Written under `keyGate`, each time from the engine's state then, so the last
    /// writer leaves the truth.
    private let keysWatched = Atomic<Bool>(false)
    private let keyGate = Locked(())
    /// Callers of `synchronize` waiting for the event thread: signalled once the
    /// wake-up that took them in is over, its deferred work (`settle`) included.
    private let waiters = Locked<[DispatchSemaphore]>([])

    /// Probes the configured mechanisms and makes the sources of those that work.
    public init(engine: Engine, configuration: Configuration) {
        self.engine = engine
        var report: [String] = []
        var started: [(SourceID, any Mechanism)] = []
        let all: [any Mechanism] = [
            MountsMechanism(), ProcessesMechanism(receiveBuffer: configuration.receiveBuffer),
            DevicesMechanism(receiveBuffer: configuration.receiveBuffer),
        ]
        for mechanism in all {
            guard configuration.enabled.contains(mechanism.name) else {
                report.append("\(mechanism.name): off (-o sources=)")
                continue
            }
            if let reason = mechanism.probe() {
                report.append("\(mechanism.name): absent: \(reason)")
                continue
            }
            do {
                // The source's object id is its type: one source per type, and no
                // clash with users' ids, which count up from 1.
                let source = try engine.createSystemSource(named: mechanism.name, type: mechanism.type,
                                                           objectID: UInt64(mechanism.type) << 32)
                started.append((source, mechanism))
                report.append("\(mechanism.name): ready, type \(mechanism.type); opened while watched (its status says how)")
            } catch {
                report.append("\(mechanism.name): absent: \(error.reason)")
            }
        }
        if configuration.enabled.contains("keys") {
            let keys = KeysMechanism(engine: engine)
            report.append("keys: " + keys.summary)
            self.keys = keys
        } else {
            report.append("keys: off (-o sources=)")
            keys = nil
        }
        sourceReport = report
        eventPriority = configuration.eventPriority
        self.started = started
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        wake = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
    }

    deinit {
        close(epoll)
        close(wake)
    }

    /// Starts the event thread; `deliver` answers what the posts made due (parked
    /// reads, polls). Nothing to do when no source started.
    public func start(deliver: @escaping @Sendable (Wakeups) -> Void) throws(WQError) {
        guard !started.isEmpty || keys != nil else { return }
        guard epoll >= 0, wake >= 0 else { throw WQError(errno, callFailed("epoll_create1/eventfd", errno: errno)) }
        guard register(wake, events: EPOLLIN.rawValue, owner: Owner.wake) else { throw WQError(errno, callFailed("epoll_ctl", errno: errno)) }
        engine.onDemandChange { [weak self] source in self?.demandChanged(source) }
        let context = Unmanaged.passRetained(LoopContext(sources: self, deliver: deliver)).toOpaque()
        var handle = pthread_t()
        let rc = pthread_create(&handle, nil, { raw in
            guard let raw else { return nil }
            let context = Unmanaged<LoopContext>.fromOpaque(raw).takeRetainedValue()
            // Named, so ps -L, top -H and perf sched tell it from libfuse's workers.
            wq_name_thread("wqfs-events")
            context.sources.run(deliver: context.deliver)
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<LoopContext>.fromOpaque(context).release()
            throw WQError(rc, callFailed("pthread_create", errno: rc))
        }
        thread.withLock { $0 = handle }
        schedule(handle)
    }

    /// Gives the event thread its real-time priority, or says why it keeps normal
    /// scheduling (the option, or EPERM without CAP_SYS_NICE).
    private func schedule(_ handle: pthread_t) {
        var line = "event thread: normal scheduling (event_priority=0)"
        if eventPriority > 0 {
            var parameters = sched_param()
            parameters.sched_priority = eventPriority
            let rc = pthread_setschedparam(handle, SCHED_FIFO, &parameters)
            line = rc == 0 ? "event thread: SCHED_FIFO priority \(eventPriority)"
                : "event thread: normal scheduling (" + callFailed("SCHED_FIFO", errno: rc) + ")"
        }
        scheduling.withLock { $0 = line }
    }

    /// Stops the event thread and closes every mechanism; for unmount.
    public func stop() {
        pending.withLock { $0.stop = true }
        signal()
        if let handle = thread.withLock({ value -> pthread_t? in defer { value = nil }; return value }) {
            pthread_join(handle, nil)
        }
    }

    /// The `status` text of a system source; nil for any other source.
    public func status(of source: SourceID) -> String? {
        mechanism(of: source)?.status
    }

    /// The `status` of `keys/SERIAL`: what the server knows of the key, then how
    /// key changes are observed.
    public func keyStatus(serial: Int32) -> String {
        var lines = ["serial \(serial)"]
        switch KeyAccess.describe(serial) {
        case .success(let key):
            lines += ["type \(key.type)", "description \(key.description)", "uid \(key.uid)", "gid \(key.gid)",
                      "permissions \(String(key.permissions, radix: 16))"]
        case .failure(let error):
            lines.append("error \(error.reason)")
        }
        return lines.map { $0 + "\n" }.joined() + (keys?.status ?? "mechanism none\n")
    }

    /// Whether a system source has a side file.
    public func hasTable(_ source: SourceID) -> Bool {
        mechanism(of: source)?.hasTable ?? false
    }

    /// The side file of a system source; nil when it has none.
    public func table(of source: SourceID) -> String? {
        guard let mechanism = mechanism(of: source) else { return nil }
        if (engine.demand(of: source)?.watches ?? 0) > 0 { synchronize(timeout: 2) }
        return mechanism.table
    }

    private func mechanism(of source: SourceID) -> (any Mechanism)? {
        started.first { $0.source == source }?.mechanism
    }

    // MARK: the event thread

    private final class LoopContext {
        let sources: SystemSources
        let deliver: @Sendable (Wakeups) -> Void
        init(sources: SystemSources, deliver: @escaping @Sendable (Wakeups) -> Void) {
            self.sources = sources
            self.deliver = deliver
        }
    }

    /// From any thread: the source's demand may have changed. Returns once the event
    /// thread has opened (or closed) what the change asks for, as the kernel's
    /// KEYCTL_WATCH_KEY returns with the watch in force: an event that follows a
    /// new watch is never missed while a mechanism is still being opened.
    private func demandChanged(_ source: SourceID) {
        if started.contains(where: { $0.source == source }) {
            pending.withLock { _ = $0.sources.insert(source) }
        } else if keys != nil {
            // A key source's watches changed, or it went with its key (then, on the
            // event thread itself, there is nothing to wait for).
            keyGate.withLock { _ in keysWatched.store(!engine.watchedKeys().isEmpty, ordering: .releasing) }
            guard engine.keySerial(of: source) != nil else { return }
            pending.withLock { $0.keys = true }
        } else {
            return
        }
        // The event thread takes its waiters before the pending work, so the wake-up
        // that answers this wait has carried out the request made above.
        synchronize(timeout: Self.openWait)
    }

    /// From any thread: returns once the event thread has opened the key observer
    /// for the keys watched now and taken in every key change whose system call has
    /// returned, so their records are queued. The kernel posts a key notification
    /// before the call returns; a watch or a read made after a key change must find
    /// wqfs as far along (a read right after `keyctl update` gets its record, a key
    /// changed right after a watch is seen: a new watch waits in `demandChanged`).
    /// A no-op while `queue` watches no key, and bounded by `timeout` so a stuck
    /// event thread cannot hold a request for ever.
    public func synchronizeKeys(for queue: QueueID, timeout: Double = 2) {
        guard anyKeyWatched, engine.watchesKeys(queue) else { return }
        synchronize(timeout: timeout)
    }

    /// From any thread, before a key watch is added: returns once every key change
    /// whose system call has returned is taken in under the watches of now. The
    /// kernel tells a new watch only of later changes; without this, a change still
    /// in the observer's ring (a key's instantiation by the `keyctl add` just before)
    /// would be delivered to the watch made after it. A no-op while no key is watched
    /// (the observer is closed, nothing is pending).
    public func synchronizeKeysBeforeWatch(timeout: Double = 2) {
        guard anyKeyWatched else { return }
        synchronize(timeout: timeout)
    }

    /// Whether the key observer runs for some watch: one atomic load, no lock.
    private var anyKeyWatched: Bool { keys != nil && keysWatched.load(ordering: .acquiring) }

    /// Returns once the event thread has finished what it was doing, so a side
    /// file read after a record shows what the record names.
    private func synchronize(timeout: Double) {
        guard thread.withLock({ $0 != nil }) else { return }
        let done = DispatchSemaphore(value: 0)
        waiters.withLock { $0.append(done) }
        signal()
        _ = done.wait(timeout: .now() + timeout)
    }

    private func signal() {
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
    }

    /// Who an epoll registration belongs to, carried in its `data` beside the
    /// descriptor, so a wake-up finds its mechanism without a lookup.
    private enum Owner {
        static let wake: Int32 = -2
        static let keys: Int32 = -1
        // Otherwise the mechanism's index in `started`.

        static func data(fd: Int32, owner: Int32) -> UInt64 {
            UInt64(UInt32(bitPattern: fd)) | UInt64(UInt32(bitPattern: owner)) << 32
        }
        static func split(_ data: UInt64) -> (fd: Int32, owner: Int32) {
            (Int32(bitPattern: UInt32(truncatingIfNeeded: data)), Int32(bitPattern: UInt32(truncatingIfNeeded: data >> 32)))
        }
    }

    private func register(_ fd: Int32, events: UInt32, owner: Int32) -> Bool {
        var registration = epoll_event()
        registration.events = events
        registration.data.u64 = Owner.data(fd: fd, owner: owner)
        return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &registration) == 0
    }

    /// Stops waiting on a mechanism's old descriptors and waits on its new ones.
    private func reregister(old: [Descriptor], new: [Descriptor], owner: Int32) {
        for descriptor in old { _ = epoll_ctl(epoll, EPOLL_CTL_DEL, descriptor.fd, nil) }
        for descriptor in new { _ = register(descriptor.fd, events: descriptor.events, owner: owner) }
    }

    private func run(deliver: @escaping @Sendable (Wakeups) -> Void) {
        let sinks = started.map { RecordSink(engine: engine, source: $0.source, deliver: deliver) }
        var waiting: [[Descriptor]] = Array(repeating: [], count: started.count)
        // The keys mechanism's descriptors: not tied to one source.
        var keyDescriptors: [Descriptor] = []
        keys?.deliver = deliver
        var events = [epoll_event](repeating: epoll_event(), count: 32)
        // Per wake-up: the mechanisms that read something, and the synchronize callers.
        var woken = [Bool](repeating: false, count: started.count)
        var callers: [DispatchSemaphore] = []
        // Watches made before the thread started are demand too.
        pending.withLock { $0.sources.formUnion(started.map(\.source)); $0.keys = true }
        signal()
        while true {
            let n = epoll_wait(epoll, &events, Int32(events.count), -1)
            if n < 0 {
                if errno == EINTR { continue }
                break
            }
            for event in events.prefix(Int(n)) {
                let (fd, owner) = Owner.split(event.data.u64)
                if owner == Owner.wake {
                    var count: UInt64 = 0
                    _ = read(wake, &count, 8)
                    // Callers first: a watch change a caller waits for was made
                    // before it asked, so the pending work taken next includes it.
                    callers += waiters.withLock { list in
                        defer { list = [] }
                        return list
                    }
                    let work = pending.withLock { state -> Pending in
                        defer { state.sources = []; state.keys = false }
                        return state
                    }
                    if work.stop {
                        for (index, entry) in started.enumerated() {
                            _ = entry.mechanism.adjust(to: SourceDemand(watches: 0, subtypes: SubtypeSet()), sink: sinks[index])
                        }
                        _ = keys?.adjust(watched: 0)
                        callers.forEach { $0.signal() }
                        return
                    }
                    // Only on a change of watches: adjusting re-arms the comparing
                    // fallback's timer, which a steady stream of reads would otherwise
                    // keep pushing back.
                    if work.keys, let keys {
                        let now = keys.adjust(watched: engine.watchedKeys().count)
                        reregister(old: keyDescriptors, new: now, owner: Owner.keys)
                        keyDescriptors = now
                    }
                    for (index, entry) in started.enumerated() where work.sources.contains(entry.source) {
                        let demand = engine.demand(of: entry.source) ?? SourceDemand(watches: 0, subtypes: SubtypeSet())
                        let now = entry.mechanism.adjust(to: demand, sink: sinks[index])
                        reregister(old: waiting[index], new: now, owner: Int32(index))
                        waiting[index] = now
                    }
                    if !callers.isEmpty {
                        // A BPF event is in the ring before its system call returns:
                        // draining it now takes in every change made before the ask.
                        keys?.drain()
                    }
                } else if owner == Owner.keys {
                    // Still registered: a wake-up earlier in this batch may have
                    // closed it (and its number may be reused since).
                    if keyDescriptors.contains(where: { $0.fd == fd }) { keys?.ready(fd) }
                } else {
                    let index = Int(owner)
                    guard waiting[index].contains(where: { $0.fd == fd }) else { continue }
                    started[index].mechanism.ready(fd, events: event.events, sink: sinks[index])
                    sinks[index].flush()
                    woken[index] = true
                }
            }
            for index in woken.indices where woken[index] {
                started[index].mechanism.settle(sink: sinks[index])
                woken[index] = false
            }
            callers.forEach { $0.signal() }
            callers = []
        }
    }
}
