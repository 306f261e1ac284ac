import Testing
@testable import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// Rule 2: the queue — capacity, the ring, read assembly, resize, FIONREAD, counters.
@Suite("2. Queue")
struct QueueTests {
    // MARK: the ring itself

    /// Pushes `record` and reports whether it was queued.
    private func push(_ ring: RecordRing, _ record: [UInt8]) -> Bool {
        record.withUnsafeBytes { ring.push($0, info: RecordHeader(bytes: $0).info) }
    }

    private func read(_ ring: RecordRing, capacity: Int) -> (RecordRing.ReadOutcome, [UInt8]) {
        var buffer = [UInt8](repeating: 0, count: capacity)
        let outcome = buffer.withUnsafeMutableBytes { ring.read(into: $0) }
        if case .copied(let bytes, _) = outcome { return (outcome, Array(buffer.prefix(bytes))) }
        return (outcome, [])
    }

    @Test func ringHoldsExactlyItsCapacityInRecords() {
        for capacity in [1, 3, 33] {
            let ring = RecordRing(capacity: capacity)
            for index in 0..<capacity { #expect(push(ring, userRecord(subtype: UInt8(index)))) }
            #expect(ring.isFull && ring.count == capacity)
            #expect(!push(ring, userRecord(subtype: 99)))
            #expect(ring.count == capacity)
        }
    }

    @Test func ringSlotsAreAllocatedOnceAt128BytesPerRecord() {
        #expect(RecordRing.slotSize == 128)
        let ring = RecordRing(capacity: 4)
        // Wrapping around many times keeps order and never needs more room.
        var next: UInt64 = 0
        var expected: UInt64 = 0
        for round in 0..<50 {
            for _ in 0..<(round % 4 + 1) {
                #expect(push(ring, userRecord(subtype: 1, payload: Records.littleEndianBytes(next))))
                next += 1
            }
            let (_, bytes) = read(ring, capacity: 4096)
            for record in records(in: bytes) {
                let value = record.bytes[8...].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                #expect(value == expected)
                expected += 1
            }
        }
        #expect(expected == next)
    }

    @Test func ringKeepsA127ByteRecordIntactNextToTheLossMark() {
        let ring = RecordRing(capacity: 1)
        let record = userRecord(subtype: 0xff, payload: Array(repeating: 0xff, count: 119))
        #expect(record.count == 127)
        #expect(push(ring, record))
        #expect(!push(ring, userRecord(subtype: 1))) // marks the 127-byte record
        let (outcome, bytes) = read(ring, capacity: 127 + 8)
        #expect(outcome == .copied(bytes: 127, records: 1))
        #expect(bytes == record)
        #expect(ring.lossPending)
        #expect(read(ring, capacity: 8).1 == Records.loss)
    }

    @Test func ringReplacesInfoWithTheDeliveredValue() {
        let ring = RecordRing(capacity: 2)
        let record = userRecord(subtype: 1, payload: [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(record.withUnsafeBytes { ring.push($0, info: 16 | 0x2a00 | 0xbeef_0000) })
        #expect(read(ring, capacity: 64).1 == Array(record[0..<4]) + [16, 0x2a, 0xef, 0xbe] + Array(record[8...]))
    }

    /// The ring against a plain array of records under the kernel's rules: records of
    /// every length wrap the packed buffer at every offset, batches and single pushes
    /// mix, drops mark, reads meet every buffer size, resizes move it all.
    @Test func ringMatchesAPlainModelAcrossWrapsBatchesMarksAndResizes() {
        struct Model {
            var records: [(bytes: [UInt8], marked: Bool)] = []
            var lossPending = false
            var capacity: Int
            mutating func push(_ record: [UInt8]) -> Bool {
                guard records.count < capacity else { records[records.count - 1].marked = true; return false }
                records.append((record, false))
                return true
            }
            mutating func read(room: Int) -> (RecordRing.ReadOutcome, [UInt8]) {
                var out: [UInt8] = [], taken = 0
                while true {
                    if lossPending {
                        guard room - out.count >= 8 else { break }
                        out += Records.loss
                        lossPending = false
                    }
                    guard let first = records.first, first.bytes.count <= room - out.count else { break }
                    records.removeFirst()
                    out += first.bytes
                    taken += 1
                    lossPending = first.marked
                    if out.count == room || records.isEmpty { break }
                }
                if !out.isEmpty { return (.copied(bytes: out.count, records: taken), out) }
                return (records.isEmpty && !lossPending ? .empty : .bufferTooSmall, [])
            }
        }
        // xorshift64: the same sequence on every run.
        var state: UInt64 = 0x9e37_79b9_7f4a_7c15
        func random(_ bound: Int) -> Int {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Int(state % UInt64(bound))
        }
        var serial: UInt8 = 0
        func record(watchID: UInt8) -> [UInt8] {
            serial &+= 1
            let length = 8 + random(120)
            var bytes = userRecord(subtype: serial, payload: (0..<(length - 8)).map { UInt8(truncatingIfNeeded: $0) ^ serial })
            bytes[5] = watchID
            return bytes
        }
        for capacity in [1, 2, 3, 5, 17] {
            let ring = RecordRing(capacity: capacity)
            var model = Model(capacity: capacity)
            for _ in 0..<8_000 {
                switch random(8) {
                case 0, 1:
                    let one = record(watchID: UInt8(random(256)))
                    #expect(push(ring, one) == model.push(one))
                case 2, 3:
                    let watchID = UInt8(random(256))
                    let batch = (0..<(1 + random(6))).map { _ in record(watchID: UInt8(random(256))) }
                    let queued = Array(batch.joined()).withUnsafeBytes {
                        ring.push(batch: $0, records: batch.count, watchID: watchID)
                    }
                    let modelQueued = batch.filter { var one = $0; one[5] = watchID; return model.push(one) }.count
                    #expect(queued == modelQueued)
                case 4, 5, 6:
                    let room = random(300)
                    let (expected, expectedBytes) = model.read(room: room)
                    let (outcome, bytes) = read(ring, capacity: room)
                    #expect(outcome == expected)
                    #expect(bytes == expectedBytes)
                default:
                    let size = max(model.records.count, 1 + random(20))
                    ring.resize(to: size)
                    model.capacity = size
                }
                #expect(ring.count == model.records.count)
                #expect(ring.byteCount == model.records.reduce(0) { $0 + $1.bytes.count })
                #expect(ring.lossPending == model.lossPending)
            }
        }
    }

    // MARK: capacity and resize, through the engine

    @Test func newQueueHasTheDefaultSizeAndCapacityIsExactNotRoundedTo32() throws {
        let f = Fixture(limits: Fixture.smallLimits(defaultSize: 5))
        let queue = try f.queue("q")
        #expect(try f.engine.size(of: queue) == 5)
        let source = try f.source("s")
        try f.watches("q 0", on: source)
        for _ in 0..<7 { try f.post("1", to: source) }
        let status = try f.status(queue)
        #expect(status.queued == 5 && status.counters.lost == 2 && status.size == 5)
        try f.engine.setSize(of: queue, to: 33)
        #expect(try f.engine.size(of: queue) == 33)
    }

    @Test func defaultLimitsAreDocumented() {
        let limits = Limits()
        #expect(limits.defaultSize == 256)
        #expect(limits.maxSize == 16_384)
        #expect(limits.maxFilters == 16)
        #expect(limits.maxWatchesPerUser == 4_096)
    }

    @Test func sizeMustBeOneToMax() throws {
        var limits = Fixture.smallLimits()
        limits.maxSize = 512
        let f = Fixture(limits: limits)
        let queue = try f.queue("q")
        expectFailure(EINVAL, naming: ["0"]) { try f.engine.setSize(of: queue, to: 0) }
        expectFailure(EINVAL, naming: ["513"]) { try f.engine.setSize(of: queue, to: 513) }
        expectFailure(EINVAL) { try f.engine.setSize(of: queue, to: -1) }
        try f.engine.setSize(of: queue, to: 1)
        #expect(try f.engine.size(of: queue) == 1)
        try f.engine.setSize(of: queue, to: 512)
        #expect(try f.engine.size(of: queue) == 512)
    }

    @Test func shrinkingBelowTheQueuedRecordsIsEBUSY() throws {
        let f = Fixture()
        let queue = try f.queue("q", size: 8)
        let source = try f.source("s")
        try f.watches("q 1", on: source)
        try f.post("1\n2\n3", to: source)
        expectFailure(EBUSY, naming: ["3", "2"]) { try f.engine.setSize(of: queue, to: 2) }
        #expect(try f.engine.size(of: queue) == 8)
        try f.engine.setSize(of: queue, to: 3)
        #expect(try f.engine.size(of: queue) == 3)
        #expect(records(in: try f.read(queue)).map(\.header.subtype) == [1, 2, 3])
    }

    @Test func resizeKeepsRecordsTheirOrderAndTheLossMark() throws {
        let f = Fixture()
        let queue = try f.queue("q", size: 3)
        let source = try f.source("s")
        try f.watches("q 1", on: source)
        try f.post("1\n2", to: source)
        _ = try f.read(queue, capacity: 8)               // head moves: the ring wraps below
        try f.post("3\n4\n5", to: source)                 // 2 3 4 queued, 5 dropped: 4 marked
        try f.engine.setSize(of: queue, to: 10)
        try f.post("6", to: source)
        let stream = records(in: try f.read(queue))
        #expect(stream.map { isLoss($0.header) ? "L" : "\($0.header.subtype)" } == ["2", "3", "4", "L", "6"])
        try f.engine.setSize(of: queue, to: 1)
        #expect(try f.engine.size(of: queue) == 1)
    }

    @Test func mountWideSlotLimitIsENOSPC() throws {
        var limits = Fixture.smallLimits(defaultSize: 4)
        limits.maxTotalSlots = 10
        let f = Fixture(limits: limits)
        let a = try f.queue("a")
        try f.queue("b")
        expectFailure(ENOSPC) { try f.queue("c") }
        expectFailure(ENOSPC) { try f.engine.setSize(of: a, to: 7) }
        try f.engine.setSize(of: a, to: 6)
        try f.engine.setSize(of: a, to: 1)
        try f.queue("c")
    }

    // MARK: read assembly

    @Test func readReturnsAsManyWholeRecordsAsFit() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        let source = try f.source("s")
        try f.watches("q 1", on: source)
        try f.post("1 u64=1\n2 u64=2\n3 u64=3", to: source) // three 16-byte records
        let first = try f.read(queue, capacity: 40)
        #expect(first.count == 32)
        #expect(records(in: first).map(\.header.subtype) == [1, 2])
        #expect(try f.status(queue).queued == 1)
        let second = try f.read(queue, capacity: 16)
        #expect(records(in: second).map(\.header.subtype) == [3])
        expectFailure(EAGAIN) { try f.read(queue) }
    }

    @Test func firstRecordBiggerThanTheBufferIsENOBUFSAndConsumesNothing() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        let source = try f.source("s")
        try f.watches("q 1", on: source)
        try f.post("1 u64=7", to: source)
        expectFailure(ENOBUFS, naming: ["15"]) { try f.read(queue, capacity: 15) }
        expectFailure(ENOBUFS) { try f.read(queue, capacity: 1) }
        let status = try f.status(queue)
        #expect(status.queued == 1 && status.bytes == 16 && status.counters.read == 0)
        #expect(try f.read(queue, capacity: 16) == cHeader(type: NotificationType.user, subtype: 1, length: 16, watchID: 1) + Records.littleEndianBytes(UInt64(7)))
    }

    @Test func readOfAnEmptyQueueIsEAGAIN() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        expectFailure(EAGAIN) { try f.read(queue) }
        #expect(f.engine.read(from: queue, capacity: 100, parkingAs: nil) == .wouldBlock)
    }

