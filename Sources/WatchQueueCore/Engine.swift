#if canImport(Glibc)
import Glibc
#endif

import Synchronization

/// How a read that waited ends.
public enum ParkedReadResult: Equatable, Sendable {
    /// Whole records (and loss records) for the reader.
    case data([UInt8])
    /// The queue is gone, or the engine shut down: end of file.
    case endOfFile
    /// The read failed with this errno (ENOBUFS: the first record does not fit).
    case failure(Int32)
}

/// Replies and poll notifications that an operation made due, to be sent by the
/// caller after the engine's lock is released. Empty unless someone was waiting.
public struct Wakeups: Sendable {
    /// Parked reads to answer, in order.
    public var reads: [ParkedAnswer] = []
    /// Poll tokens to notify (and then release): their queue became ready or went away.
    public var polls: [UInt64] = []

    public init() {}

    public var isEmpty: Bool { reads.isEmpty && polls.isEmpty }
}

/// A parked read's answer: the token given when parking it, and what it gets.
public struct ParkedAnswer: Sendable {
    public var token: UInt64
    public var result: ParkedReadResult

    public init(token: UInt64, result: ParkedReadResult) {
        self.token = token
        self.result = result
    }
}

/// The outcome of a read that may wait.
public enum ReadAttempt: Equatable, Sendable {
    /// Records were ready.
    case data([UInt8])
    /// The queue is gone: end of file.
    case endOfFile
    /// Nothing ready and the read may not wait: EAGAIN.
    case wouldBlock
    /// The read is parked under its token; it is answered through `Wakeups`.
    case parked
    /// The read fails at once with this errno.
    case failure(Int32)
}

/// Poll bits as `<poll.h>` defines them.
public enum PollEvents {
    public static let readable: UInt32 = 0x001 | 0x040 // POLLIN | POLLRDNORM
    public static let hangUp: UInt32 = 0x010 // POLLHUP
}

/// What `NAME.status` shows.
public struct QueueStatus: Equatable, Sendable {
    public var size: Int
    public var queued: Int
    public var bytes: Int
    public var lossPending: Bool
    public var counters: QueueCounters
    public var watches: Int
    public var filters: Int
    public var readers: Int
    public var waiting: Int

    /// `key value` lines.
    public var text: String {
        """
        size \(size)
        queued \(queued)
        bytes \(bytes)
        lost \(counters.lost)
        posted \(counters.posted)
        filtered \(counters.filtered)
        read \(counters.read)
        loss_pending \(lossPending ? 1 : 0)
        watches \(watches)
        filters \(filters)
        readers \(readers)
        waiting \(waiting)

        """
    }
}

/// The whole notification machine: queues, sources, watches, filters and posting,
/// with the kernel's rules and no I/O. Every method takes one lock, so the engine
/// may be called from any number of threads; nothing it returns needs the lock.
public final class Engine: Sendable {
    /// The limits the engine was made with.
    public let limits: Limits
    let state: Locked<State>
    private let clock: @Sendable () -> Timestamp

    /// Names no user may give a source: those of the system sources (DESIGN.md §6),
    /// reserved whether or not their mechanism started.
    public let reservedSourceNames: Set<String>
    /// Told, outside the lock, of each system source whose watches, or the filters of
    /// whose watching queues, changed.
    let demandObserver = Locked<(@Sendable (SourceID) -> Void)?>(nil)

    public init(limits: Limits = Limits(), reservedSourceNames: Set<String> = [],
                clock: @escaping @Sendable () -> Timestamp = Timestamp.now) {
        self.limits = limits
        self.reservedSourceNames = reservedSourceNames
        self.clock = clock
        state = Locked(State())
    }

    deinit {
        // A watch is a cycle (the queue lists its sources, the source its queues);
        // break them all, or an engine dropped with watches in place leaks them.
        state.withLock { state in
            for queue in state.queuesByID.values { queue.watched = [] }
            for source in state.sourcesByID.values { source.watches = [] }
        }
    }

    struct State: ~Copyable {
        var queues: [String: QueueObject] = [:]
        var queuesByID: [QueueID: QueueObject] = [:]
        var sources: [String: SourceObject] = [:]
        var sourcesByID: [SourceID: SourceObject] = [:]
        /// Sources by object id (ids are unique), so that making a source or
        /// setting an id never scans every source under the lock.
        var sourcesByObjectID: [UInt64: SourceObject] = [:]
        /// The sources of keys (`keys/SERIAL`), by serial; not in `sources`.
        var keySources: [Int32: SourceObject] = [:]
        var nextHandle: UInt64 = 1
        var nextObjectID: UInt64 = 1
        var watchesByUser: [UInt32: Int] = [:]
        var totalSlots = 0
        /// What each uid's queues and sources count against the per-user limits.
        var queuesByUser: [UInt32: Int] = [:]
        var sourcesByUser: [UInt32: Int] = [:]
        var slotsByUser: [UInt32: Int] = [:]
        /// Which queue each parked read waits on, so an interrupt finds it by token.
        var parkedReads: [UInt64: QueueID] = [:]

