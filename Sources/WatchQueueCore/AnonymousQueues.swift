#if canImport(Glibc)
import Glibc
#endif

// Anonymous queues (DESIGN.md §7): what a kernel notification pipe is, rebuilt on a
// queue file. A queue turns anonymous through `WQFS_IOC_ANONYMOUS` on one of its
// open files; from then on the kernel's rules hold for it, not the mount's.

/// The kernel's numbers for a notification pipe's ring (kernel/watch_queue.c).
public enum KernelQueueRules {
    /// `IOC_WATCH_QUEUE_SET_SIZE` accepts 1...512 records.
    public static let maxSize = 512
    /// Capacities are whole pages of notes: multiples of 32 records.
    public static let sizeGranule = 32

    /// The capacity the kernel gives a request for `count` records (1 → 32).
    public static func capacity(for count: Int) -> Int {
        (count + sizeGranule - 1) / sizeGranule * sizeGranule
    }
}

/// What an anonymous queue keeps beyond a named one.
struct AnonymousState {
    /// Set by the one `IOC_WATCH_QUEUE_SET_SIZE` the kernel allows; until then the
    /// queue has no ring, and every post to it is dropped without a trace.
    var sized = false
}

extension QueueObject {
    /// False for an anonymous queue not yet sized: what is posted to it is dropped
    /// silently (not counted, not a loss), as the kernel drops posts to a
    /// notification pipe that has no notes yet.
    var takesRecords: Bool { anonymous?.sized ?? true }

    /// True when a read would give end of file: an anonymous queue, nothing to read,
    /// and no open file left that could write (a pipe whose writers are gone).
    var atEndOfFile: Bool { anonymous != nil && openWriters == 0 && !ring.isReadable }

    /// The poll mask now. Named queues: POLLIN when a read would not wait (a pending
    /// loss record included). Anonymous queues, as a notification pipe's read end:
    /// POLLIN only with records queued, POLLHUP once no writer is left.
    var pollEvents: UInt32 {
        guard anonymous != nil else { return ring.isReadable ? PollEvents.readable : 0 }
        return (ring.count > 0 ? PollEvents.readable : 0) | (openWriters == 0 ? PollEvents.hangUp : 0)
    }
}

extension Engine {
    /// Counts an open file of the queue file (`reading`/`writing`: how it was opened).
    /// Every queue counts them, so that one turned anonymous knows its open files.
    public func openedQueueFile(_ queue: QueueID, reading: Bool, writing: Bool) {
        state.withLock { state in
            guard let queue = state.queuesByID[queue] else { return }
            queue.openFiles += 1
            if writing { queue.openWriters += 1 }
            if reading { queue.openReaders += 1 }
        }
    }

    /// Uncounts an open file of the queue file, as `openedQueueFile` counted it. For
    /// an anonymous queue, the last one destroys the queue (its watches go
    /// silently), and the last writer ends waiting reads with end of file and
    /// wakes pollers (POLLHUP).
    public func releasedQueueFile(_ queue: QueueID, reading: Bool, writing: Bool) -> Wakeups {
        var system: [SourceID] = []
        defer { demandChanged(system) }
        return state.withLock { state in
            guard let queue = state.queuesByID[queue] else { return Wakeups() }
            queue.openFiles -= 1
            if writing { queue.openWriters -= 1 }
            if reading { queue.openReaders -= 1 }
            guard queue.anonymous != nil else { return Wakeups() }
            if queue.openFiles == 0 {
                system = queue.watched.filter(\.isSystem).map(\.id)
                return Self.destroy(queue, state: &state)
            }
            return Self.endOfFileWakeups(queue, state: &state)
        }
    }

    /// Turns the queue anonymous (`WQFS_IOC_ANONYMOUS`): its name leaves `queues/`
    /// at once (free for a new queue; its companion files go with it) and the
    /// kernel's rules hold from now on: it lives while an open file of it exists,
    /// takes no records until sized once by `setSizeByIoctl`, reads end of file
    /// when empty with no writer left, and polls as a notification pipe. Records
    /// already queued stay. A queue with no open file is destroyed at once.
    /// Turning an anonymous queue anonymous again does nothing.
    /// - Throws: ENOENT when the queue is gone, EPERM unless the caller owns the
    ///   queue file or is root (only the owner may remove a name from `queues/`).
    public func makeAnonymous(_ queue: QueueID, caller: Credentials) throws(WQError) -> Wakeups {
        var system: [SourceID] = []
        defer { demandChanged(system) }
        return try state.withLock { (state: inout State) throws(WQError) -> Wakeups in
            guard let queue = state.queuesByID[queue] else { throw WQError(ENOENT, "the queue is gone") }
            guard queue.anonymous == nil else { return Wakeups() }
            guard caller.uid == 0 || caller.uid == queue.metadata[QueueFile.queue.rawValue].uid else {
                throw WQError(EPERM, "only the owner of queue \(Grammar.quoted(queue.name)) may make it anonymous")
            }
            state.queues[queue.name] = nil
            // Not a name any write can give: the watches files of the sources that
            // watch it show it, and nothing can name it.
            queue.name = Self.anonymousName
            queue.anonymous = AnonymousState()
            // Through FUSE an open file always exists here; without one nothing
            // could keep the queue alive.
            if queue.openFiles == 0 {
                system = queue.watched.filter(\.isSystem).map(\.id)
                return Self.destroy(queue, state: &state)
            }
            return Self.endOfFileWakeups(queue, state: &state)
        }
    }

