#if canImport(Glibc)
import Glibc
#endif

/// The engine's side of key sources (DESIGN.md §6, "Keys"): `keys/SERIAL` is the
/// source of one key, type 1 (key notifications), its object id the serial, so a
/// removal record carries the serial as the kernel's does. A key source is made
/// when first named and dropped once nothing watches it; it never appears among
/// `sources/`.
extension Engine {
    /// The source of key `serial`, made when `create` and missing.
    public func keySource(serial: Int32, create: Bool) -> SourceID? {
        state.withLock { state in
            if let source = state.keySources[serial] { return source.id }
            guard create else { return nil }
            let objectID = UInt64(UInt32(bitPattern: serial))
            // A user's source may hold this id: a key's source is found by its serial
            // and posts by its SourceID, so the two never mix.
            let source = SourceObject(id: SourceID(raw: state.handle()), name: "\(serial)", objectID: objectID,
                                      owner: .root, directoryMode: 0o755, at: Timestamp.now())
            source.isSystem = true
            source.keySerial = serial
            source.type = NotificationType.keyNotify
            for file in [SourceFile.id, .type] { source.metadata[file.rawValue].mode = 0o444 }
            // Watched by whoever may View the key: the filesystem checks that.
            source.metadata[SourceFile.watches.rawValue].mode = 0o666
            state.keySources[serial] = source
            state.sourcesByID[source.id] = source
            Self.forgetUnwatchedKeys(beyond: 1024, state: &state)
            return source.id
        }
    }

    /// The key `source` stands for, if it is a key's source.
    public func keySerial(of source: SourceID) -> Int32? {
        state.withLock { $0.sourcesByID[source]?.keySerial }
    }

    /// The watched keys, by serial.
    public func watchedKeys() -> [(serial: Int32, source: SourceID)] {
        state.withLock { state in
            state.keySources.values.filter { !$0.watches.isEmpty }.map { ($0.keySerial ?? 0, $0.id) }.sorted { $0.serial < $1.serial }
        }
    }

    /// Whether `queue` watches some key: only such a queue's reads and stats wait
    /// for the key observer to catch up.
    public func watchesKeys(_ queue: QueueID) -> Bool {
        state.withLock { $0.queuesByID[queue]?.watched.contains { $0.keySerial != nil } ?? false }
    }

    /// Key `serial` went away: each watching queue receives a removal record with the
    /// serial, and the source goes.
    public func keyGone(serial: Int32) -> Wakeups {
        var gone: [SourceID] = []
        defer { demandChanged(gone) }
        return state.withLock { state in
            var wakeups = Wakeups()
            guard let source = state.keySources.removeValue(forKey: serial) else { return wakeups }
            gone = [source.id]
            state.sourcesByID[source.id] = nil
            for watch in source.watches { Self.detach(watch, from: source, state: &state, wakeups: &wakeups) }
            source.watches = []
            return wakeups
        }
    }

    /// `KEYCTL_WATCH_KEY` for an open queue (the caller holds its descriptor, so no
    /// permission on it is checked; View on the key is the caller's check):
    /// `watchID` −1 removes the queue's watch, 0…255 adds one.
    /// - Throws: EBUSY when the queue already watches the key (whatever the ID),
    ///   EAGAIN over the per-user watch limit, EBADSLT removing a watch that is not
    ///   there, EINVAL for another `watchID`, ENOENT when the queue is gone.
    public func watchKey(_ key: SourceID, from queue: QueueID, watchID: Int32, caller: Credentials) throws(WQError) -> Wakeups {
        defer { demandChanged([key]) }
        return try state.withLock { (state: inout State) throws(WQError) -> Wakeups in
            guard let source = state.sourcesByID[key], source.keySerial != nil else { throw WQError(ENOKEY, "no such key") }
            guard let queue = state.queuesByID[queue] else { throw WQError(ENOENT, "the queue is gone") }
            var wakeups = Wakeups()
            let index = source.watches.firstIndex { $0.queue === queue }
            switch watchID {
            case -1:
                guard let index else { throw WQError(EBADSLT, "the queue does not watch key \(source.name)") }
                Self.detach(source.watches.remove(at: index), from: source, state: &state, wakeups: &wakeups)
            case 0...255:
                guard index == nil else { throw WQError(EBUSY, "the queue already watches key \(source.name)") }
                let held = state.watchesByUser[caller.uid, default: 0]
                guard held < limits.maxWatchesPerUser else {
                    throw WQError(EAGAIN, "uid \(caller.uid) holds its limit of \(limits.maxWatchesPerUser) watches")
                }
                source.watches.append(Watch(queue: queue, watchID: UInt8(watchID), uid: caller.uid))
                queue.watched.append(source)
                state.watchesByUser[caller.uid, default: 0] += 1
            default:
                throw .invalid("watch id \(watchID) is outside -1..255")
            }
            touch(&source.metadata[SourceFile.watches.rawValue])
            return wakeups
        }
    }

    /// Drops key sources nothing watches once there are more than `limit`, so naming
    /// serials cannot grow the server without bound.
    private static func forgetUnwatchedKeys(beyond limit: Int, state: inout State) {
        guard state.keySources.count > limit else { return }
        for (serial, source) in state.keySources where source.watches.isEmpty {
            state.keySources[serial] = nil
            state.sourcesByID[source.id] = nil
        }
    }
}