        mutating func handle() -> UInt64 {
            defer { nextHandle += 1 }
            return nextHandle
        }
    }

    // MARK: queues

    /// Makes a queue with the default size and no filter.
    /// - Throws: EINVAL for a bad name, EEXIST, ENOSPC past the queue or memory limit.
    @discardableResult
    public func createQueue(named name: String, owner: Credentials) throws(WQError) -> QueueID {
        try Grammar.validateName(name)
        let now = clock()
        return try state.withLock { (state: inout State) throws(WQError) -> QueueID in
            guard state.queues[name] == nil else { throw WQError(EEXIST, "queue \(Grammar.quoted(name)) exists") }
            guard state.queues.count < limits.maxQueues else {
                throw WQError(ENOSPC, "the mount holds its limit of \(limits.maxQueues) queues")
            }
            guard owner.uid == 0 || state.queuesByUser[owner.uid, default: 0] < limits.maxQueuesPerUser else {
                throw WQError(ENOSPC, "uid \(owner.uid) holds its limit of \(limits.maxQueuesPerUser) queues")
            }
            try reserveSlots(limits.defaultSize, for: owner.uid, in: &state)
            let queue = QueueObject(id: QueueID(raw: state.handle()), name: name, capacity: limits.defaultSize, owner: owner, at: now)
            state.queuesByUser[owner.uid, default: 0] += 1
            state.queues[name] = queue
            state.queuesByID[queue.id] = queue
            return queue.id
        }
    }

    func reserveSlots(_ slots: Int, for uid: UInt32, in state: inout State) throws(WQError) {
        guard state.totalSlots + slots <= limits.maxTotalSlots else {
            throw WQError(ENOSPC, "queues would hold \(state.totalSlots + slots) record slots, over the mount's limit of \(limits.maxTotalSlots)")
        }
        let held = state.slotsByUser[uid, default: 0]
        guard uid == 0 || held + slots <= limits.maxSlotsPerUser else {
            throw WQError(ENOSPC, "the queues of uid \(uid) would hold \(held + slots) record slots, over the per-user limit of \(limits.maxSlotsPerUser)")
        }
        state.totalSlots += slots
        state.slotsByUser[uid] = held + slots
    }

    static func releaseSlots(_ slots: Int, for uid: UInt32, in state: inout State) {
        state.totalSlots -= slots
        state.slotsByUser[uid, default: slots] -= slots
        if state.slotsByUser[uid] == 0 { state.slotsByUser[uid] = nil }
    }

    /// Destroys a queue: its watches detach silently, parked readers get end of
    /// file, pollers see POLLHUP.
    public func removeQueue(named name: String) throws(WQError) -> Wakeups {
        var system: [SourceID] = []
        defer { demandChanged(system) }
        return try state.withLock { (state: inout State) throws(WQError) -> Wakeups in
            guard let queue = state.queues.removeValue(forKey: name) else {
                throw WQError(ENOENT, "no queue \(Grammar.quoted(name))")
            }
            system = queue.watched.filter(\.isSystem).map(\.id)
            return Self.destroy(queue, state: &state)
        }
    }

    /// The queue with this name, if any.
    public func queue(named name: String) -> QueueID? {
        state.withLock { $0.queues[name]?.id }
    }

    /// The queue's name, while it exists.
    public func name(of queue: QueueID) -> String? {
        state.withLock { $0.queuesByID[queue]?.name }
    }

    /// Every queue's name, in creation order.
    public func queueNames() -> [String] { queues().map(\.name) }

    /// Every queue, oldest first, read under one lock (a directory listing).
    public func queues() -> [(name: String, id: QueueID)] {
        state.withLock { state in state.queuesByID.values.filter { $0.anonymous == nil }.sorted { $0.id.raw < $1.id.raw }.map { ($0.name, $0.id) } }
    }

    /// Capacity in records.
    public func size(of queue: QueueID) throws(WQError) -> Int {
        try withQueue(queue) { queue, _ in queue.ring.capacity }
    }

