// The engine against a reference model. The fuzzer's bytes are a program of
// operations — create and remove queues and sources, resize, filter, watch and
// unwatch, post text and binary records, read with all buffer sizes, park reads,
// cancel them, poll, close, retype, re-id — run on a real Engine and on a model
// written the plain way: a queue is an array of records with a loss mark each,
// following the kernel's rules (KERNEL-FACTS.md) as the design states them. Every
// result, errno, byte read, wakeup and status counter must agree.
import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

public enum EngineTarget {
    static let limits: Limits = {
        var limits = Limits()
        limits.defaultSize = 4
        limits.maxSize = 12
        limits.maxFilters = 3
        limits.maxWatchesPerUser = 3
        limits.maxQueues = 4
        limits.maxSources = 3
        limits.maxTotalSlots = 30
        limits.maxQueuesPerUser = 2
        limits.maxSourcesPerUser = 2
        limits.maxSlotsPerUser = 16
        return limits
    }()

    static let users = [Credentials.root, Credentials(uid: 1000, gid: 1000), Credentials(uid: 1001, gid: 1001)]
    static let queueNames = ["q0", "q1", "q2", "q3", "q4"]
    static let sourceNames = ["s0", "s1", "s2", "s3"]

    // MARK: the model

    final class MQueue {
        let id: QueueID
        let name: String
        let owner: UInt32
        var capacity = EngineTarget.limits.defaultSize
        var records: [(bytes: [UInt8], marked: Bool)] = []
        var lossPending = false
        var filter: [(type: UInt32, subtypes: Set<UInt8>, infoFilter: UInt32, infoMask: UInt32)] = []
        var posted: UInt64 = 0, filtered: UInt64 = 0, lost: UInt64 = 0, read: UInt64 = 0
        var parked: [(token: UInt64, capacity: Int)] = []
        var pollers: [(owner: UInt64, token: UInt64)] = []
        var watched: [MSource] = []
        var alive = true

        init(id: QueueID, name: String, owner: UInt32) {
            self.id = id
            self.name = name
            self.owner = owner
        }

        var readable: Bool { !records.isEmpty || lossPending }
        var bytes: Int { records.reduce(0) { $0 + $1.bytes.count } }
    }

    final class MSource {
        let id: SourceID
        let name: String
        let owner: UInt32
        var objectID: UInt64
        var type: UInt32 = 0x100
        var watches: [(queue: MQueue, watchID: UInt8, uid: UInt32)] = []
        var alive = true

        init(id: SourceID, name: String, owner: UInt32, objectID: UInt64) {
            self.id = id
            self.name = name
            self.owner = owner
            self.objectID = objectID
        }
    }

    enum Outcome: Equatable {
        case data([UInt8])
        case tooSmall
        case empty
    }

    static let loss: [UInt8] = [0, 0, 0, 1, 8, 0, 0, 0]

    final class Model {
        var queues: [String: MQueue] = [:]
        var sources: [String: MSource] = [:]
        var queueOrder: [MQueue] = []
        var sourceOrder: [MSource] = []
        var everyQueue: [MQueue] = []
        var everySource: [MSource] = []
        var watchesByUser: [UInt32: Int] = [:]
        var queuesByUser: [UInt32: Int] = [:]
        var sourcesByUser: [UInt32: Int] = [:]
        var slotsByUser: [UInt32: Int] = [:]
        var totalSlots = 0
        var nextObjectID: UInt64 = 1
        var wakeReads: [(UInt64, ParkedReadResult)] = []
        var wakePolls: [UInt64] = []

        /// The kernel's read: a pending loss record first, then whole records; a
        /// marked record owes a loss record, which follows it unless it was the last
        /// record or filled the buffer, in which case it opens the next read.
        func take(_ q: MQueue, capacity: Int) -> Outcome {
            var out: [UInt8] = []
            while true {
                if q.lossPending {
                    guard capacity - out.count >= 8 else { return out.isEmpty ? .tooSmall : .data(out) }
                    out += loss
                    q.lossPending = false
                }
                guard let first = q.records.first else { break }
                guard first.bytes.count <= capacity - out.count else { return out.isEmpty ? .tooSmall : .data(out) }
                out += first.bytes
                q.records.removeFirst()
                q.read += 1
                q.lossPending = first.marked
                if out.count == capacity || q.records.isEmpty { break }
            }
            return out.isEmpty ? .empty : .data(out)
        }

