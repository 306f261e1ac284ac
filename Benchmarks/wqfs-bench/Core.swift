// Part 1: the engine in process, no FUSE: deliveries per second and memory per object.
#if canImport(Glibc)
import Glibc
#endif
import WatchQueueCore

enum CoreBench {
    static let recordLength = 16

    /// `count` records of type 256, subtype 1, `length` bytes each (16 unless told,
    /// at least 16), payload a counter then zeros.
    static func records(_ count: Int, length: Int = recordLength, type: UInt32 = NotificationType.user,
                        subtype: UInt8 = 1) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(count * length)
        for index in 0..<count {
            bytes += Records.littleEndianBytes(type | UInt32(subtype) << 24)
            bytes += Records.littleEndianBytes(UInt32(length))
            bytes += Records.littleEndianBytes(UInt64(index))
            bytes += [UInt8](repeating: 0, count: length - 16)
        }
        return bytes
    }

    static func bigLimits(defaultSize: Int = 256) -> Limits {
        var limits = Limits()
        limits.defaultSize = defaultSize
        limits.maxQueues = 1 << 20
        limits.maxSources = 1 << 20
        limits.maxWatchesPerUser = 1 << 24
        limits.maxTotalSlots = 1 << 34
        return limits
    }

    /// Four entries where only the last one passes the records, each failing as late
    /// as it can (same type, subtype allowed, info test fails).
    static func worstCaseFilter(type: UInt32) -> [FilterEntry] {
        var entries = [FilterEntry]()
        for typeInfo in 1...3 {
            entries.append(try! FilterEntry(type: type, subtypes: .all, infoFilter: UInt32(typeInfo) << 16, infoMask: 0xffff_0000))
        }
        entries.append(try! FilterEntry(type: type))
        return entries
    }

    struct DeliveryResult {
        var copies: Int
        var postSeconds: Double
        var totalSeconds: Double
        var postRate: Double { Double(copies) / postSeconds }
        var cycleRate: Double { Double(copies) / totalSeconds }
    }

    /// Posts 4 KiB batches (256 records) to a source watched by `queues` queues,
    /// draining every queue after each batch, for about `duration` seconds.
    static func deliveries(queues: Int, filter: Bool, duration: Double) -> DeliveryResult {
        let engine = Engine(limits: bigLimits(defaultSize: 256))
        let source = try! engine.createSource(named: "s", owner: .root)
        var ids = [QueueID]()
        for index in 0..<queues {
            let id = try! engine.createQueue(named: "q\(index)", owner: .root)
            if filter { try! engine.setFilter(of: id, .entries(worstCaseFilter(type: NotificationType.user)), append: false) }
            ids.append(id)
        }
        _ = try! engine.applyWatches((0..<queues).map { .add(queue: "q\($0)", watchID: UInt8($0 % 256)) }, to: source, caller: .root)
        let batch = records(256)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { buffer.deallocate() }
        var result = DeliveryResult(copies: 0, postSeconds: 0, totalSeconds: 0)
        let deadline = nanotime() + UInt64(duration * 1e9)
        batch.withUnsafeBytes { batch in
            // Warm up once, then measure.
            var first = true
            while true {
                let t0 = nanotime()
                _ = try! engine.postBinary(batch, to: source)
                let t1 = nanotime()
                for id in ids {
                    let n = try! engine.read(from: id, into: buffer)
                    precondition(n == 4096, "drained \(n) bytes")
                }
                let t2 = nanotime()
                if first { first = false; continue }
                result.copies += 256 * queues
                result.postSeconds += seconds(t0, t1)
                result.totalSeconds += seconds(t0, t2)
                if t2 > deadline { break }
            }
        }
        return result
    }

    /// Text posts in process: 100-line writes (`1 u64=1234567`) to a source watched
    /// by one queue, drained after each write; records per second.
    static func textPosts(duration: Double) -> Double {
        let engine = Engine(limits: bigLimits(defaultSize: 256))
        let source = try! engine.createSource(named: "s", owner: .root)
        let queue = try! engine.createQueue(named: "q", owner: .root)
        _ = try! engine.applyWatches([.add(queue: "q", watchID: 1)], to: source, caller: .root)
        let text = String(repeating: "1 u64=1234567\n", count: 100)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { buffer.deallocate() }
        var records = 0
        let start = nanotime()
        let deadline = start + UInt64(duration * 1e9)
        var now = start
        while now < deadline {
            _ = try! engine.postText(text, to: source)
            _ = try! engine.read(from: queue, into: buffer)
            records += 100
            now = nanotime()
        }
        return Double(records) / seconds(start, now)
    }

    struct MemoryResult {
        var perSlot: Double
        var perIdleQueue: Double
        var perSource: Double
        var perWatch: Double
        var objects: (queues: Int, slots: Int, sources: Int, watches: Int)
    }

    /// RSS differences over many objects. Every engine stays alive to the end, so
    /// freed memory is never reused by a later step and each difference is its own.
    static func memory(queues: Int = 10_000, sources: Int = 100_000, watchSources: Int = 10) -> MemoryResult {
        var keep = [Engine]()
        // Idle queues of size 1 (one slot each, never written).
        let queueEngine = Engine(limits: bigLimits(defaultSize: 1))
        keep.append(queueEngine)
        let r0 = residentBytes()
        var ids = [QueueID]()
        ids.reserveCapacity(queues)
        let names = (0..<queues).map { "q\($0)" }
        let r0b = residentBytes()
        for name in names { ids.append(try! queueEngine.createQueue(named: name, owner: .root)) }
        let r1 = residentBytes()

        // Watches: `watchSources` sources each watched by every queue.
        var sourceIDs = [SourceID]()
        for index in 0..<watchSources { sourceIDs.append(try! queueEngine.createSource(named: "w\(index)", owner: .root)) }
        let commands: [Grammar.WatchCommand] = names.enumerated().map { .add(queue: $1, watchID: UInt8($0 % 256)) }
        let r2 = residentBytes()
        for source in sourceIDs { _ = try! queueEngine.applyWatches(commands, to: source, caller: .root) }
        let r3 = residentBytes()

        // Slots: regrow every queue to 257 slots (freeing its 1-slot ring) and fill
        // them all with the largest records, the worst case (the packed ring's
        // bytes are only resident once written).
        for id in ids { try! queueEngine.setSize(of: id, to: 257) }
        let batch = records(257, length: RecordLayout.maxLength)
        batch.withUnsafeBytes { _ = try! queueEngine.postBinary($0, to: sourceIDs[0]) }
        let r4 = residentBytes()

        // Sources, unwatched.
        let sourceEngine = Engine(limits: bigLimits())
        keep.append(sourceEngine)
        let sourceNames = (0..<sources).map { "s\($0)" }
        let r5 = residentBytes()
        for name in sourceNames { try! sourceEngine.createSource(named: name, owner: .root) }
        let r6 = residentBytes()
        withExtendedLifetime(keep) {}
        _ = r0
        return MemoryResult(
            perSlot: Double(r4 - r3) / Double(queues * 257),
            perIdleQueue: Double(r1 - r0b) / Double(queues),
            perSource: Double(r6 - r5) / Double(sources),
            perWatch: Double(r3 - r2) / Double(queues * watchSources),
            objects: (queues, queues * 257, sources, queues * watchSources))
    }
}