    /// Sets the capacity.
    /// - Throws: EINVAL outside 1...maxSize, EBUSY below the records queued, ENOSPC past the memory limit.
    public func setSize(of queue: QueueID, to size: Int) throws(WQError) {
        try withQueue(queue) { (queue, state) throws(WQError) in
            // The kernel's rules hold for an anonymous queue: only its ioctl sizes it.
            guard queue.anonymous == nil else { throw WQError(EBUSY, "an anonymous queue is sized only by IOC_WATCH_QUEUE_SET_SIZE") }
            guard (1...limits.maxSize).contains(size) else {
                throw .invalid("size \(size) is outside 1..\(limits.maxSize)")
            }
            try resize(queue, to: size, state: &state)
        }
    }

    /// Gives `queue` a capacity of `size`, keeping what is queued, with its slots
    /// charged or given back to its creator.
    /// - Throws: EBUSY below the records queued, ENOSPC past the memory limits.
    func resize(_ queue: QueueObject, to size: Int, state: inout State) throws(WQError) {
        guard size >= queue.ring.count else {
            throw WQError(EBUSY, "\(queue.ring.count) records are queued, more than size \(size)")
        }
        if size > queue.ring.capacity {
            try reserveSlots(size - queue.ring.capacity, for: queue.creator, in: &state)
        } else {
            Self.releaseSlots(queue.ring.capacity - size, for: queue.creator, in: &state)
        }
        queue.ring.resize(to: size)
        touch(&queue.metadata[QueueFile.size.rawValue])
    }

    /// Replaces, extends or clears the filter, all at once.
    /// - Throws: EINVAL when the result would exceed `maxFilters` entries.
    public func setFilter(of queue: QueueID, _ write: Grammar.FilterWrite, append: Bool) throws(WQError) {
        var system: [SourceID] = []
        defer { demandChanged(system) }
        try withQueue(queue) { (queue, _) throws(WQError) in
            system = queue.watched.filter(\.isSystem).map(\.id)
            let entries: [FilterEntry]
            switch write {
            case .clear: entries = []
            case .entries(let new): entries = append ? queue.filter.entries + new : new
            }
            guard entries.count <= limits.maxFilters else {
                throw .invalid("the filter would hold \(entries.count) entries, over the limit of \(limits.maxFilters)")
            }
            queue.filter = QueueFilter(entries)
            touch(&queue.metadata[QueueFile.filter.rawValue])
        }
    }

    /// The queue's filter.
    public func filter(of queue: QueueID) throws(WQError) -> QueueFilter {
        try withQueue(queue) { queue, _ in queue.filter }
    }

    /// The numbers `NAME.status` shows.
    public func status(of queue: QueueID) throws(WQError) -> QueueStatus {
        try withQueue(queue) { queue, _ in
            QueueStatus(size: queue.ring.capacity, queued: queue.ring.count, bytes: queue.ring.byteCount,
                        lossPending: queue.ring.lossPending, counters: queue.counters,
                        watches: queue.watched.count, filters: queue.filter.entries.count,
                        readers: queue.openReaders, waiting: queue.parked.count)
        }
    }

    /// Bytes of queued records, as FIONREAD reports (an owed loss record not counted).
    public func queuedBytes(of queue: QueueID) throws(WQError) -> Int {
        try withQueue(queue) { queue, _ in queue.ring.byteCount }
    }

    /// Counts an open reader of the queue, for status.
    public func openReader(of queue: QueueID, delta: Int) {
        state.withLock { state in state.queuesByID[queue]?.openReaders += delta }
    }

    private func withQueue<T: Sendable>(_ id: QueueID, _ body: (QueueObject, inout State) throws(WQError) -> T) throws(WQError) -> T {
        try state.withLock { (state: inout State) throws(WQError) -> T in
            guard let queue = state.queuesByID[id] else { throw WQError(ENOENT, "the queue is gone") }
            return try body(queue, &state)
        }
    }

    // MARK: reading

    /// Reads without waiting into `buffer`: whole records and loss records as the
    /// kernel places them. Returns the bytes copied, 0 when the queue is gone.
    /// - Throws: EAGAIN when empty, ENOBUFS when the first record does not fit.
    public func read(from queue: QueueID, into buffer: UnsafeMutableRawBufferPointer) throws(WQError) -> Int {
        try state.withLock { (state: inout State) throws(WQError) -> Int in
            guard let queue = state.queuesByID[queue] else { return 0 }
            switch Self.take(from: queue, into: buffer) {
            case .copied(let bytes, _): return bytes
            case .bufferTooSmall: throw WQError(ENOBUFS, "the next record does not fit in \(buffer.count) bytes")
            case .empty:
                if queue.atEndOfFile { return 0 }
                throw WQError(EAGAIN, "the queue is empty")
            }
        }
    }