        func deliver(_ record: [UInt8], to q: MQueue, watchID: UInt8) {
            var bytes = record
            let info = (UInt32(bytes[4]) | UInt32(bytes[5]) << 8 | UInt32(bytes[6]) << 16 | UInt32(bytes[7]) << 24)
                & ~0xff00 | UInt32(watchID) << 8
            withUnsafeBytes(of: info.littleEndian) { for i in 0..<4 { bytes[4 + i] = $0[i] } }
            q.posted += 1
            let type = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16
            let subtype = bytes[3]
            if type != 0 && !q.filter.isEmpty
                && !q.filter.contains(where: { $0.type == type && $0.subtypes.contains(subtype) && info & $0.infoMask == $0.infoFilter }) {
                q.filtered += 1
                return
            }
            if q.records.count == q.capacity {
                q.records[q.records.count - 1].marked = true
                q.lost += 1
            } else {
                q.records.append((bytes, false))
            }
        }

        func wake(_ q: MQueue) {
            guard q.readable else { return }
            while !q.parked.isEmpty && q.readable {
                let p = q.parked.removeFirst()
                switch take(q, capacity: p.capacity) {
                case .data(let bytes): wakeReads.append((p.token, .data(bytes)))
                case .tooSmall: wakeReads.append((p.token, .failure(ENOBUFS)))
                case .empty: wakeReads.append((p.token, .endOfFile))
                }
            }
            if !q.pollers.isEmpty && q.readable {
                wakePolls += q.pollers.map(\.token)
                q.pollers.removeAll()
            }
        }

        func removal(watchID: UInt8, objectID: UInt64) -> [UInt8] {
            let length: UInt8 = objectID == 0 ? 8 : 16
            var record: [UInt8] = [0, 0, 0, 0, length, watchID, 0, 0]
            if objectID != 0 { withUnsafeBytes(of: objectID.littleEndian) { record += $0 } }
            return record
        }

        func detach(_ index: Int, from s: MSource) {
            let w = s.watches.remove(at: index)
            watchesByUser[w.uid, default: 0] -= 1
            w.queue.watched.removeAll { $0 === s }
            deliver(removal(watchID: w.watchID, objectID: s.objectID), to: w.queue, watchID: w.watchID)
            wake(w.queue)
        }

        func takeWakeups() -> ([(UInt64, ParkedReadResult)], [UInt64]) {
            defer { wakeReads = []; wakePolls = [] }
            return (wakeReads, wakePolls)
        }
    }

    // MARK: running a program

    static func errno(_ body: () throws(WQError) -> Void) -> Int32 {
        do { try body(); return 0 } catch { return error.errno }
    }

    static func same(_ engine: Wakeups, _ model: Model, _ what: String) {
        let (reads, polls) = model.takeWakeups()
        fuzzCheck(engine.reads.count == reads.count && zip(engine.reads, reads).allSatisfy { $0.token == $1.0 && $0.result == $1.1 },
                  "\(what): wakeup reads \(engine.reads) vs model \(reads)")
        fuzzCheck(engine.polls == polls, "\(what): wakeup polls \(engine.polls) vs model \(polls)")
    }

