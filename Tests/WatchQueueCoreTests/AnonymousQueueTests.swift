import Testing
@testable import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// Anonymous queues (DESIGN.md §7): a named queue turned into what a kernel
/// notification pipe is, and the kernel's filter struct translated.
@Suite("7. Anonymous queues and the kernel's filter")
struct AnonymousQueueTests {
    /// A queue watching source `s` (ID 1), opened once for reading and once for
    /// writing (as pipe2 gives both ends), then made anonymous.
    private func anonymous(_ f: Fixture, size: Int? = nil) throws -> (QueueID, SourceID) {
        let queue = try f.queue("q")
        let source = try f.source("s")
        try f.watches("q 1", on: source)
        f.engine.openedQueueFile(queue, reading: true, writing: false)
        f.engine.openedQueueFile(queue, reading: false, writing: true)
        _ = try f.engine.makeAnonymous(queue, caller: .root)
        if let size { try f.engine.setSizeByIoctl(of: queue, to: UInt64(size)) }
        return (queue, source)
    }

    @Test func theNameLeavesQueuesAndIsFreeAgain() throws {
        let f = Fixture()
        let (queue, source) = try anonymous(f)
        #expect(f.engine.isAnonymous(queue))
        #expect(f.engine.queue(named: "q") == nil)
        #expect(f.engine.queueNames().isEmpty)
        let other = try f.queue("q")
        #expect(other != queue && f.engine.queueNames() == ["q"])
        // The source still delivers to it, and lists it by a name no write can give.
        #expect(try f.engine.watchesText(of: source) == "\(Engine.anonymousName) 1\n")
        // Its companions are gone: nothing can size it by the file.
        expectFailure(EBUSY) { try f.engine.setSize(of: queue, to: 4) }
        // Again: nothing changes.
        #expect(try f.engine.makeAnonymous(queue, caller: .root).isEmpty)
    }

    @Test func onlyTheOwnerMakesAQueueAnonymous() throws {
        let f = Fixture()
        let alice = Credentials(uid: 1000, gid: 1000)
        let queue = try f.queue("q", owner: alice)
        f.engine.openedQueueFile(queue, reading: true, writing: false)
        expectFailure(EPERM, naming: ["q"]) { try f.engine.makeAnonymous(queue, caller: Credentials(uid: 1001, gid: 1001)) }
        _ = try f.engine.makeAnonymous(queue, caller: alice)
        #expect(f.engine.isAnonymous(queue))
    }

    @Test func postsBeforeSizingAreDroppedSilently() throws {
        let f = Fixture()
        let (queue, source) = try anonymous(f)
        try f.post("1 u64=1\n2 u64=2", to: source)
        let status = try f.status(queue)
        #expect(status.queued == 0 && status.counters == QueueCounters() && !status.lossPending)
        // Nothing can name it in a watches file; a removal record is dropped too
        // (the watch ends all the same).
        expectFailure(ENOENT) { try f.watches("!q", on: source) }
        _ = try f.engine.removeSource(named: "s")
        #expect(try f.status(queue).counters == QueueCounters())
        #expect(try f.status(queue).watches == 0)
    }

    @Test func sizingFollowsTheKernel() throws {
        let f = Fixture()
        let (queue, source) = try anonymous(f)
        expectFailure(EINVAL) { try f.engine.setSizeByIoctl(of: queue, to: 0) }
        expectFailure(EINVAL) { try f.engine.setSizeByIoctl(of: queue, to: 513) }
        try f.engine.setSizeByIoctl(of: queue, to: 1)
        #expect(try f.engine.size(of: queue) == 32)
        // The kernel checks "sized before" first: even a bad count is EBUSY now.
        expectFailure(EBUSY) { try f.engine.setSizeByIoctl(of: queue, to: 64) }
        expectFailure(EBUSY) { try f.engine.setSizeByIoctl(of: queue, to: 0) }
        for value in 0..<40 { try f.post("1 u64=\(value)", to: source) }
        let status = try f.status(queue)
        #expect(status.queued == 32 && status.counters.lost == 8)
        for (count, size) in [(32, 32), (33, 64), (500, 512), (512, 512)] {
            let g = Fixture()
            let (other, _) = try anonymous(g, size: count)
            #expect(try g.engine.size(of: other) == size)
        }
    }

