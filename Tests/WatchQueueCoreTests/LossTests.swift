import Testing
@testable import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// Rule 2, loss semantics: where the kernel places the 8-byte loss record.
/// Posts are text lines `SUBTYPE`, so every record is 8 bytes and subtypes name them.
@Suite("2. Queue: loss placement")
struct LossTests {
    /// A queue of `size` records watched (ID 1) by a fresh source.
    private func setUp(size: Int) throws -> (Fixture, QueueID, SourceID) {
        let f = Fixture()
        let queue = try f.queue("q", size: size)
        let source = try f.source("s")
        try f.watches("q 1", on: source)
        return (f, queue, source)
    }

    /// Reads and names the records: their subtype, or "L" for a loss record.
    private func readNames(_ f: Fixture, _ queue: QueueID, capacity: Int = 4096) throws -> [String] {
        records(in: try f.read(queue, capacity: capacity)).map { isLoss($0.header) ? "L" : "\($0.header.subtype)" }
    }

    private func record(_ subtype: UInt8) -> [UInt8] {
        cHeader(type: NotificationType.user, subtype: subtype, length: 8, watchID: 1)
    }

    @Test func dropMarksTheNewestRecordAndTheLossFollowsItInTheSameRead() throws {
        let (f, queue, source) = try setUp(size: 2)
        try f.post("1\n2\n3", to: source)          // 3 dropped: 2 marked
        _ = try f.read(queue, capacity: 8)          // 1
        try f.post("4", to: source)                 // 2 is marked and followed by 4
        let bytes = try f.read(queue)
        #expect(bytes == record(2) + cLoss() + record(4), "\(bytes.hex)")
        #expect(try f.status(queue).counters.lost == 1)
    }

    @Test func lossAfterTheLastQueuedRecordOpensTheNextRead() throws {
        let (f, queue, source) = try setUp(size: 2)
        try f.post("1\n2\n3", to: source)
        #expect(try f.read(queue) == record(1) + record(2))
        // Only the loss is left: the queue still polls readable and read returns it alone.
        let status = try f.status(queue)
        #expect(status.queued == 0 && status.lossPending)
        #expect(f.engine.poll(queue, token: nil, owner: 1).events == PollEvents.readable)
        #expect(f.engine.poll(queue, token: 5, owner: 1) == (PollEvents.readable, [5]))
        #expect(try f.read(queue) == cLoss())
        #expect(f.engine.poll(queue, token: nil, owner: 1).events == 0)
        expectFailure(EAGAIN) { try f.read(queue) }
    }

    @Test func lossOwedAfterTheLastRecordComesBeforeLaterRecords() throws {
        let (f, queue, source) = try setUp(size: 2)
        try f.post("1\n2\n3", to: source)
        _ = try f.read(queue)
        try f.post("4", to: source)
        #expect(try f.read(queue) == cLoss() + record(4))
    }

    @Test func markedRecordThatExactlyFillsTheBufferPutsTheLossAtTheStartOfTheNextRead() throws {
        let (f, queue, source) = try setUp(size: 3)
        try f.post("1\n2\n3\n4", to: source)       // 4 dropped: 3 marked
        _ = try f.read(queue, capacity: 8)          // 1
        try f.post("5", to: source)                 // 2 3* 5
        #expect(try f.read(queue, capacity: 16) == record(2) + record(3))
        #expect(try f.status(queue).lossPending)
        #expect(try f.read(queue) == cLoss() + record(5))
    }

    @Test func markedRecordWithRoomLeftUnder8BytesDefersTheLoss() throws {
        let (f, queue, source) = try setUp(size: 2)
        try f.post("1\n2\n3", to: source)           // 2 marked
        _ = try f.read(queue, capacity: 8)
        try f.post("4", to: source)
        #expect(try f.read(queue, capacity: 15) == record(2))
        #expect(try f.read(queue, capacity: 16) == cLoss() + record(4))
    }

    @Test func pendingLossWithABufferUnder8BytesIsENOBUFSAndConsumesNothing() throws {
        let (f, queue, source) = try setUp(size: 1)
        try f.post("1\n2", to: source)
        #expect(try f.read(queue) == record(1))
        for capacity in [1, 7] {
            expectFailure(ENOBUFS) { try f.read(queue, capacity: capacity) }
        }
        #expect(f.engine.read(from: queue, capacity: 4, parkingAs: nil) == .failure(ENOBUFS))
        #expect(try f.status(queue).lossPending)
        #expect(try f.read(queue, capacity: 8) == cLoss())
    }

    @Test func pendingLossThatFitsWhenTheNextRecordDoesNotReturnsJustTheLoss() throws {
        let (f, queue, source) = try setUp(size: 1)
        try f.post("1\n2", to: source)
        _ = try f.read(queue)
        try f.post("3 u64=3", to: source)          // a 16-byte record
        #expect(try f.read(queue, capacity: 20) == cLoss())
        #expect(try f.status(queue).queued == 1)
        #expect(try f.read(queue, capacity: 16).count == 16)
    }

    @Test func consecutiveDropsGiveOneLossRecord() throws {
        let (f, queue, source) = try setUp(size: 2)
        try f.post("1\n2\n3\n4\n5\n6", to: source)
        #expect(try f.status(queue).counters.lost == 4)
        _ = try f.read(queue, capacity: 8)
        try f.post("7", to: source)
        #expect(try readNames(f, queue) == ["2", "L", "7"])
    }

    @Test func dropSuccessDropGivesTwoLossRecords() throws {
        let (f, queue, source) = try setUp(size: 2)
        try f.post("1\n2\n3", to: source)           // drop: 2 marked
        _ = try f.read(queue, capacity: 8)          // 1 read, room for one
        try f.post("4\n5", to: source)              // success (4), drop (5): 4 marked
        #expect(try f.status(queue).counters.lost == 2)
        #expect(try readNames(f, queue) == ["2", "L", "4"])
        #expect(try readNames(f, queue) == ["L"])
    }

    @Test func lossRecordsAreNotCountedAsReadRecords() throws {
        let (f, queue, source) = try setUp(size: 1)
        try f.post("1\n2", to: source)
        _ = try f.read(queue)
        _ = try f.read(queue)
        let counters = try f.status(queue).counters
        #expect(counters == QueueCounters(posted: 2, filtered: 0, lost: 1, read: 1))
    }

    @Test func removalRecordToAFullQueueIsLostAndReportedAsLoss() throws {
        let (f, queue, source) = try setUp(size: 1)
        try f.post("1", to: source)
        try f.watches("!q", on: source)
        #expect(try readNames(f, queue) == ["1"])
        #expect(try readNames(f, queue) == ["L"])
        #expect(try f.status(queue).counters.lost == 1)
    }
}