    public static func run(_ data: UnsafeRawBufferPointer) {
        var input = FuzzInput(data)
        let engine = Engine(limits: limits, clock: { Timestamp(seconds: 0, nanoseconds: 0) })
        let model = Model()
        var nextToken: UInt64 = 1
        var parkedTokens: [UInt64] = []
        var step = 0

        func pickQueue() -> MQueue? {
            guard !model.everyQueue.isEmpty else { return nil }
            return model.everyQueue[input.below(model.everyQueue.count)]
        }
        func pickSource() -> MSource? {
            guard !model.everySource.isEmpty else { return nil }
            return model.everySource[input.below(model.everySource.count)]
        }

        while !input.isEmpty && step < 400 {
            step += 1
            let op = input.below(20)
            switch op {
            case 0: // create a queue
                let name = queueNames[input.below(queueNames.count)]
                let user = users[input.below(users.count)]
                var want: Int32 = 0
                if model.queues[name] != nil { want = EEXIST }
                else if model.queues.count >= limits.maxQueues { want = ENOSPC }
                else if user.uid != 0 && model.queuesByUser[user.uid, default: 0] >= limits.maxQueuesPerUser { want = ENOSPC }
                else if model.totalSlots + limits.defaultSize > limits.maxTotalSlots { want = ENOSPC }
                else if user.uid != 0 && model.slotsByUser[user.uid, default: 0] + limits.defaultSize > limits.maxSlotsPerUser { want = ENOSPC }
                do {
                    let id = try engine.createQueue(named: name, owner: user)
                    fuzzCheck(want == 0, "create \(name) succeeded, model says \(want)")
                    let q = MQueue(id: id, name: name, owner: user.uid)
                    model.queues[name] = q
                    model.queueOrder.append(q)
                    model.everyQueue.append(q)
                    model.queuesByUser[user.uid, default: 0] += 1
                    model.totalSlots += q.capacity
                    model.slotsByUser[user.uid, default: 0] += q.capacity
                } catch {
                    fuzzCheck(error.errno == want, "create \(name): \(error), model says \(want)")
                }
            case 1: // remove a queue
                let name = queueNames[input.below(queueNames.count)]
                do {
                    let wakeups = try engine.removeQueue(named: name)
                    guard let q = model.queues.removeValue(forKey: name) else { fuzzCheck(false, "removed a missing queue"); return }
                    q.alive = false
                    model.queueOrder.removeAll { $0 === q }
                    model.queuesByUser[q.owner, default: 0] -= 1
                    model.totalSlots -= q.capacity
                    model.slotsByUser[q.owner, default: 0] -= q.capacity
                    for s in q.watched {
                        if let index = s.watches.firstIndex(where: { $0.queue === q }) {
                            model.watchesByUser[s.watches[index].uid, default: 0] -= 1
                            s.watches.remove(at: index)
                        }
                    }
                    q.watched = []
                    model.wakeReads = q.parked.map { ($0.token, .endOfFile) }
                    model.wakePolls = q.pollers.map(\.token)
                    q.parked = []
                    q.pollers = []
                    same(wakeups, model, "remove \(name)")
                } catch {
                    fuzzCheck(error.errno == ENOENT && model.queues[name] == nil, "remove \(name): \(error)")
                }
            case 2: // create a source
                let name = sourceNames[input.below(sourceNames.count)]
                let user = users[input.below(users.count)]
                var want: Int32 = 0
                if model.sources[name] != nil { want = EEXIST }
                else if model.sources.count >= limits.maxSources { want = ENOSPC }
                else if user.uid != 0 && model.sourcesByUser[user.uid, default: 0] >= limits.maxSourcesPerUser { want = ENOSPC }
                do {
                    let id = try engine.createSource(named: name, owner: user)
                    fuzzCheck(want == 0, "mkdir \(name) succeeded, model says \(want)")
                    var objectID = model.nextObjectID
                    while objectID == 0 || model.sources.values.contains(where: { $0.objectID == objectID }) { objectID &+= 1 }
                    model.nextObjectID = objectID &+ 1
                    let s = MSource(id: id, name: name, owner: user.uid, objectID: objectID)
                    model.sources[name] = s
                    model.sourceOrder.append(s)
                    model.everySource.append(s)
                    model.sourcesByUser[user.uid, default: 0] += 1
                    let got = try engine.objectID(of: id)
                    fuzzCheck(got == objectID, "new source id \(got), model \(objectID)")
                } catch {
                    fuzzCheck(error.errno == want, "mkdir \(name): \(error), model says \(want)")
                }
            case 3: // remove a source
                let name = sourceNames[input.below(sourceNames.count)]
                do {
                    let wakeups = try engine.removeSource(named: name)
                    guard let s = model.sources.removeValue(forKey: name) else { fuzzCheck(false, "removed a missing source"); return }
                    s.alive = false
                    model.sourceOrder.removeAll { $0 === s }
                    model.sourcesByUser[s.owner, default: 0] -= 1
                    while !s.watches.isEmpty { model.detach(0, from: s) }
                    same(wakeups, model, "rmdir \(name)")
                } catch {
                    fuzzCheck(error.errno == ENOENT && model.sources[name] == nil, "rmdir \(name): \(error)")
                }
            case 4: // resize
                guard let q = pickQueue() else { continue }
                let size = input.below(15)
                var want: Int32 = 0
                if !q.alive { want = ENOENT }
                else if !(1...limits.maxSize).contains(size) { want = EINVAL }
                else if size < q.records.count { want = EBUSY }
                else if size > q.capacity && model.totalSlots + size - q.capacity > limits.maxTotalSlots { want = ENOSPC }
                else if size > q.capacity && q.owner != 0 && model.slotsByUser[q.owner, default: 0] + size - q.capacity > limits.maxSlotsPerUser { want = ENOSPC }
                let got = errno { () throws(WQError) in try engine.setSize(of: q.id, to: size) }
                fuzzCheck(got == want, "resize \(q.name) to \(size): errno \(got), model \(want)")
                if got == 0 {
                    model.totalSlots += size - q.capacity
                    model.slotsByUser[q.owner, default: 0] += size - q.capacity
                    q.capacity = size
                }
            case 5: // set, append or clear a filter
                guard let q = pickQueue() else { continue }
                let count = input.below(5)
                let append = input.bool()
                var entries: [FilterEntry] = []
                var modelEntries: [(type: UInt32, subtypes: Set<UInt8>, infoFilter: UInt32, infoMask: UInt32)] = []
                var invalid = false
                for _ in 0..<count {
                    let type: UInt32 = [0x100, 0x100, 1, 2, 0][input.below(5)]
                    var subtypes = SubtypeSet()
                    var set = Set<UInt8>()
                    let bits = input.byte()
                    for bit in 0..<8 where bits >> bit & 1 == 1 {
                        let subtype = UInt8(bit) * (input.bool() ? 1 : 31)
                        subtypes.insert(subtype)
                        set.insert(subtype)
                    }
                    let masks: [UInt32] = [0, 0xff00, 0x10000, 0xffff_0000, 0x80, 0x7f]
                    let mask = masks[input.below(masks.count)]
                    let filterBits = input.oneIn(4) ? input.u32() : input.u32() & mask
                    if type == 0 || filterBits & ~mask != 0 || mask & 0x7f != 0 { invalid = true }
                    if let entry = try? FilterEntry(type: type, subtypes: subtypes, infoFilter: filterBits, infoMask: mask) {
                        entries.append(entry)
                        modelEntries.append((type, set, filterBits, mask))
                    }
                }
                if invalid { continue } // FilterEntry refused it: the grammar fuzzer covers those
                let combined = count == 0 ? [] : (append ? q.filter + modelEntries : modelEntries)
                var want: Int32 = 0
                if !q.alive { want = ENOENT } else if combined.count > limits.maxFilters { want = EINVAL }
                let got = errno { () throws(WQError) in
                    try engine.setFilter(of: q.id, count == 0 ? .clear : .entries(entries), append: append)
                }
                fuzzCheck(got == want, "filter \(q.name): errno \(got), model \(want)")
                if got == 0 {
                    q.filter = combined
                    let current = try? engine.filter(of: q.id)
                    fuzzCheck(current?.entries.count == combined.count, "filter of \(q.name) holds \(String(describing: current?.entries.count)) entries")
                    if !append { fuzzCheck(current?.entries == entries, "filter of \(q.name) reads back differently") }
                }
            case 6, 7: // add or remove a watch
                guard let s = pickSource() else { continue }
                let name = queueNames[input.below(queueNames.count)]
                let caller = users[input.below(users.count)]
                let watchID = input.byte()
                let adding = op == 6
                var want: Int32 = 0
                let q = model.queues[name]
                if !s.alive { want = ENOENT }
                else if adding {
                    if q == nil { want = ENOENT }
                    else if caller.uid != 0 && caller.uid != q?.owner { want = EACCES }
                    else if s.watches.contains(where: { $0.queue === q }) { want = EBUSY }
                    else if model.watchesByUser[caller.uid, default: 0] + 1 > limits.maxWatchesPerUser { want = EAGAIN }
                } else if q == nil || !s.watches.contains(where: { $0.queue === q }) {
                    want = ENOENT
                }
                do {
                    let wakeups = try engine.applyWatches([adding ? .add(queue: name, watchID: watchID) : .remove(queue: name)],
                                                          to: s.id, caller: caller)
                    fuzzCheck(want == 0, "watch \(adding) \(name) on \(s.name) succeeded, model says \(want)")
                    guard let q else { return }
                    if adding {
                        s.watches.append((q, watchID, caller.uid))
                        q.watched.append(s)
                        model.watchesByUser[caller.uid, default: 0] += 1
                    } else if let index = s.watches.firstIndex(where: { $0.queue === q }) {
                        model.detach(index, from: s)
                    }
                    same(wakeups, model, "watches \(s.name)")
                } catch {
                    fuzzCheck(error.errno == want, "watch \(adding) \(name) on \(s.name): \(error), model says \(want)")
                }
            case 8: // post text
                guard let s = pickSource() else { continue }
                let (text, records, parseError) = postText(&input, type: s.type)
                do {
                    let wakeups = try engine.postText(text, to: s.id)
                    fuzzCheck(parseError == 0 && s.alive, "post \(Grammar.quoted(text)) succeeded, model says \(parseError)")
                    post(records, from: s, model)
                    same(wakeups, model, "post \(Grammar.quoted(text))")
                } catch {
                    let want = parseError != 0 ? parseError : (s.alive ? 0 : ENOENT)
                    fuzzCheck(error.errno == want, "post \(Grammar.quoted(text)): \(error), model says \(want)")
                }
            case 9: // post binary
                guard let s = pickSource() else { continue }
                let (bytes, records) = postBinary(&input, type: s.type)
                do {
                    let wakeups = try bytes.withUnsafeBytes { (raw) throws(WQError) -> Wakeups in try engine.postBinary(raw, to: s.id) }
                    fuzzCheck(s.alive && records != nil, "post.bin \(fuzzHex(bytes)) succeeded")
                    post(records ?? [], from: s, model)
                    same(wakeups, model, "post.bin")
                } catch let error as WQError {
                    let want = !s.alive ? ENOENT : (records == nil ? EINVAL : 0)
                    fuzzCheck(error.errno == want, "post.bin \(fuzzHex(bytes)): \(error), model says \(want)")
                } catch {
                    fuzzCheck(false, "untyped error \(error)")
                }
            case 10: // read without waiting
                guard let q = pickQueue() else { continue }
                let capacity = input.oneIn(4) ? input.below(24) : input.below(256) * 2
                var buffer = [UInt8](repeating: 0xee, count: capacity)
                var result: Outcome
                var count = 0
                do {
                    count = try buffer.withUnsafeMutableBytes { (raw) throws(WQError) -> Int in try engine.read(from: q.id, into: raw) }
                    result = count == 0 ? .empty : .data(Array(buffer[0..<count]))
                } catch let error as WQError {
                    fuzzCheck(error.errno == EAGAIN || error.errno == ENOBUFS, "read: \(error)")
                    result = error.errno == ENOBUFS ? .tooSmall : .empty
                } catch {
                    fuzzCheck(false, "untyped error \(error)")
                    result = .empty
                }
                let want: Outcome = q.alive ? model.take(q, capacity: capacity) : .empty
                fuzzCheck(result == want, "read \(q.name) \(capacity): \(result) vs model \(want)")
                fuzzCheck(buffer[count...].allSatisfy { $0 == 0xee }, "read wrote past what it returned")
            case 11: // read that may wait
                guard let q = pickQueue() else { continue }
                let capacity = input.oneIn(3) ? input.below(24) : input.below(256) * 2
                let interrupt = input.oneIn(6)
                let token = nextToken
                nextToken += 1
                let attempt = engine.read(from: q.id, capacity: capacity, parkingAs: token, interrupted: { interrupt })
                let want: ReadAttempt
                if !q.alive { want = .endOfFile }
                else if !q.readable { want = interrupt ? .failure(EINTR) : .parked }
                else {
                    switch model.take(q, capacity: capacity) {
                    case .data(let bytes): want = .data(bytes)
                    case .tooSmall: want = .failure(ENOBUFS)
                    case .empty: want = .wouldBlock
                    }
                }
                fuzzCheck(attempt == want, "parking read \(q.name) \(capacity): \(attempt) vs model \(want)")
                if want == .parked {
                    q.parked.append((token, capacity))
                    parkedTokens.append(token)
                }
            case 12: // cancel a parked read
                guard !parkedTokens.isEmpty else { continue }
                let token = parkedTokens[input.below(parkedTokens.count)]
                let owner = model.everyQueue.first { $0.alive && $0.parked.contains { $0.token == token } }
                owner?.parked.removeAll { $0.token == token }
                let got = engine.cancelRead(token: token)
                fuzzCheck(got == (owner != nil), "cancel \(token): \(got)")
            case 13: // poll
                guard let q = pickQueue() else { continue }
                let owner = UInt64(input.below(3) + 1)
                let token: UInt64? = input.oneIn(4) ? nil : nextToken
                nextToken += 1
                let got = engine.poll(q.id, token: token, owner: owner)
                var want: (UInt32, [UInt64])
                if !q.alive { want = (PollEvents.hangUp, token.map { [$0] } ?? []) }
                else if q.readable { want = (PollEvents.readable, token.map { [$0] } ?? []) }
                else if let token {
                    if let index = q.pollers.firstIndex(where: { $0.owner == owner }) {
                        want = (0, [q.pollers[index].token])
                        q.pollers[index].token = token
                    } else {
                        q.pollers.append((owner, token))
                        want = (0, [])
                    }
                } else { want = (0, []) }
                fuzzCheck(got.events == want.0 && got.released == want.1, "poll \(q.name): \(got) vs model \(want)")
            case 14: // close an open file
                guard let q = pickQueue() else { continue }
                let owner = UInt64(input.below(3) + 1)
                var want: [UInt64] = []
                if q.alive, let index = q.pollers.firstIndex(where: { $0.owner == owner }) {
                    want = [q.pollers.remove(at: index).token]
                }
                let got = engine.closeFile(of: q.id, owner: owner)
                fuzzCheck(got == want, "close \(q.name): \(got) vs model \(want)")
            case 15: // retype a source
                guard let s = pickSource() else { continue }
                let type: UInt32 = [0x100, 1, 0, 0x1000000, 0xffffff, 7][input.below(6)]
                let want: Int32 = !s.alive ? ENOENT : ((1...0xff_ffff).contains(type) ? 0 : EINVAL)
                let got = errno { () throws(WQError) in try engine.setType(of: s.id, to: type) }
                fuzzCheck(got == want, "type \(type): \(got) vs \(want)")
                if got == 0 { s.type = type }
            case 16: // re-id a source
                guard let s = pickSource() else { continue }
                let objectID = UInt64(input.below(6))
                var want: Int32 = 0
                if !s.alive { want = ENOENT }
                else if !s.watches.isEmpty { want = EBUSY }
                else if model.sources.values.contains(where: { $0.objectID == objectID && $0 !== s }) { want = EEXIST }
                let got = errno { () throws(WQError) in try engine.setObjectID(of: s.id, to: objectID) }
                fuzzCheck(got == want, "id \(objectID): \(got) vs \(want)")
                if got == 0 { s.objectID = objectID }
            default: // compare everything visible
                compare(engine, model)
            }
        }
        compare(engine, model)
        // Teardown answers every parked read with end of file and returns every poll.
        let wakeups = engine.shutdown()
        let reads = model.queueOrder.flatMap { $0.parked.map(\.token) }
        let polls = model.queueOrder.flatMap { $0.pollers.map(\.token) }
        fuzzCheck(wakeups.reads.map(\.token).sorted() == reads.sorted() && wakeups.reads.allSatisfy { $0.result == .endOfFile },
                  "shutdown reads \(wakeups.reads) vs \(reads)")
        fuzzCheck(wakeups.polls.sorted() == polls.sorted(), "shutdown polls \(wakeups.polls) vs \(polls)")
        // The model's watches are cycles too.
        for q in model.everyQueue { q.watched = [] }
        for s in model.everySource { s.watches = [] }
    }