    /// Reads up to `capacity` bytes, or parks the read under `token` when the queue
    /// is empty and `token` is given. A parked read is answered through the
    /// `Wakeups` of a later post, removal or shutdown, or withdrawn by `cancelRead`.
    /// `interrupted` is asked under the lock just before parking, so an interrupt
    /// that lands before the read is parked is never missed: the read then fails
    /// with EINTR, consuming nothing.
    public func read(from queue: QueueID, capacity: Int, parkingAs token: UInt64?,
                     interrupted: () -> Bool = { false }) -> ReadAttempt {
        state.withLock { state in
            guard let queue = state.queuesByID[queue] else { return .endOfFile }
            guard queue.ring.isReadable else {
                if queue.atEndOfFile { return .endOfFile }
                guard let token else { return .wouldBlock }
                if interrupted() { return .failure(EINTR) }
                queue.parked.append(ParkedRead(token: token, capacity: capacity))
                state.parkedReads[token] = queue.id
                return .parked
            }
            switch Self.takeArray(from: queue, capacity: capacity) {
            case .data(let bytes): return .data(bytes)
            case .failure(let errno): return .failure(errno)
            case .endOfFile: return .wouldBlock
            }
        }
    }

    /// Withdraws a parked read (its caller was interrupted). True when it was still
    /// parked: the caller then owns its reply; false when a wakeup already took it.
    public func cancelRead(token: UInt64) -> Bool {
        state.withLock { state in
            guard let id = state.parkedReads.removeValue(forKey: token),
                  let queue = state.queuesByID[id],
                  let index = queue.parked.firstIndex(where: { $0.token == token }) else { return false }
            queue.parked.remove(at: index)
            return true
        }
    }

    /// The poll mask now. When nothing is ready and `token` is given, the token is
    /// kept and comes back in `Wakeups.polls` once the queue is ready or destroyed.
    /// The kernel sends a fresh token with every poll of an open file, so a token
    /// replaces any kept earlier for the same `owner` (the open file); the earlier
    /// one is returned in `released`. Tokens not kept come back there too: the
    /// caller releases them.
    public func poll(_ queue: QueueID, token: UInt64?, owner: UInt64) -> (events: UInt32, released: [UInt64]) {
        state.withLock { state in
            let unkept = token.map { [$0] } ?? []
            guard let queue = state.queuesByID[queue] else { return (PollEvents.hangUp, unkept) }
            let events = queue.pollEvents
            if events != 0 { return (events, unkept) }
            guard let token else { return (0, []) }
            if let index = queue.pollers.firstIndex(where: { $0.owner == owner }) {
                let earlier = queue.pollers[index].token
                queue.pollers[index].token = token
                return (0, [earlier])
            }
            queue.pollers.append(Poller(owner: owner, token: token))
            return (0, [])
        }
    }

    /// Forgets the poll kept for `owner` (an open file being closed) and returns its
    /// token for the caller to release. Without this, polling and closing a quiet
    /// queue over and over would pile up kept tokens until the next record.
    public func closeFile(of queue: QueueID, owner: UInt64) -> [UInt64] {
        state.withLock { state in
            guard let queue = state.queuesByID[queue],
                  let index = queue.pollers.firstIndex(where: { $0.owner == owner }) else { return [] }
            return [queue.pollers.remove(at: index).token]
        }
    }

    private static func take(from queue: QueueObject, into buffer: UnsafeMutableRawBufferPointer) -> RecordRing.ReadOutcome {
        let outcome = queue.ring.read(into: buffer)
        if case .copied(_, let records) = outcome { queue.counters.read += UInt64(records) }
        return outcome
    }

    /// Takes records into a new array sized to what can be copied.
    private static func takeArray(from queue: QueueObject, capacity: Int) -> ParkedReadResult {
        let most = min(capacity, queue.ring.byteCount + Records.loss.count * (queue.ring.count + 1))
        var outcome = RecordRing.ReadOutcome.empty
        let bytes = [UInt8](unsafeUninitializedCapacity: most) { buffer, count in
            outcome = take(from: queue, into: UnsafeMutableRawBufferPointer(buffer))
            if case .copied(let bytes, _) = outcome { count = bytes } else { count = 0 }
        }
        switch outcome {
        case .copied: return .data(bytes)
        case .bufferTooSmall: return .failure(ENOBUFS)
        case .empty: return .endOfFile
        }
    }

