import Testing
@testable import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

// Issue 6 (hardening): limits one user cannot use to starve the others, kept poll
// tokens that must not outlive their open file, and object-id bookkeeping that
// stays cheap whatever ids users set.
@Suite("7. Hardening") struct HardeningTests {
    static let alice = Credentials(uid: 1000, gid: 1000)
    static let bob = Credentials(uid: 1001, gid: 1001)

    @Test func perUserQueueLimitIsENOSPCAndLeavesOthersTheirShare() throws {
        var limits = Fixture.smallLimits(defaultSize: 2)
        limits.maxQueuesPerUser = 3
        let f = Fixture(limits: limits)
        for index in 0..<3 { try f.queue("a\(index)", owner: Self.alice) }
        expectFailure(ENOSPC, naming: ["1000", "3 queues"]) { try f.queue("a3", owner: Self.alice) }
        // Bob and root still have theirs; root is held only by the mount's limit.
        for index in 0..<3 { try f.queue("b\(index)", owner: Self.bob) }
        for index in 0..<5 { try f.queue("r\(index)") }
        // A removed queue gives its share back; a chown does not move the charge.
        _ = try f.engine.removeQueue(named: "a0")
        let moved = try f.queue("a0", owner: Self.alice)
        _ = try f.engine.changeMetadata(of: moved, file: .queue, MetadataChange(uid: 1001))
        expectFailure(ENOSPC) { try f.queue("a4", owner: Self.alice) }
        expectFailure(ENOSPC) { try f.queue("b3", owner: Self.bob) }
    }

    @Test func perUserSourceLimitIsENOSPC() throws {
        var limits = Fixture.smallLimits()
        limits.maxSourcesPerUser = 2
        let f = Fixture(limits: limits)
        try f.source("a0", owner: Self.alice)
        try f.source("a1", owner: Self.alice)
        expectFailure(ENOSPC, naming: ["1000", "2 sources"]) { try f.source("a2", owner: Self.alice) }
        try f.source("b0", owner: Self.bob)
        try f.source("r0"); try f.source("r1"); try f.source("r2")
        _ = try f.engine.removeSource(named: "a1")
        try f.source("a2", owner: Self.alice)
    }

    @Test func perUserSlotLimitHoldsOnCreateAndResize() throws {
        var limits = Fixture.smallLimits(defaultSize: 4)
        limits.maxSlotsPerUser = 10
        let f = Fixture(limits: limits)
        let a = try f.queue("a", owner: Self.alice)
        try f.queue("b", owner: Self.alice)                       // 8 of 10
        expectFailure(ENOSPC, naming: ["1000", "12", "10"]) { try f.queue("c", owner: Self.alice) }
        expectFailure(ENOSPC, naming: ["per-user"]) { try f.engine.setSize(of: a, to: 7) }
        #expect(try f.engine.size(of: a) == 4)
        try f.engine.setSize(of: a, to: 6)                        // 10 of 10
        try f.engine.setSize(of: a, to: 1)                        // 5 of 10
        try f.queue("c", owner: Self.alice)                       // 9 of 10
        // Bob's and root's queues are not charged to Alice.
        let bobs = try f.queue("bobs", owner: Self.bob)
        try f.engine.setSize(of: bobs, to: 10)
        let roots = try f.queue("roots")
        try f.engine.setSize(of: roots, to: 100)
        // Removing a queue gives its slots back.
        _ = try f.engine.removeQueue(named: "c")
        try f.engine.setSize(of: a, to: 2)
    }

    @Test func mountWideLimitsStillHoldForEveryone() throws {
        var limits = Fixture.smallLimits(defaultSize: 1)
        limits.maxQueues = 3
        let f = Fixture(limits: limits)
        try f.queue("a", owner: Self.alice)
        try f.queue("b", owner: Self.bob)
        try f.queue("r")
        expectFailure(ENOSPC, naming: ["mount", "3 queues"]) { try f.queue("s") }
    }

    @Test func closingAnOpenFileReleasesItsKeptPoll() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        let source = try f.source("s")
        try f.watches("q 1", on: source)
        // Open file 7 polls and closes; open file 8 polls and stays open.
        #expect(f.engine.poll(queue, token: 70, owner: 7) == (0, []))
        #expect(f.engine.poll(queue, token: 80, owner: 8) == (0, []))
        #expect(f.engine.closeFile(of: queue, owner: 7) == [70])
        #expect(f.engine.closeFile(of: queue, owner: 7) == [])
        #expect(f.engine.closeFile(of: queue, owner: 9) == [])
        // Only the open one is notified: no token comes back twice.
        #expect(try f.post("1", to: source).polls == [80])
        // Many poll/close cycles keep nothing.
        _ = try f.read(queue)
        for owner in UInt64(100)..<1100 {
            #expect(f.engine.poll(queue, token: owner * 10, owner: owner) == (0, []))
            #expect(f.engine.closeFile(of: queue, owner: owner) == [owner * 10])
        }
        #expect(try f.post("2", to: source).polls == [])
        // A queue that is gone has nothing to release.
        #expect(f.engine.poll(queue, token: 5, owner: 5) == (PollEvents.readable, [5]))
        _ = try f.engine.removeQueue(named: "q")
        #expect(f.engine.closeFile(of: queue, owner: 5) == [])
    }

    @Test func handSetIdsInTheWayAreSkippedQuickly() throws {
        var limits = Fixture.smallLimits()
        limits.maxSources = 20_000
        let f = Fixture(limits: limits)
        // Park 5 000 hand-set ids right where the automatic ones are heading.
        for index in 0..<5_000 { try f.source("h\(index)", objectID: UInt64(10 + index)) }
        let clock = ContinuousClock()
        let elapsed = try clock.measure {
            for index in 0..<5_000 { try f.source("n\(index)") }
        }
        #expect(elapsed < .seconds(5), "making sources scanned the others: \(elapsed)")
        var seen = Set<UInt64>()
        for name in f.engine.sourceNames() {
            let id = try f.engine.objectID(of: #require(f.engine.source(named: name)))
            #expect(id != 0 && seen.insert(id).inserted, "id \(id) given twice")
        }
        // The index follows ids that change and sources that go.
        let moved = try #require(f.engine.source(named: "h0"))
        try f.engine.setObjectID(of: moved, to: 1_000_000)
        let n0 = try #require(f.engine.source(named: "n0"))
        expectFailure(EEXIST, naming: ["'h0'"]) { try f.engine.setObjectID(of: n0, to: 1_000_000) }
        try f.engine.setObjectID(of: n0, to: 10)                 // h0's old id is free
        _ = try f.engine.removeSource(named: "h0")
        try f.engine.setObjectID(of: n0, to: 1_000_000)          // and so is its new one
        try f.engine.setObjectID(of: n0, to: 1_000_000)          // setting one's own id is fine
    }
}