    static func post(_ records: [[UInt8]], from s: MSource, _ model: Model) {
        guard s.alive else { return }
        for record in records {
            for w in s.watches { model.deliver(record, to: w.queue, watchID: w.watchID) }
        }
        for w in s.watches { model.wake(w.queue) }
    }

    static func compare(_ engine: Engine, _ model: Model) {
        fuzzCheck(engine.queueNames() == model.queueOrder.map(\.name), "queue names \(engine.queueNames())")
        fuzzCheck(engine.sourceNames() == model.sourceOrder.map(\.name), "source names \(engine.sourceNames())")
        for q in model.everyQueue {
            guard q.alive else {
                fuzzCheck((try? engine.status(of: q.id)) == nil, "a removed queue has a status")
                continue
            }
            guard let status = try? engine.status(of: q.id) else { fuzzCheck(false, "no status for \(q.name)"); return }
            let counters = status.counters
            fuzzCheck(status.size == q.capacity && status.queued == q.records.count && status.bytes == q.bytes
                      && status.lossPending == q.lossPending && counters.posted == q.posted && counters.filtered == q.filtered
                      && counters.lost == q.lost && counters.read == q.read && status.watches == q.watched.count
                      && status.filters == q.filter.count && status.waiting == q.parked.count,
                      "status of \(q.name): \(status) vs model size \(q.capacity) queued \(q.records.count) bytes \(q.bytes) loss \(q.lossPending) posted \(q.posted) filtered \(q.filtered) lost \(q.lost) read \(q.read) watches \(q.watched.count) waiting \(q.parked.count)")
            fuzzCheck(counters.posted == counters.filtered + counters.lost + counters.read + UInt64(status.queued), "counters do not add up")
            fuzzCheck((try? engine.queuedBytes(of: q.id)) == q.bytes, "FIONREAD of \(q.name)")
        }
        for s in model.sourceOrder {
            let text = s.watches.map { "\($0.queue.name) \($0.watchID)\n" }.joined()
            fuzzCheck((try? engine.watchesText(of: s.id)) == text, "watches of \(s.name)")
            fuzzCheck((try? engine.objectID(of: s.id)) == s.objectID, "id of \(s.name)")
            fuzzCheck((try? engine.type(of: s.id)) == s.type, "type of \(s.name)")
        }
        for uid in [UInt32(0), 1000, 1001] {
            fuzzCheck(engine.watchCount(of: uid) == model.watchesByUser[uid, default: 0], "watches held by \(uid)")
        }
    }