    /// Answers parked reads and pollers of a queue that became readable.
    static func wake(_ queue: QueueObject, state: inout State, into wakeups: inout Wakeups) {
        guard queue.ring.isReadable else { return }
        while !queue.parked.isEmpty && queue.ring.isReadable {
            let read = queue.parked.removeFirst()
            state.parkedReads[read.token] = nil
            wakeups.reads.append(ParkedAnswer(token: read.token, result: takeArray(from: queue, capacity: read.capacity)))
        }
        if !queue.pollers.isEmpty && queue.ring.isReadable {
            wakeups.polls += queue.pollers.map(\.token)
            queue.pollers.removeAll(keepingCapacity: true)
        }
    }

    // MARK: sources

    /// Makes a source with a fresh unique object id and the user type.
    /// - Throws: EINVAL for a bad name, EEXIST, ENOSPC past the source limit.
    @discardableResult
    public func createSource(named name: String, owner: Credentials, mode: UInt32 = 0o755) throws(WQError) -> SourceID {
        try Grammar.validateName(name)
        guard !reservedSourceNames.contains(name) else {
            throw WQError(EEXIST, "\(Grammar.quoted(name)) is reserved for a system source")
        }
        let now = clock()
        return try state.withLock { (state: inout State) throws(WQError) -> SourceID in
            guard state.sources[name] == nil else { throw WQError(EEXIST, "source \(Grammar.quoted(name)) exists") }
            guard state.sources.count < limits.maxSources else {
                throw WQError(ENOSPC, "the mount holds its limit of \(limits.maxSources) sources")
            }
            guard owner.uid == 0 || state.sourcesByUser[owner.uid, default: 0] < limits.maxSourcesPerUser else {
                throw WQError(ENOSPC, "uid \(owner.uid) holds its limit of \(limits.maxSourcesPerUser) sources")
            }
            // Ids set by hand may sit in the way; fewer than 2^64 sources exist, so
            // this ends, and each step is one lookup.
            var objectID = state.nextObjectID
            while objectID == 0 || state.sourcesByObjectID[objectID] != nil { objectID &+= 1 }
            state.nextObjectID = objectID &+ 1
            let source = SourceObject(id: SourceID(raw: state.handle()), name: name, objectID: objectID,
                                      owner: owner, directoryMode: mode, at: now)
            state.sources[name] = source
            state.sourcesByID[source.id] = source
            state.sourcesByObjectID[objectID] = source
            state.sourcesByUser[owner.uid, default: 0] += 1
            return source.id
        }
    }

    /// Destroys a source: each watching queue first receives a removal record
    /// carrying its own watch ID.
    public func removeSource(named name: String) throws(WQError) -> Wakeups {
        try state.withLock { (state: inout State) throws(WQError) -> Wakeups in
            guard let source = state.sources[name] else {
                throw WQError(ENOENT, "no source \(Grammar.quoted(name))")
            }
            guard !source.isSystem else { throw WQError(EPERM, "\(Grammar.quoted(name)) is a system source: it cannot be removed") }
            state.sources[name] = nil
            state.sourcesByID[source.id] = nil
            state.sourcesByObjectID[source.objectID] = nil
            state.sourcesByUser[source.creator, default: 1] -= 1
            if state.sourcesByUser[source.creator] == 0 { state.sourcesByUser[source.creator] = nil }
            var wakeups = Wakeups()
            for watch in source.watches {
                Self.detach(watch, from: source, state: &state, wakeups: &wakeups)
            }
            source.watches = []
            return wakeups
        }
    }

    /// Ends a watch: its queue forgets the source and receives a removal record.
    static func detach(_ watch: Watch, from source: SourceObject, state: inout State, wakeups: inout Wakeups) {
        state.watchesByUser[watch.uid, default: 1] -= 1
        watch.queue.watched.removeAll { $0 === source }
        Records.removal(watchID: watch.watchID, objectID: source.objectID).withUnsafeBytes { record in
            deliver(record, header: RecordHeader(bytes: record), to: watch.queue, watchID: watch.watchID)
        }
        wake(watch.queue, state: &state, into: &wakeups)
    }

    /// The source with this name, if any.
    public func source(named name: String) -> SourceID? {
        state.withLock { $0.sources[name]?.id }
    }

    /// The source's name, while it exists.
    public func sourceName(of source: SourceID) -> String? {
        state.withLock { $0.sourcesByID[source]?.name }
    }

