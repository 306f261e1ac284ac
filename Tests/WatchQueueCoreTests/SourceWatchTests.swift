import Testing
@testable import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// Rule 4: sources, watches, removal, destruction and posting.
@Suite("4. Sources and watches")
struct SourceWatchTests {
    // MARK: sources

    @Test func sourcesGetUniqueNonZeroAutoAssignedIDs() throws {
        let f = Fixture()
        var ids: Set<UInt64> = []
        for index in 0..<20 { ids.insert(try f.engine.objectID(of: f.source("s\(index)"))) }
        #expect(ids.count == 20)
        #expect(!ids.contains(0))
    }

    @Test func autoAssignedIDsSkipIDsSetByHand() throws {
        let f = Fixture()
        let first = try f.source("a")
        let firstID = try f.engine.objectID(of: first)
        try f.source("b", objectID: firstID + 1)
        try f.source("c", objectID: firstID + 2)
        let d = try f.source("d")
        let ids = try ["a", "b", "c", "d"].map { name in try f.engine.objectID(of: f.engine.source(named: name)!) }
        #expect(Set(ids).count == 4)
        #expect(try f.engine.objectID(of: d) == firstID + 3)
    }

    @Test func idIsSettableWhileUnwatchedOnly() throws {
        let f = Fixture()
        try f.queue("q")
        let source = try f.source("s")
        try f.engine.setObjectID(of: source, to: 0xffff_ffff_ffff_ffff)
        #expect(try f.engine.objectID(of: source) == .max)
        try f.watches("q 1", on: source)
        expectFailure(EBUSY, naming: ["1 watches"]) { try f.engine.setObjectID(of: source, to: 5) }
        #expect(try f.engine.objectID(of: source) == .max)
        try f.watches("!q", on: source)
        try f.engine.setObjectID(of: source, to: 5)
        #expect(try f.engine.objectID(of: source) == 5)
    }

    @Test func idUsedByAnotherSourceIsEEXISTButResettingOwnIDIsFine() throws {
        let f = Fixture()
        let a = try f.source("a", objectID: 42)
        let b = try f.source("b")
        expectFailure(EEXIST, naming: ["'a'", "42"]) { try f.engine.setObjectID(of: b, to: 42) }
        try f.engine.setObjectID(of: a, to: 42)
        try f.engine.setObjectID(of: b, to: 0)
        #expect(try f.engine.objectID(of: b) == 0)
    }

    @Test func newSourcePostsTypeUser0x100AndTypeIsSettable1To0xffffff() throws {
        let f = Fixture()
        let source = try f.source("s")
        #expect(try f.engine.type(of: source) == 0x100)
        #expect(NotificationType.user == 0x100)
        expectFailure(EINVAL, naming: ["0"]) { try f.engine.setType(of: source, to: 0) }
        expectFailure(EINVAL, naming: ["16777216"]) { try f.engine.setType(of: source, to: 0x100_0000) }
        try f.engine.setType(of: source, to: 0xff_ffff)
        #expect(try f.engine.type(of: source) == 0xff_ffff)
        try f.engine.setType(of: source, to: NotificationType.keyNotify)
        #expect(try f.engine.type(of: source) == 1)
    }

    @Test func sourceAndQueueNamesAreUniqueAndListedInCreationOrder() throws {
        let f = Fixture()
        try f.source("z")
        try f.source("a")
        expectFailure(EEXIST, naming: ["'a'"]) { try f.source("a") }
        try f.queue("y")
        try f.queue("b")
        expectFailure(EEXIST, naming: ["'b'"]) { try f.queue("b") }
        #expect(f.engine.sourceNames() == ["z", "a"])
        #expect(f.engine.queueNames() == ["y", "b"])
        expectFailure(EINVAL) { try f.queue("a.size") }
        expectFailure(EINVAL) { try f.source("") }
    }

    // MARK: adding watches