    // MARK: generating posts

    /// A `post` write and the records it must make (type 0x100 stamped later as the
    /// source's type), or the errno of its first bad line.
    static func postText(_ input: inout FuzzInput, type: UInt32) -> (String, [[UInt8]], Int32) {
        var text = ""
        var records: [[UInt8]] = []
        var failure: Int32 = 0
        for _ in 0..<(input.below(4) + 1) {
            if input.oneIn(8) { text += input.bool() ? "\n" : "  # comment\n" }
            let subtype = input.byte()
            var line = input.oneIn(4) ? "0x" + String(subtype, radix: 16) : String(subtype)
            var payload: [UInt8] = []
            var typeInfo: UInt16 = 0
            var lineFailure: Int32 = 0
            var sawInfo = false
            for _ in 0..<input.below(5) {
                let kind = input.below(9)
                var bytes: [UInt8] = []
                var item: String
                switch kind {
                case 0:
                    typeInfo = input.u16()
                    item = "info=\(typeInfo)"
                    if sawInfo || !payload.isEmpty { lineFailure = EINVAL }
                    sawInfo = true
                case 1: let v = input.byte(); item = "u8=\(v)"; bytes = [v]
                case 2: let v = input.u16(); item = "u16=\(v)"; bytes = withUnsafeBytes(of: v.littleEndian, Array.init)
                case 3: let v = input.u32(); item = "u32=0x\(String(v, radix: 16))"; bytes = withUnsafeBytes(of: v.littleEndian, Array.init)
                case 4: let v = input.u64(); item = "u64=\(v)"; bytes = withUnsafeBytes(of: v.littleEndian, Array.init)
                case 5, 6: bytes = input.bytes(input.below(48)); item = "hex=" + fuzzHex(bytes)
                case 7:
                    bytes = (0..<input.below(70)).map { _ in UInt8(0x20 + input.below(95)) }
                    item = "str=" + String(decoding: bytes, as: UTF8.self)
                default: item = ["bogus=1", "u8=256", "u8", "hex=abc", "u16=-1"][input.below(5)]; lineFailure = EINVAL
                }
                line += " " + item
                if lineFailure != 0 { break }
                payload += bytes
                if payload.count + 8 > 127 { lineFailure = EMSGSIZE; break }
                if kind == 7 { break }
            }
            text += line + (input.oneIn(6) ? "\r\n" : "\n")
            if lineFailure != 0 && failure == 0 { failure = lineFailure }
            let length = 8 + payload.count
            var record: [UInt8] = [UInt8(truncatingIfNeeded: type), UInt8(truncatingIfNeeded: type >> 8),
                                   UInt8(truncatingIfNeeded: type >> 16), subtype, UInt8(length), 0,
                                   UInt8(truncatingIfNeeded: typeInfo), UInt8(truncatingIfNeeded: typeInfo >> 8)]
            record += payload
            records.append(record)
        }
        return (text, failure == 0 ? records : [], failure)
    }