    /// Every source's name, in creation order.
    public func sourceNames() -> [String] { sources().map(\.name) }

    /// Every source, oldest first, read under one lock (a directory listing).
    public func sources() -> [(name: String, id: SourceID)] {
        state.withLock { state in
            state.sourcesByID.values.filter { $0.keySerial == nil }.sorted { $0.id.raw < $1.id.raw }.map { ($0.name, $0.id) }
        }
    }

    /// The source's object id (the u64 in removal records).
    public func objectID(of source: SourceID) throws(WQError) -> UInt64 {
        try withSource(source) { source, _ in source.objectID }
    }

    /// Sets the object id.
    /// - Throws: EBUSY while watched, EEXIST when another source has that id.
    public func setObjectID(of source: SourceID, to objectID: UInt64) throws(WQError) {
        try withSource(source) { (source, state) throws(WQError) in
            try Self.refuseIfSystem(source, "its id")
            guard source.watches.isEmpty else {
                throw WQError(EBUSY, "the id of a watched source cannot change (\(source.watches.count) watches)")
            }
            if let other = state.sourcesByObjectID[objectID], other !== source {
                throw WQError(EEXIST, "source \(Grammar.quoted(other.name)) already has id \(objectID)")
            }
            state.sourcesByObjectID[source.objectID] = nil
            state.sourcesByObjectID[objectID] = source
            source.objectID = objectID
            touch(&source.metadata[SourceFile.id.rawValue])
        }
    }

    /// The type the source posts.
    public func type(of source: SourceID) throws(WQError) -> UInt32 {
        try withSource(source) { source, _ in source.type }
    }

    /// Sets the type the source posts (1...0xffffff).
    public func setType(of source: SourceID, to type: UInt32) throws(WQError) {
        try withSource(source) { (source, _) throws(WQError) in
            try Self.refuseIfSystem(source, "its type")
            guard (1...RecordLayout.maxType).contains(type) else {
                throw .invalid("type \(type) is outside 1..0xffffff")
            }
            source.type = type
            touch(&source.metadata[SourceFile.type.rawValue])
        }
    }

    /// `QUEUE WATCH_ID` lines, oldest watch first.
    public func watchesText(of source: SourceID) throws(WQError) -> String {
        try withSource(source) { source, _ in source.watches.map { "\($0.queue.name) \($0.watchID)\n" }.joined() }
    }

    func withSource<T: Sendable>(_ id: SourceID, _ body: (SourceObject, inout State) throws(WQError) -> T) throws(WQError) -> T {
        try state.withLock { (state: inout State) throws(WQError) -> T in
            guard let source = state.sourcesByID[id] else { throw WQError(ENOENT, "the source is gone") }
            return try body(source, &state)
        }
    }

    // MARK: watches

