import Testing
@testable import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// Reads that wait and poll: the engine never blocks a thread; it hands back
/// replies and poll tokens in `Wakeups` for the caller to send.
@Suite("2. Queue: parked reads and poll")
struct ParkedReadTests {
    private func setUp(size: Int = 8) throws -> (Fixture, QueueID, SourceID) {
        let f = Fixture()
        let queue = try f.queue("q", size: size)
        let source = try f.source("s")
        try f.watches("q 1", on: source)
        return (f, queue, source)
    }

    @Test func readOfAnEmptyQueueParksAndAPostAnswersItWithTheData() throws {
        let (f, queue, source) = try setUp()
        #expect(f.engine.read(from: queue, capacity: 100, parkingAs: 41) == .parked)
        #expect(try f.status(queue).waiting == 1)
        let wakeups = try f.post("1\n2", to: source)
        #expect(wakeups.reads.count == 1)
        #expect(wakeups.reads.first?.token == 41)
        #expect(wakeups.reads.first?.result == .data(cHeader(type: 0x100, subtype: 1, length: 8, watchID: 1)
                                                      + cHeader(type: 0x100, subtype: 2, length: 8, watchID: 1)))
        #expect(try f.status(queue).waiting == 0)
        #expect(try f.status(queue).counters.read == 2)
        expectFailure(EAGAIN) { try f.read(queue) }
    }

    @Test func parkedReadsAreAnsweredInOrderWhileRecordsLast() throws {
        let (f, queue, source) = try setUp()
        for token: UInt64 in [1, 2, 3] {
            #expect(f.engine.read(from: queue, capacity: 8, parkingAs: token) == .parked)
        }
        let wakeups = try f.post("7\n8", to: source)
        #expect(wakeups.reads.map(\.token) == [1, 2])
        #expect(wakeups.reads.map(\.result) == [.data(cHeader(type: 0x100, subtype: 7, length: 8, watchID: 1)),
                                                .data(cHeader(type: 0x100, subtype: 8, length: 8, watchID: 1))])
        #expect(f.engine.cancelRead(token: 3))
    }

    @Test func parkedReadWithABufferTooSmallIsAnsweredENOBUFSAndConsumesNothing() throws {
        let (f, queue, source) = try setUp()
        #expect(f.engine.read(from: queue, capacity: 10, parkingAs: 5) == .parked)
        let wakeups = try f.post("1 u64=1", to: source)
        #expect(wakeups.reads.map(\.token) == [5])
        #expect(wakeups.reads.first?.result == .failure(ENOBUFS))
        #expect(try f.status(queue).queued == 1)
        #expect(f.engine.read(from: queue, capacity: 10, parkingAs: 6) == .failure(ENOBUFS))
    }

    @Test func aReadyQueueAnswersAtOnceWithoutParking() throws {
        let (f, queue, source) = try setUp()
        try f.post("3", to: source)
        #expect(f.engine.read(from: queue, capacity: 64, parkingAs: 9) == .data(cHeader(type: 0x100, subtype: 3, length: 8, watchID: 1)))
        #expect(try f.status(queue).waiting == 0)
    }

    @Test func aFilteredPostWakesNobody() throws {
        let (f, queue, source) = try setUp()
        try f.engine.setFilter(of: queue, Grammar.filter("type=user subtypes=9", maxEntries: 16), append: false)
        #expect(f.engine.read(from: queue, capacity: 64, parkingAs: 1) == .parked)
        #expect(f.engine.poll(queue, token: 2, owner: 1) == (0, []))
        #expect(try f.post("1", to: source).isEmpty)
        let wakeups = try f.post("9", to: source)
        #expect(wakeups.reads.map(\.token) == [1])
        // The parked read took the record: the queue is not ready, the poller waits on.
        #expect(wakeups.polls.isEmpty)
        #expect(try f.post("9", to: source).polls == [2])
    }

    @Test func cancelReadIsTrueOnceAndFalseAfterAWakeup() throws {
        let (f, queue, source) = try setUp()
        #expect(f.engine.read(from: queue, capacity: 64, parkingAs: 7) == .parked)
        #expect(f.engine.cancelRead(token: 7))
        #expect(!f.engine.cancelRead(token: 7))
        // A cancelled read is not answered by a later post.
        #expect(try f.post("1", to: source).reads.isEmpty)
        _ = try f.read(queue)

        #expect(f.engine.read(from: queue, capacity: 64, parkingAs: 8) == .parked)
        #expect(try f.post("2", to: source).reads.map(\.token) == [8])
        #expect(!f.engine.cancelRead(token: 8))
        #expect(!f.engine.cancelRead(token: 999))
    }

    @Test func anInterruptSeenBeforeParkingFailsWithEINTRAndParksNothing() throws {
        let (f, queue, source) = try setUp()
        #expect(f.engine.read(from: queue, capacity: 64, parkingAs: 1, interrupted: { true }) == .failure(EINTR))
        #expect(try f.status(queue).waiting == 0)
        #expect(!f.engine.cancelRead(token: 1))
        #expect(try f.post("1", to: source).reads.isEmpty)
        // With records ready the interrupt is not asked: the read simply succeeds.
        #expect(f.engine.read(from: queue, capacity: 64, parkingAs: 2, interrupted: { true })
                == .data(cHeader(type: 0x100, subtype: 1, length: 8, watchID: 1)))
    }

    @Test func cancelReadFindsTheParkedReadByTokenOnAnyQueue() throws {
        let f = Fixture()
        let a = try f.queue("a")
        let b = try f.queue("b")
        #expect(f.engine.read(from: a, capacity: 64, parkingAs: 100) == .parked)
        #expect(f.engine.read(from: b, capacity: 64, parkingAs: 200) == .parked)
        #expect(f.engine.cancelRead(token: 200))
        #expect(try f.status(b).waiting == 0)
        #expect(try f.status(a).waiting == 1)
        #expect(f.engine.cancelRead(token: 100))
        #expect(try f.status(a).waiting == 0)
    }

    @Test func aRemovalRecordWakesAParkedRead() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        let source = try f.source("s", objectID: 3)
        try f.watches("q 1", on: source)
        #expect(f.engine.read(from: queue, capacity: 64, parkingAs: 4) == .parked)
        let wakeups = try f.watches("!q", on: source)
        #expect(wakeups.reads.map(\.token) == [4])
        #expect(wakeups.reads.first?.result == .data(cRemoval(watchID: 1, objectID: 3)))
        #expect(f.engine.read(from: queue, capacity: 64, parkingAs: 5) == .parked)
        #expect(try f.engine.removeSource(named: "s").isEmpty) // no longer watched: nothing to say
    }

    @Test func removingAQueueEndsParkedReadsWithEndOfFileAndReturnsPollTokens() throws {
        let (f, queue, _) = try setUp()
        #expect(f.engine.read(from: queue, capacity: 64, parkingAs: 1) == .parked)
        #expect(f.engine.read(from: queue, capacity: 64, parkingAs: 2) == .parked)
        #expect(f.engine.poll(queue, token: 10, owner: 1) == (0, []))
        let wakeups = try f.engine.removeQueue(named: "q")
        #expect(wakeups.reads.map(\.token) == [1, 2])
        #expect(wakeups.reads.allSatisfy { $0.result == .endOfFile })
        #expect(wakeups.polls == [10])
        #expect(!f.engine.cancelRead(token: 1))
        #expect(f.engine.poll(queue, token: 11, owner: 1) == (PollEvents.hangUp, [11]))
    }

    @Test func shutdownEndsEveryParkedReadAndReturnsEveryPollToken() throws {
        let f = Fixture()
        let a = try f.queue("a")
        let b = try f.queue("b")
        #expect(f.engine.read(from: a, capacity: 64, parkingAs: 1) == .parked)
        #expect(f.engine.read(from: b, capacity: 64, parkingAs: 2) == .parked)
        #expect(f.engine.poll(a, token: 3, owner: 1) == (0, []))
        #expect(f.engine.poll(b, token: 4, owner: 1) == (0, []))
        let wakeups = f.engine.shutdown()
        #expect(Set(wakeups.reads.map(\.token)) == [1, 2])
        #expect(wakeups.reads.allSatisfy { $0.result == .endOfFile })
        #expect(Set(wakeups.polls) == [3, 4])
        #expect(try f.status(a).waiting == 0)
        #expect(f.engine.shutdown().isEmpty)
    }

    @Test func pollIsReadableWithRecordsOrAPendingLossAndKeepsTokensOnlyWhenNotReady() throws {
        let (f, queue, source) = try setUp(size: 1)
        #expect(f.engine.poll(queue, token: nil, owner: 1) == (0, []))
        #expect(f.engine.poll(queue, token: 20, owner: 1) == (0, []))
        let wakeups = try f.post("1\n2", to: source)
        #expect(wakeups.polls == [20])
        #expect(wakeups.reads.isEmpty)
        // The token was released with the wakeup: a second post does not repeat it.
        #expect(try f.post("3", to: source).polls.isEmpty)
        #expect(f.engine.poll(queue, token: 21, owner: 1) == (PollEvents.readable, [21]))
        _ = try f.read(queue)
        // Only the loss record is pending: still readable (the kernel would say no).
        #expect(f.engine.poll(queue, token: 22, owner: 1) == (PollEvents.readable, [22]))
        _ = try f.read(queue)
        #expect(f.engine.poll(queue, token: 23, owner: 1) == (0, []))
    }

    @Test func aNewPollOfTheSameOpenFileReplacesItsEarlierTokenAndOthersAreKept() throws {
        let (f, queue, source) = try setUp()
        #expect(f.engine.poll(queue, token: 30, owner: 7) == (0, []))
        // The kernel polls again through the same open file: the earlier token is released.
        #expect(f.engine.poll(queue, token: 31, owner: 7) == (0, [30]))
        #expect(f.engine.poll(queue, token: 32, owner: 8) == (0, []))
        #expect(Set(try f.post("1", to: source).polls) == [31, 32])
    }
}