    /// A `post.bin` write, and its records when it is valid for `type`.
    static func postBinary(_ input: inout FuzzInput, type: UInt32) -> ([UInt8], [[UInt8]]?) {
        var bytes: [UInt8] = []
        var records: [[UInt8]] = []
        var valid = true
        for _ in 0..<input.below(5) {
            let length = 8 + input.below(120)
            var recordType = type
            if input.oneIn(12) { recordType ^= UInt32(input.byte()) }
            var info = input.u32() & ~0x7f | UInt32(length)
            if input.oneIn(16) { info = info & ~0x7f | UInt32(input.below(128)); valid = false }
            var record = [UInt8(truncatingIfNeeded: recordType), UInt8(truncatingIfNeeded: recordType >> 8),
                          UInt8(truncatingIfNeeded: recordType >> 16), input.byte()]
            withUnsafeBytes(of: info.littleEndian) { record += $0 }
            record += input.bytes(length - 8)
            if recordType & 0xff_ffff != type { valid = false }
            bytes += record
            records.append(record)
        }
        if input.oneIn(16) { bytes += input.bytes(input.below(8) + 1); valid = false }
        // A changed length may still frame valid records by chance: the walk decides.
        if !valid {
            return (bytes, bytes.withUnsafeBytes { raw in
                ParserTargets.walk(raw, type: type).map { $0.map { Array(bytes[$0]) } }
            })
        }
        return (bytes, records)
    }
}