    /// Applies watch commands, all or none. Adding needs read access to the source
    /// directory and to the queue file.
    /// - Throws: ENOENT (no such queue, or no such watch), EBUSY (already watched),
    ///   EACCES, EAGAIN (over the per-user watch limit).
    public func applyWatches(_ commands: [Grammar.WatchCommand], to source: SourceID, caller: Credentials) throws(WQError) -> Wakeups {
        var system: [SourceID] = []
        defer { demandChanged(system) }
        return try withSource(source) { (source, state) throws(WQError) -> Wakeups in
            if source.isSystem { system = [source.id] }
            // Check everything against the state as it will be, before changing anything.
            var watching = Set(source.watches.map { ObjectIdentifier($0.queue) })
            // The caller's net change in watches held: a removed watch gives room back
            // only if it is the caller's (made before, or earlier in this write).
            var added = 0
            var addedHere = Set<ObjectIdentifier>()
            var resolved: [(QueueObject, UInt8?)] = []
            for (index, command) in commands.enumerated() {
                let line = commands.count > 1 ? "command \(index + 1): " : ""
                switch command {
                case .add(let name, let watchID):
                    guard let queue = state.queues[name] else { throw WQError(ENOENT, "\(line)no queue \(Grammar.quoted(name))") }
                    guard queue.metadata[QueueFile.queue.rawValue].permits(.read, to: caller) else {
                        throw WQError(EACCES, "\(line)no read permission on queue \(Grammar.quoted(name))")
                    }
                    guard source.metadata[SourceFile.directory.rawValue].permits(.read, to: caller) else {
                        throw WQError(EACCES, "\(line)no read permission on source \(Grammar.quoted(source.name))")
                    }
                    guard watching.insert(ObjectIdentifier(queue)).inserted else {
                        throw WQError(EBUSY, "\(line)queue \(Grammar.quoted(name)) already watches \(Grammar.quoted(source.name))")
                    }
                    added += 1
                    addedHere.insert(ObjectIdentifier(queue))
                    resolved.append((queue, watchID))
                case .remove(let name):
                    guard let queue = state.queues[name], watching.remove(ObjectIdentifier(queue)) != nil else {
                        throw WQError(ENOENT, "\(line)queue \(Grammar.quoted(name)) does not watch \(Grammar.quoted(source.name))")
                    }
                    // As the kernel asks for the queue's descriptor: whoever may write
                    // the watches file still cannot end another user's watch.
                    guard queue.metadata[QueueFile.queue.rawValue].permits(.read, to: caller) else {
                        throw WQError(EACCES, "\(line)no read permission on queue \(Grammar.quoted(name))")
                    }
                    if addedHere.remove(ObjectIdentifier(queue)) != nil
                        || source.watches.first(where: { $0.queue === queue })?.uid == caller.uid {
                        added -= 1
                    }
                    resolved.append((queue, nil))
                }
            }
            let held = state.watchesByUser[caller.uid, default: 0]
            if added > 0 && held + added > limits.maxWatchesPerUser {
                throw WQError(EAGAIN, "uid \(caller.uid) holds \(held) watches; \(added) more exceed the limit of \(limits.maxWatchesPerUser)")
            }
            var wakeups = Wakeups()
            for (queue, watchID) in resolved {
                if let watchID {
                    source.watches.append(Watch(queue: queue, watchID: watchID, uid: caller.uid))
                    queue.watched.append(source)
                    state.watchesByUser[caller.uid, default: 0] += 1
                } else if let index = source.watches.firstIndex(where: { $0.queue === queue }) {
                    Self.detach(source.watches.remove(at: index), from: source, state: &state, wakeups: &wakeups)
                }
            }
            touch(&source.metadata[SourceFile.watches.rawValue])
            return wakeups
        }
    }

    /// Watches held by a user, against `maxWatchesPerUser`.
    public func watchCount(of uid: UInt32) -> Int {
        state.withLock { $0.watchesByUser[uid, default: 0] }
    }

    // MARK: posting

    /// Posts packed records from `post.bin`, all or none. Error offsets count from
    /// `firstByte` (where the records stand in the writer's stream).
    /// - Throws: EINVAL when a record is malformed or not of the source's type.
    public func postBinary(_ records: UnsafeRawBufferPointer, to source: SourceID, firstByte: Int = 0) throws(WQError) -> Wakeups {
        try postBinary(records, to: source, firstByte: firstByte, partial: false).wakeups
    }

    /// Posts the whole records at the start of `bytes`, all or none; with `partial`,
    /// a record cut short by the end is left for the caller to complete (its length,
    /// where the bytes show it, must be 8 or more). Returns the bytes posted.
    public func postBinary(_ bytes: UnsafeRawBufferPointer, to source: SourceID, firstByte: Int,
                           partial: Bool) throws(WQError) -> (wakeups: Wakeups, taken: Int) {
        try withSource(source) { (source, state) throws(WQError) -> (wakeups: Wakeups, taken: Int) in
            try Self.refuseIfSystem(source, "what it posts")
            let (count, taken) = try Grammar.validatePostBinary(bytes, type: source.type, firstByte: firstByte, partial: partial)
            return (Self.post(UnsafeRawBufferPointer(rebasing: bytes[..<taken]), count: count, from: source, state: &state), taken)
        }
    }

    /// Posts the lines written to `post`, all or none. Error line numbers start at
    /// `firstLine` (where the text stands in the writer's stream).
    /// - Throws: the grammar's errors (EINVAL, EMSGSIZE).
    public func postText(_ text: String, to source: SourceID, firstLine: Int = 1) throws(WQError) -> Wakeups {
        // Parse outside the lock; the type is stamped under it, so a concurrent
        // type change cannot split a write between two types.
        var packed = try Grammar.post(text, type: NotificationType.user, firstLine: firstLine)
        return try withSource(source) { (source, state) throws(WQError) in
            try Self.refuseIfSystem(source, "what it posts")
            return packed.withUnsafeMutableBytes { records in
                var offset = 0, count = 0
                while offset < records.count {
                    var header = RecordHeader(bytes: UnsafeRawBufferPointer(rebasing: records[offset...]))
                    header.type = source.type
                    header.store(to: records.baseAddress! + offset)
                    offset += header.length
                    count += 1
                }
                return Self.post(UnsafeRawBufferPointer(records), count: count, from: source, state: &state)
            }
        }
    }