    @Test func readOfAGoneQueueIsEndOfFile() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        _ = try f.engine.removeQueue(named: "q")
        #expect(try f.read(queue) == [])
        #expect(f.engine.read(from: queue, capacity: 100, parkingAs: 1) == .endOfFile)
        expectFailure(ENOENT) { try f.engine.status(of: queue) }
        expectFailure(ENOENT) { try f.engine.removeQueue(named: "q") }
    }

    // MARK: FIONREAD and status

    @Test func fionreadCountsQueuedRecordBytesButNotAPendingLossRecord() throws {
        let f = Fixture()
        let queue = try f.queue("q", size: 2)
        let source = try f.source("s")
        try f.watches("q 1", on: source)
        #expect(try f.engine.queuedBytes(of: queue) == 0)
        try f.post("1 u32=5\n2 str=hello", to: source)
        #expect(try f.engine.queuedBytes(of: queue) == 12 + 13)
        try f.post("3", to: source) // dropped: record 2 marked
        #expect(try f.engine.queuedBytes(of: queue) == 25)
        _ = try f.read(queue, capacity: 25) // both records; the loss is owed
        #expect(try f.status(queue).lossPending)
        #expect(try f.engine.queuedBytes(of: queue) == 0)
        expectFailure(ENOENT) { _ = try f.engine.removeQueue(named: "q"); return try f.engine.queuedBytes(of: queue) }
    }

    @Test func statusCountsQueuedBytesLostPostedFilteredAndRead() throws {
        let f = Fixture()
        let queue = try f.queue("q", size: 3)
        try f.engine.setFilter(of: queue, Grammar.filter("type=user subtypes=0-9", maxEntries: 16), append: false)
        let source = try f.source("s")
        try f.watches("q 1", on: source)
        try f.post("1\n2\n50\n3\n4\n5", to: source) // 50 filtered; 1 2 3 queued; 4 5 lost
        var status = try f.status(queue)
        #expect(status.size == 3)
        #expect(status.queued == 3)
        #expect(status.bytes == 24)
        #expect(status.counters == QueueCounters(posted: 6, filtered: 1, lost: 2, read: 0))
        #expect(status.watches == 1 && status.filters == 1)
        _ = try f.read(queue, capacity: 16)
        status = try f.status(queue)
        #expect(status.counters.read == 2 && status.queued == 1)
        let c = status.counters
        #expect(c.posted == c.filtered + c.lost + c.read + UInt64(status.queued))
    }

    @Test func statusTextHasOneKeyValueLinePerField() throws {
        let f = Fixture()
        let queue = try f.queue("q", size: 4)
        f.engine.openReader(of: queue, delta: 2)
        _ = f.engine.read(from: queue, capacity: 64, parkingAs: 9)
        let text = try f.status(queue).text
        #expect(text == """
            size 4
            queued 0
            bytes 0
            lost 0
            posted 0
            filtered 0
            read 0
            loss_pending 0
            watches 0
            filters 0
            readers 2
            waiting 1

            """)
    }

    @Test func countersInvariantHoldsAfterEveryStep() throws {
        let f = Fixture()
        let queue = try f.queue("q", size: 2)
        let source = try f.source("s")
        try f.engine.setFilter(of: queue, Grammar.filter("type=user subtypes=1", maxEntries: 16), append: false)
        func check() throws {
            let status = try f.status(queue)
            let c = status.counters
            #expect(c.posted == c.filtered + c.lost + c.read + UInt64(status.queued))
        }
        try f.watches("q 1", on: source)
        for step in 0..<40 {
            try f.post(step % 3 == 0 ? "2" : "1", to: source)
            try check()
            if step % 4 == 0 { _ = try? f.read(queue, capacity: 16) }
            try check()
        }
        try f.watches("!q", on: source) // the removal record counts as posted too
        try check()
    }
}