    @Test func namedQueuesKeepTheMountsSizing() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        try f.engine.setSizeByIoctl(of: queue, to: 5)
        try f.engine.setSizeByIoctl(of: queue, to: 7)
        #expect(try f.engine.size(of: queue) == 7)
        expectFailure(EINVAL) { try f.engine.setSizeByIoctl(of: queue, to: 0) }
        expectFailure(EINVAL) { try f.engine.setSizeByIoctl(of: queue, to: UInt64(f.engine.limits.maxSize) + 1) }
    }

    @Test func readsEndOfFileOnceEmptyWithNoWriterLeft() throws {
        let f = Fixture()
        let (queue, source) = try anonymous(f, size: 32)
        try f.post("1 u64=1", to: source)
        #expect(f.engine.poll(queue, token: nil, owner: 1).events == PollEvents.readable)
        // The writer goes: a parked read would get nothing yet, records come first.
        #expect(f.engine.releasedQueueFile(queue, reading: false, writing: true).isEmpty)
        #expect(f.engine.poll(queue, token: nil, owner: 1).events == PollEvents.readable | PollEvents.hangUp)
        #expect(try f.read(queue).count == 16)
        #expect(try f.read(queue).isEmpty) // end of file, not EAGAIN
        #expect(f.engine.read(from: queue, capacity: 64, parkingAs: 5) == .endOfFile)
        #expect(f.engine.poll(queue, token: nil, owner: 1).events == PollEvents.hangUp)
    }

    @Test func theLastWriterEndsWaitingReadsAndWakesPollers() throws {
        let f = Fixture()
        let (queue, _) = try anonymous(f, size: 32)
        #expect(f.engine.read(from: queue, capacity: 64, parkingAs: 7) == .parked)
        #expect(f.engine.poll(queue, token: 8, owner: 1) == (0, []))
        // A reader's release changes nothing while a writer is left.
        f.engine.openedQueueFile(queue, reading: true, writing: false)
        #expect(f.engine.releasedQueueFile(queue, reading: true, writing: false).isEmpty)
        let wakeups = f.engine.releasedQueueFile(queue, reading: false, writing: true)
        #expect(wakeups.reads.map(\.token) == [7] && wakeups.reads.first?.result == .endOfFile)
        #expect(wakeups.polls == [8])
    }

    @Test func aPendingLossAloneIsNotPollIn() throws {
        let f = Fixture()
        let (queue, source) = try anonymous(f, size: 1)
        for value in 0..<33 { try f.post("1 u64=\(value)", to: source) }
        #expect(try f.read(queue, capacity: 32 * 16).count == 32 * 16)
        #expect(try f.status(queue).lossPending)
        #expect(f.engine.poll(queue, token: nil, owner: 1).events == 0)
        #expect(try f.read(queue) == Records.loss)
    }

    @Test func theLastReleaseDestroysItAndItsWatchesGoSilently() throws {
        let f = Fixture()
        let (queue, source) = try anonymous(f, size: 32)
        f.engine.openedQueueFile(queue, reading: true, writing: false) // inherited by a child
        _ = f.engine.releasedQueueFile(queue, reading: true, writing: false)
        _ = f.engine.releasedQueueFile(queue, reading: false, writing: true)
        #expect(try f.engine.size(of: queue) == 32) // one open file left
        #expect(f.engine.watchCount(of: 0) == 1)
        _ = f.engine.releasedQueueFile(queue, reading: true, writing: false)
        expectFailure(ENOENT) { try f.engine.size(of: queue) }
        #expect(try f.engine.watchesText(of: source) == "")
        #expect(f.engine.watchCount(of: 0) == 0)
        // Its slots are free again: a mount of few slots takes a new queue.
        #expect(f.engine.read(from: queue, capacity: 64, parkingAs: nil) == .endOfFile)
        try f.post("1 u64=1", to: source) // nobody watches; nothing breaks
    }

    @Test func namedQueuesNeverEndOfFile() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        f.engine.openedQueueFile(queue, reading: true, writing: false)
        #expect(f.engine.read(from: queue, capacity: 64, parkingAs: nil) == .wouldBlock)
        #expect(f.engine.releasedQueueFile(queue, reading: true, writing: false).isEmpty)
        #expect(try f.engine.size(of: queue) == 8)
    }

    @Test func slotsAreChargedAsSized() throws {
        var limits = Fixture.smallLimits(defaultSize: 8)
        limits.maxTotalSlots = 40
        let f = Fixture(limits: limits)
        let (queue, _) = try anonymous(f, size: 1) // 8 → 32 slots
        let big = try f.queue("big")
        expectFailure(ENOSPC) { try f.engine.setSize(of: big, to: 9) }
        _ = f.engine.releasedQueueFile(queue, reading: true, writing: false)
        _ = f.engine.releasedQueueFile(queue, reading: false, writing: true)
        try f.engine.setSize(of: big, to: 40) // every slot came back
    }

    // MARK: the kernel's filter struct

    /// A `struct watch_notification_filter` built from the kernel's entry struct.
    private func request(_ entries: [[UInt8]], count: UInt32? = nil, reserved: UInt32 = 0) -> [UInt8] {
        var bytes: [UInt8] = []
        for word in [count ?? UInt32(entries.count), reserved] { bytes += withUnsafeBytes(of: word.littleEndian, Array.init) }
        bytes += entries.joined()
        return bytes + [UInt8](repeating: 0, count: 712 - bytes.count)
    }

    private func entry(type: UInt32, infoFilter: UInt32 = 0, infoMask: UInt32 = 0, words: [UInt32] = Array(repeating: ~0, count: 8)) -> [UInt8] {
        cFilterEntry(type: type, infoFilter: infoFilter, infoMask: infoMask, subtypeWords: words)
    }

    private func parse(_ bytes: [UInt8]) throws -> Grammar.FilterWrite {
        try bytes.withUnsafeBytes { (raw) throws -> Grammar.FilterWrite in try KernelFilter.parse(raw) }
    }

    @Test func filterRequestsAreCheckedAsTheKernelDoes() throws {
        expectFailure(EINVAL, naming: ["17"]) { try parse(request([], count: 17)) }
        expectFailure(EINVAL, naming: ["reserved"]) { try parse(request([entry(type: 1)], reserved: 1)) }
        expectFailure(EINVAL, naming: ["entry 2"]) { try parse(request([entry(type: 1), entry(type: 1, infoFilter: 0x100, infoMask: 0)])) }
        expectFailure(EINVAL, naming: ["0x7f"]) { try parse(request([entry(type: 1, infoMask: 0x1)])) }
        // Even an entry the kernel would ignore is checked.
        expectFailure(EINVAL) { try parse(request([entry(type: 0x0100_0000, infoMask: 0x40)])) }
        expectFailure(EINVAL) { try parse([0, 0, 0]) }
        expectFailure(EINVAL, naming: ["need"]) { try parse(Array(request([entry(type: 1)]).prefix(20))) }
        #expect(try parse(request([], count: 0)) == .clear)
    }

    @Test func filterEntriesTranslateWithAll256Subtypes() throws {
        var words = [UInt32](repeating: 0, count: 8)
        words[0] = 0b101 // subtypes 0 and 2
        words[7] = 1 << 31 // subtype 255
        let write = try parse(request([entry(type: 1, infoFilter: 0x100, infoMask: 0xff00, words: words)]))
        guard case .entries(let entries) = write, let first = entries.first, entries.count == 1 else {
            Issue.record("not one entry: \(write)")
            return
        }
        #expect(first.type == 1 && first.infoFilter == 0x100 && first.infoMask == 0xff00)
        #expect(first.subtypes.kernelWords == words)
        #expect((0...255).filter { first.subtypes.contains(UInt8($0)) } == [0, 2, 255])
    }

    @Test func onlyMetaEntriesAdmitOnlyMetaRecords() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        let source = try f.source("s", type: 1, objectID: 42)
        try f.watches("q 1", on: source)
        try request([entry(type: 0)]).withUnsafeBytes { try f.engine.setKernelFilter(of: queue, $0) }
        #expect(try f.engine.filter(of: queue).entries.map(\.type) == [0])
        try f.post("1 u32=1 u32=0", to: source)
        try f.watches("!q", on: source)
        let got = records(in: try f.read(queue))
        #expect(got.count == 1 && got.first?.header.type == NotificationType.meta)
        #expect(try f.status(queue).counters.filtered == 1)
    }

    @Test func noSurvivingEntryRefusesAllButMeta() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        let source = try f.source("s", type: 1)
        try f.watches("q 1", on: source)
        try request([entry(type: 0x0100_0000)]).withUnsafeBytes { try f.engine.setKernelFilter(of: queue, $0) }
        #expect(!(try f.engine.filter(of: queue).isEmpty))
        try f.post("1 u64=1", to: source)
        #expect(try f.status(queue).counters.filtered == 1)
        // The kernel's {type 0, all} and {type 1, all}, as LTP sets it; then removed.
        try request([entry(type: 0), entry(type: 1)]).withUnsafeBytes { try f.engine.setKernelFilter(of: queue, $0) }
        try f.post("3 u64=1", to: source)
        #expect(try f.status(queue).queued == 1)
        try request([], count: 0).withUnsafeBytes { try f.engine.setKernelFilter(of: queue, $0) }
        #expect(try f.engine.filter(of: queue).isEmpty)
    }

    @Test func theTextGrammarStillRefusesTypeZero() {
        expectFailure(EINVAL) { try FilterEntry(type: 0) }
        expectFailure(EINVAL) { try Grammar.filter("type=0", maxEntries: 16) }
    }
}