    /// Delivers each of `count` well-formed records to every watching queue. No
    /// allocation unless a reader or poller is waiting.
    static func post(_ records: UnsafeRawBufferPointer, count: Int, from source: SourceObject,
                             state: inout State) -> Wakeups {
        var wakeups = Wakeups()
        guard !source.watches.isEmpty else { return wakeups }
        // Queue by queue, each taking every record in order: the same queues end up
        // holding the same records as record by record, and the queue, its filter and
        // its ring stay at hand for the whole batch.
        for watch in source.watches {
            let queue = watch.queue
            guard queue.takesRecords else { continue }
            let ring = queue.ring
            let filter = queue.filter
            if filter.isEmpty {
                // Nothing to decide per record: one copy into the ring.
                let queued = ring.push(batch: records, records: count, watchID: watch.watchID)
                queue.counters.posted += UInt64(count)
                queue.counters.lost += UInt64(count - queued)
                continue
            }
            let watchBits = UInt32(watch.watchID) << RecordLayout.watchIDShift
            var posted: UInt64 = 0, filtered: UInt64 = 0, lost: UInt64 = 0
            var iterator = RecordIterator(records)
            while let record = iterator.next() {
                let header = record.header
                let info = header.info & ~RecordLayout.watchIDMask | watchBits
                posted += 1
                if !filter.admits(type: header.type, subtype: header.subtype, info: info) {
                    filtered += 1
                } else if !ring.push(record.bytes, info: info) {
                    lost += 1
                }
            }
            queue.counters.posted += posted
            queue.counters.filtered += filtered
            queue.counters.lost += lost
        }
        for watch in source.watches where !watch.queue.parked.isEmpty || !watch.queue.pollers.isEmpty {
            wake(watch.queue, state: &state, into: &wakeups)
        }
        return wakeups
    }

    /// One copy into one queue: the watch ID goes into `info`, then the filter, then the ring.
    @inline(__always)
    private static func deliver(_ record: UnsafeRawBufferPointer, header: RecordHeader, to queue: QueueObject, watchID: UInt8) {
        guard queue.takesRecords else { return }
        let info = header.info & ~RecordLayout.watchIDMask | UInt32(watchID) << RecordLayout.watchIDShift
        queue.counters.posted += 1
        guard queue.filter.admits(type: header.type, subtype: header.subtype, info: info) else {
            queue.counters.filtered += 1
            return
        }
        if !queue.ring.push(record, info: info) { queue.counters.lost += 1 }
    }

    // MARK: metadata

    /// The metadata of one of a queue's files.
    public func metadata(of queue: QueueID, file: QueueFile) -> Metadata? {
        state.withLock { $0.queuesByID[queue]?.metadata[file.rawValue] }
    }

    /// The metadata of a source's directory or one of its files.
    public func metadata(of source: SourceID, file: SourceFile) -> Metadata? {
        state.withLock { $0.sourcesByID[source]?.metadata[file.rawValue] }
    }

    /// Applies a `setattr` to one of a queue's files and returns the result.
    public func changeMetadata(of queue: QueueID, file: QueueFile, _ change: MetadataChange) throws(WQError) -> Metadata {
        try withQueue(queue) { queue, _ in apply(change, to: &queue.metadata[file.rawValue]) }
    }

    /// Applies a `setattr` to a source's directory or file and returns the result.
    public func changeMetadata(of source: SourceID, file: SourceFile, _ change: MetadataChange) throws(WQError) -> Metadata {
        try withSource(source) { source, _ in apply(change, to: &source.metadata[file.rawValue]) }
    }

    private func apply(_ change: MetadataChange, to metadata: inout Metadata) -> Metadata {
        if let uid = change.uid { metadata.uid = uid }
        if let gid = change.gid { metadata.gid = gid }
        if let mode = change.mode { metadata.mode = mode & 0o7777 }
        if let accessed = change.accessed { metadata.accessed = accessed }
        if let modified = change.modified { metadata.modified = modified }
        metadata.changed = clock()
        return metadata
    }

    func touch(_ metadata: inout Metadata) {
        let now = clock()
        metadata.modified = now
        metadata.changed = now
    }

    // MARK: teardown

    /// Ends every parked read with end of file and hands back every poll token,
    /// for unmount.
    public func shutdown() -> Wakeups {
        state.withLock { state in
            var wakeups = Wakeups()
            for queue in state.queuesByID.values { Self.endWaiters(of: queue, state: &state, into: &wakeups) }
            return wakeups
        }
    }
}