    /// What an anonymous queue is called in listings and messages.
    public static let anonymousName = "[anonymous]"

    /// Whether the queue is anonymous (false when it is gone).
    public func isAnonymous(_ queue: QueueID) -> Bool {
        state.withLock { $0.queuesByID[queue]?.anonymous != nil }
    }

    /// `IOC_WATCH_QUEUE_SET_SIZE` with the record count it carries by value. Named
    /// queues: `setSize` (any number of times, 1...maxSize). Anonymous queues, in
    /// the kernel's order: sized before, EBUSY; outside 1...512, EINVAL; then the
    /// capacity is rounded up to a multiple of 32 and posts are taken from now on.
    /// - Throws: also ENOSPC past the memory limits, ENOENT when the queue is gone.
    public func setSizeByIoctl(of queue: QueueID, to count: UInt64) throws(WQError) {
        let anonymous = try state.withLock { (state: inout State) throws(WQError) -> Bool in
            guard let queue = state.queuesByID[queue] else { throw WQError(ENOENT, "the queue is gone") }
            guard var anonymous = queue.anonymous else { return false }
            guard !anonymous.sized else { throw WQError(EBUSY, "an anonymous queue is sized once; it holds \(queue.ring.capacity)") }
            // The kernel takes the count as an unsigned int.
            let count = Int(UInt32(truncatingIfNeeded: count))
            guard (1...KernelQueueRules.maxSize).contains(count) else {
                throw .invalid("size \(count) is outside 1..\(KernelQueueRules.maxSize)")
            }
            try resize(queue, to: KernelQueueRules.capacity(for: count), state: &state)
            anonymous.sized = true
            queue.anonymous = anonymous
            return true
        }
        if anonymous { return }
        guard count <= UInt64(limits.maxSize) else { throw .invalid("size \(count) is outside 1..\(limits.maxSize)") }
        try setSize(of: queue, to: Int(count))
    }

    /// `IOC_WATCH_QUEUE_SET_FILTER`, as `WQFS_IOC_SET_FILTER` carries it: checked
    /// and translated by `KernelFilter.parse`, then installed whole (nr_filters 0
    /// removes the filter). Queued records stay as they are.
    /// - Throws: EINVAL as the kernel, or past `maxFilters`; ENOENT when gone.
    public func setKernelFilter(of queue: QueueID, _ request: UnsafeRawBufferPointer) throws(WQError) {
        try setFilter(of: queue, KernelFilter.parse(request), append: false)
    }

    /// Destroys a queue already out of `queues` (removed, or anonymous with its last
    /// open file closed): its slots and counts go back, its watches detach with no
    /// record, and its waiting readers and pollers are ended.
    static func destroy(_ queue: QueueObject, state: inout State) -> Wakeups {
        state.queuesByID[queue.id] = nil
        releaseSlots(queue.ring.capacity, for: queue.creator, in: &state)
        state.queuesByUser[queue.creator, default: 1] -= 1
        if state.queuesByUser[queue.creator] == 0 { state.queuesByUser[queue.creator] = nil }
        // As the kernel when a watch queue goes: its watches detach with no record.
        for source in queue.watched {
            if let index = source.watches.firstIndex(where: { $0.queue === queue }) {
                state.watchesByUser[source.watches[index].uid, default: 1] -= 1
                source.watches.remove(at: index)
            }
        }
        queue.watched = []
        return endWaiters(of: queue, state: &state)
    }

    /// Once an anonymous queue reads end of file, waiting reads get it and pollers
    /// are told (they poll again and see POLLHUP).
    private static func endOfFileWakeups(_ queue: QueueObject, state: inout State) -> Wakeups {
        queue.atEndOfFile ? endWaiters(of: queue, state: &state) : Wakeups()
    }

    /// Ends every read waiting on `queue` with end of file and hands back its poll
    /// tokens.
    static func endWaiters(of queue: QueueObject, state: inout State) -> Wakeups {
        var wakeups = Wakeups()
        endWaiters(of: queue, state: &state, into: &wakeups)
        return wakeups
    }

    /// The same, added to `wakeups` (unmount ends every queue's waiters in one).
    static func endWaiters(of queue: QueueObject, state: inout State, into wakeups: inout Wakeups) {
        wakeups.reads += queue.parked.map { ParkedAnswer(token: $0.token, result: .endOfFile) }
        for read in queue.parked { state.parkedReads[read.token] = nil }
        wakeups.polls += queue.pollers.map(\.token)
        queue.parked = []
        queue.pollers = []
    }
}
