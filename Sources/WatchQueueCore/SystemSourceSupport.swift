#if canImport(Glibc)
import Glibc
#endif

/// Who watches a system source, and what they may keep: what its mechanism needs to
/// subscribe to in the kernel (DESIGN.md §6, "Cost").
public struct SourceDemand: Equatable, Sendable {
    /// Watches of the source.
    public var watches: Int
    /// The subtypes of the source's type that at least one watching queue's filter
    /// admits (all of them when a watching queue has no filter).
    public var subtypes: SubtypeSet

    public init(watches: Int, subtypes: SubtypeSet) {
        self.watches = watches
        self.subtypes = subtypes
    }
}

/// The engine's side of the system sources: made by the mount, posted to by the
/// mechanisms of the machine, never by a user.
extension Engine {
    /// Makes a system source: owned by root, `id` and `type` read-only, no `post`
    /// files, never removed. Its name needs no reservation check.
    @discardableResult
    public func createSystemSource(named name: String, type: UInt32, objectID: UInt64) throws(WQError) -> SourceID {
        try Grammar.validateName(name)
        let now = Timestamp.now()
        return try state.withLock { (state: inout State) throws(WQError) -> SourceID in
            guard state.sources[name] == nil else { throw WQError(EEXIST, "source \(Grammar.quoted(name)) exists") }
            guard state.sourcesByObjectID[objectID] == nil else { throw WQError(EEXIST, "object id \(objectID) is taken") }
            let source = SourceObject(id: SourceID(raw: state.handle()), name: name, objectID: objectID,
                                      owner: .root, directoryMode: 0o755, at: now)
            source.isSystem = true
            source.type = type
            for file in [SourceFile.id, .type] { source.metadata[file.rawValue].mode = 0o444 }
            // Anyone may watch the machine's events (the kernel lets any user read
            // these mechanisms); a watch is removed only by who may read its queue.
            source.metadata[SourceFile.watches.rawValue].mode = 0o666
            state.sources[name] = source
            state.sourcesByID[source.id] = source
            state.sourcesByObjectID[objectID] = source
            return source.id
        }
    }

    /// Whether `source` is a system source (false when it is gone).
    public func isSystemSource(_ source: SourceID) -> Bool {
        state.withLock { $0.sourcesByID[source]?.isSystem ?? false }
    }

    /// Posts `count` well-formed records, packed back to back, that a mechanism made
    /// (their type is the source's; nothing is checked): the same delivery as any
    /// post, without its checks. No allocation unless a reader or poller waits.
    public func postSystem(_ records: UnsafeRawBufferPointer, count: Int, to source: SourceID) -> Wakeups {
        (try? withSource(source) { object, state in Self.post(records, count: count, from: object, state: &state) }) ?? Wakeups()
    }

    /// The kernel dropped events of `source` before the mechanism read them: every
    /// watching queue gets a loss record (after its newest record, or next if it is
    /// empty), counted as one lost copy.
    public func reportLoss(on source: SourceID) -> Wakeups {
        state.withLock { state in
            var wakeups = Wakeups()
            guard let object = state.sourcesByID[source] else { return wakeups }
            for watch in object.watches where watch.queue.takesRecords {
                watch.queue.ring.markLoss()
                watch.queue.counters.posted += 1
                watch.queue.counters.lost += 1
                Self.wake(watch.queue, state: &state, into: &wakeups)
            }
            return wakeups
        }
    }

    /// Who watches `source` and which of its subtypes they may keep; nil when it is
    /// gone.
    public func demand(of source: SourceID) -> SourceDemand? {
        state.withLock { state in
            guard let object = state.sourcesByID[source] else { return nil }
            var subtypes = SubtypeSet()
            for watch in object.watches {
                let filter = watch.queue.filter
                if filter.isEmpty { return SourceDemand(watches: object.watches.count, subtypes: .all) }
                for entry in filter.entries where entry.type == object.type { subtypes.formUnion(entry.subtypes) }
            }
            return SourceDemand(watches: object.watches.count, subtypes: subtypes)
        }
    }

    /// Calls `handler` (on the caller's thread, outside the engine's lock) whenever
    /// the demand of a system source may have changed: a watch of it made or removed,
    /// a watching queue's filter changed or the queue removed. It replaces any
    /// handler set before; it should only signal, not work.
    public func onDemandChange(_ handler: @escaping @Sendable (SourceID) -> Void) {
        demandObserver.withLock { $0 = handler }
    }

    func demandChanged(_ sources: [SourceID]) {
        guard !sources.isEmpty, let handler = demandObserver.withLock({ $0 }) else { return }
        for source in sources { handler(source) }
    }

    /// EPERM for what only a user's source allows.
    static func refuseIfSystem(_ source: SourceObject, _ what: String) throws(WQError) {
        if source.isSystem {
            throw WQError(EPERM, "\(Grammar.quoted(source.name)) is a system source: nobody changes \(what)")
        }
    }
}