    @Test func watchIDsRange0To255() throws {
        let f = Fixture()
        let a = try f.queue("a")
        let b = try f.queue("b")
        let source = try f.source("s")
        try f.watches("a 0\nb 255", on: source)
        #expect(try f.engine.watchesText(of: source) == "a 0\nb 255\n")
        try f.post("1", to: source)
        #expect(records(in: try f.read(a)).first?.header.watchID == 0)
        #expect(records(in: try f.read(b)).first?.header.watchID == 255)
        expectFailure(EINVAL, naming: ["256"]) { try f.watches("a 256", on: source) }
    }

    @Test func secondWatchOfASourceByTheSameQueueIsEBUSYWhateverItsID() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        let source = try f.source("s")
        try f.watches("q 1", on: source)
        expectFailure(EBUSY, naming: ["'q'", "'s'"]) { try f.watches("q 1", on: source) }
        expectFailure(EBUSY) { try f.watches("q 2", on: source) }
        // Within one write, too; and then nothing at all is applied.
        let other = try f.source("t")
        try f.queue("r")
        expectFailure(EBUSY, naming: ["command 3"]) { try f.watches("r 1\nq 1\nq 2", on: other) }
        #expect(try f.engine.watchesText(of: other) == "")
        #expect(try f.status(queue).watches == 1)
        // Another queue may watch the same source.
        try f.watches("r 1", on: source)
        #expect(try f.engine.watchesText(of: source) == "q 1\nr 1\n")
    }

    @Test func watchesOverThePerUserLimitAreEAGAIN() throws {
        var limits = Fixture.smallLimits()
        limits.maxWatchesPerUser = 2
        let f = Fixture(limits: limits)
        let alice = Credentials(uid: 1000, gid: 1000)
        let bob = Credentials(uid: 1001, gid: 1001)
        for name in ["a", "b", "c"] { try f.queue(name, owner: alice) }
        try f.queue("bobs", owner: bob)
        let source = try f.source("s")
        let other = try f.source("t")
        try f.watches("a 1\nb 1", on: source, caller: alice)
        #expect(f.engine.watchCount(of: 1000) == 2)
        expectFailure(EAGAIN, naming: ["1000", "2"]) { try f.watches("c 1", on: source, caller: alice) }
        expectFailure(EAGAIN) { try f.watches("c 1", on: other, caller: alice) }
        // Another user has their own allowance.
        try f.watches("bobs 1", on: source, caller: bob)
        // Removing a watch gives the allowance back.
        try f.watches("!a", on: source, caller: alice)
        #expect(f.engine.watchCount(of: 1000) == 1)
        try f.watches("c 1", on: source, caller: alice)
        #expect(f.engine.watchCount(of: 1000) == 2)
        // So do destroying a queue and destroying a source.
        _ = try f.engine.removeQueue(named: "c")
        #expect(f.engine.watchCount(of: 1000) == 1)
        _ = try f.engine.removeSource(named: "s")
        #expect(f.engine.watchCount(of: 1000) == 0)
        #expect(f.engine.watchCount(of: 1001) == 0)
    }

    @Test func removingAnotherUsersWatchDoesNotRaiseTheCallersAllowance() throws {
        var limits = Fixture.smallLimits()
        limits.maxWatchesPerUser = 1
        let f = Fixture(limits: limits)
        let alice = Credentials(uid: 1000, gid: 1000)
        let rootq = try f.queue("rootq")
        for name in ["a", "b"] { try f.queue(name, owner: alice) }
        let source = try f.source("s")
        try f.watches("rootq 1", on: source)                 // root's watch
        try f.watches("a 1", on: source, caller: alice)       // alice at her limit
        // Ending a watch needs read access to its queue, as the kernel needs its fd.
        expectFailure(EACCES, naming: ["rootq"]) { try f.watches("!rootq", on: source, caller: alice) }
        _ = try f.engine.changeMetadata(of: rootq, file: .queue, MetadataChange(mode: 0o644))
        expectFailure(EAGAIN, naming: ["1000"]) { try f.watches("!rootq\nb 1", on: source, caller: alice) }
        #expect(f.engine.watchCount(of: 1000) == 1)
        #expect(try f.engine.watchesText(of: source) == "rootq 1\na 1\n")
        // Removing her own watch in the same write does make room.
        try f.watches("!a\nb 1", on: source, caller: alice)
        #expect(f.engine.watchCount(of: 1000) == 1)
        // So does removing one she added earlier in the same write.
        try f.watches("!b\na 2\n!a\nb 3", on: source, caller: alice)
        #expect(f.engine.watchCount(of: 1000) == 1)
        #expect(try f.engine.watchesText(of: source) == "rootq 1\nb 3\n")
    }

    @Test func watchingAMissingQueueIsENOENT() throws {
        let f = Fixture()
        let source = try f.source("s")
        expectFailure(ENOENT, naming: ["'nope'"]) { try f.watches("nope 1", on: source) }
    }

    @Test func watchingNeedsReadAccessToTheQueueAndTheSource() throws {
        let f = Fixture()
        let alice = Credentials(uid: 1000, gid: 1000)
        let mallory = Credentials(uid: 1002, gid: 1002)
        let queue = try f.queue("q", owner: alice)       // owner-only: 0o600
        #expect(f.engine.metadata(of: queue, file: .queue)?.mode == 0o600)
        let source = try f.engine.createSource(named: "s", owner: alice, mode: 0o700)
        try f.queue("m", owner: mallory)
        expectFailure(EACCES, naming: ["'q'"]) { try f.watches("q 1", on: source, caller: mallory) }
        expectFailure(EACCES, naming: ["'s'"]) { try f.watches("m 1", on: source, caller: mallory) }
        try f.watches("q 1", on: source, caller: alice)
    }

    @Test func aWriteOfWatchCommandsIsAllOrNothing() throws {
        let f = Fixture()
        let a = try f.queue("a")
        let source = try f.source("s")
        expectFailure(ENOENT, naming: ["command 2", "'missing'"]) { try f.watches("a 1\nmissing 2", on: source) }
        #expect(try f.engine.watchesText(of: source) == "")
        #expect(try f.status(a).watches == 0)
        // A bad line in the text stops the parse before the engine sees anything.
        expectFailure(EINVAL, naming: ["line 2"]) { try f.watches("a 1\na x", on: source) }
        #expect(try f.engine.watchesText(of: source) == "")
    }

    // MARK: removing watches

    @Test func removingAWatchSendsARemovalRecordToThatQueueOnly() throws {
        let f = Fixture()
        let a = try f.queue("a")
        let b = try f.queue("b")
        let source = try f.source("s", objectID: 0xabc)
        try f.watches("a 3\nb 4", on: source)
        try f.watches("!a", on: source)
        #expect(try f.read(a) == cRemoval(watchID: 3, objectID: 0xabc))
        expectFailure(EAGAIN) { try f.read(b) }
        #expect(try f.engine.watchesText(of: source) == "b 4\n")
        #expect(try f.status(a).watches == 0)
        try f.post("1", to: source)
        expectFailure(EAGAIN) { try f.read(a) }
    }

    @Test func removingAWatchThatDoesNotExistIsENOENT() throws {
        let f = Fixture()
        try f.queue("a")
        let source = try f.source("s")
        expectFailure(ENOENT, naming: ["'a'", "'s'"]) { try f.watches("!a", on: source) }
        expectFailure(ENOENT, naming: ["'gone'"]) { try f.watches("!gone", on: source) }
        try f.watches("a 1", on: source)
        try f.watches("!a", on: source)
        expectFailure(ENOENT) { try f.watches("!a", on: source) }
        expectFailure(ENOENT) { try f.watches("a 1\n!a\n!a", on: source) }
    }

    // MARK: destroying

    @Test func destroyingASourceSendsEachWatchingQueueARemovalRecordWithItsOwnWatchID() throws {
        let f = Fixture()
        let queues = try ["a", "b", "c"].map { name in try f.queue(name) }
        let source = try f.source("s", objectID: 0x1122_3344_5566_7788)
        try f.watches("a 10\nb 20\nc 30", on: source)
        let wakeups = try f.engine.removeSource(named: "s")
        #expect(wakeups.isEmpty)
        for (queue, watchID) in zip(queues, [UInt8(10), 20, 30]) {
            #expect(try f.read(queue) == cRemoval(watchID: watchID, objectID: 0x1122_3344_5566_7788))
            #expect(try f.status(queue).watches == 0)
        }
        #expect(f.engine.source(named: "s") == nil)
        expectFailure(ENOENT) { try f.post("1", to: source) }
        expectFailure(ENOENT) { try f.engine.removeSource(named: "s") }
    }

    @Test func destroyingAQueueDetachesItsWatchesSilently() throws {
        let f = Fixture()
        try f.queue("a")
        let b = try f.queue("b")
        let source = try f.source("s")
        let other = try f.source("t")
        try f.watches("a 1\nb 2", on: source)
        try f.watches("a 5", on: other)
        _ = try f.engine.removeQueue(named: "a")
        #expect(try f.engine.watchesText(of: source) == "b 2\n")
        #expect(try f.engine.watchesText(of: other) == "")
        expectFailure(EAGAIN) { try f.read(b) } // no removal record anywhere
        // The source can be watched again by a new queue of the same name.
        let again = try f.queue("a")
        try f.watches("a 9", on: source)
        try f.post("1", to: source)
        #expect(records(in: try f.read(again)).map(\.header.watchID) == [9])
    }

    // MARK: posting

    @Test func postDeliversOneCopyPerWatchingQueueWithThatWatchsID() throws {
        let f = Fixture()
        let a = try f.queue("a")
        let b = try f.queue("b")
        let c = try f.queue("c")
        let source = try f.source("s")
        try f.watches("a 1\nb 2", on: source)
        try f.post("5 info=0xbeef u32=0x01020304", to: source)
        for (queue, watchID) in [(a, UInt8(1)), (b, 2)] {
            #expect(try f.read(queue) == cHeader(type: 0x100, subtype: 5, length: 12, watchID: watchID, typeInfo: 0xbeef) + [4, 3, 2, 1])
            #expect(try f.status(queue).counters.posted == 1)
        }
        expectFailure(EAGAIN) { try f.read(c) }
        #expect(try f.status(c).counters.posted == 0)
    }

    @Test func postToAnUnwatchedSourceGoesNowhere() throws {
        let f = Fixture()
        let source = try f.source("s")
        let wakeups = try f.post("1\n2", to: source)
        #expect(wakeups.isEmpty)
    }

    @Test func postAppliesEachQueuesOwnFilter() throws {
        let f = Fixture()
        let a = try f.queue("a")
        let b = try f.queue("b")
        try f.engine.setFilter(of: b, Grammar.filter("type=user subtypes=2", maxEntries: 16), append: false)
        let source = try f.source("s")
        try f.watches("a 1\nb 1", on: source)
        try f.post("1\n2\n3", to: source)
        #expect(records(in: try f.read(a)).map(\.header.subtype) == [1, 2, 3])
        #expect(records(in: try f.read(b)).map(\.header.subtype) == [2])
        #expect(try f.status(b).counters == QueueCounters(posted: 3, filtered: 2, lost: 0, read: 1))
    }

    @Test func postToAFullQueueMarksLossThereOnly() throws {
        let f = Fixture()
        let small = try f.queue("small", size: 1)
        let big = try f.queue("big", size: 8)
        let source = try f.source("s")
        try f.watches("small 1\nbig 2", on: source)
        try f.post("1\n2\n3", to: source)
        #expect(try f.status(small).counters.lost == 2)
        #expect(try f.status(big).counters.lost == 0)
        #expect(records(in: try f.read(big)).map(\.header.subtype) == [1, 2, 3])
        #expect(try f.read(small) == cHeader(type: 0x100, subtype: 1, length: 8, watchID: 1))
        #expect(try f.read(small) == cLoss())
    }

    @Test func postUsesTheSourcesTypeAtTheTimeOfThePost() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        let source = try f.source("s")
        try f.watches("q 1", on: source)
        try f.post("1", to: source)
        try f.engine.setType(of: source, to: 0xabcdef)
        try f.post("2", to: source)
        #expect(records(in: try f.read(queue)).map(\.header.type) == [0x100, 0xabcdef])
    }
}
