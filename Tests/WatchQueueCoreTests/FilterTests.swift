import Testing
@testable import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// Rule 3: filters — entries, validation, the match rule, replace/append/clear.
@Suite("3. Filters")
struct FilterTests {
    // MARK: entries and validation

    @Test func entryTypeMustBe1To0xffffff() throws {
        expectFailure(EINVAL, naming: ["0"]) { try FilterEntry(type: 0) }
        expectFailure(EINVAL, naming: ["16777216"]) { try FilterEntry(type: 0x100_0000) }
        #expect(try FilterEntry(type: 1).type == 1)
        #expect(try FilterEntry(type: 0xff_ffff).type == 0xff_ffff)
    }

    @Test func entryDefaultsToAllSubtypesAndNoInfoTest() throws {
        let entry = try FilterEntry(type: 5)
        #expect(entry.subtypes == .all)
        #expect(entry.infoFilter == 0 && entry.infoMask == 0)
    }

    @Test func filterBitsOutsideTheMaskAreEINVAL() {
        expectFailure(EINVAL, naming: ["0x100", "0x0"]) { try FilterEntry(type: 1, infoFilter: 0x100, infoMask: 0) }
        expectFailure(EINVAL, naming: ["0x30000", "0x10000"]) { try FilterEntry(type: 1, infoFilter: 0x3_0000, infoMask: 0x1_0000) }
        #expect(failure { try FilterEntry(type: 1, infoFilter: 0x1_0000, infoMask: 0x1_0000) } == nil)
    }

    @Test func maskTouchingTheLengthBitsIsEINVAL() {
        for mask: UInt32 in [0x1, 0x40, 0x7f, 0xffff_ffff, 0x0000_ff01] {
            expectFailure(EINVAL, naming: ["0x\(String(mask, radix: 16))", "length"]) { try FilterEntry(type: 1, infoMask: mask) }
        }
        // Bit 7 is not a length bit; the watch ID and type-specific bits are fine.
        for mask: UInt32 in [0x80, 0xff00, 0xffff_0000, 0xffff_ff80] {
            #expect(failure { try FilterEntry(type: 1, infoMask: mask) } == nil)
        }
    }

    @Test func moreEntriesThanTheLimitAreEINVAL() throws {
        let seventeen = (1...17).map { "type=\($0)" }.joined(separator: "\n")
        expectFailure(EINVAL, naming: ["17", "16"]) { try Grammar.filter(seventeen, maxEntries: 16) }
        let sixteen = (1...16).map { "type=\($0)" }.joined(separator: "\n")
        guard case .entries(let entries) = try Grammar.filter(sixteen, maxEntries: 16) else {
            Issue.record("sixteen entries should parse"); return
        }
        #expect(entries.count == 16)

        // Through the engine, appending past the limit is refused and changes nothing.
        var limits = Fixture.smallLimits()
        limits.maxFilters = 3
        let f = Fixture(limits: limits)
        let queue = try f.queue("q")
        try f.engine.setFilter(of: queue, Grammar.filter("type=1\ntype=2", maxEntries: 3), append: false)
        expectFailure(EINVAL, naming: ["4", "3"]) {
            try f.engine.setFilter(of: queue, Grammar.filter("type=3\ntype=4", maxEntries: 3), append: true)
        }
        #expect(try f.engine.filter(of: queue).entries.map(\.type) == [1, 2])
        expectFailure(EINVAL) {
            try f.engine.setFilter(of: queue, .entries(Array(repeating: try FilterEntry(type: 9), count: 4)), append: false)
        }
        #expect(try f.engine.filter(of: queue).entries.map(\.type) == [1, 2])
    }

    // MARK: the match rule

    @Test func entryMatchesTypeSubtypeBitAndMaskedInfo() throws {
        let entry = try FilterEntry(type: 7, subtypes: Grammar.subtypeList("3,200"), infoFilter: 0x2_0000, infoMask: 0x3_0000)
        #expect(entry.matches(type: 7, subtype: 3, info: 0x2_0008))
        #expect(entry.matches(type: 7, subtype: 200, info: 0xfffe_ff7f)) // other bits are free
        #expect(!entry.matches(type: 8, subtype: 3, info: 0x2_0008))       // type
        #expect(!entry.matches(type: 7, subtype: 4, info: 0x2_0008))       // subtype bit
        #expect(!entry.matches(type: 7, subtype: 3, info: 0x3_0008))       // masked info
        #expect(!entry.matches(type: 7, subtype: 3, info: 0x0_0008))
    }

    @Test func noFilterAdmitsEverything() {
        let filter = QueueFilter()
        #expect(filter.isEmpty)
        #expect(filter.admits(type: 0xabcdef, subtype: 255, info: 0xffff_ffff))
    }

    @Test func someEntryMustMatch() throws {
        let filter = QueueFilter([try FilterEntry(type: 1, subtypes: Grammar.subtypeList("0")),
                                  try FilterEntry(type: 2, subtypes: Grammar.subtypeList("5-6"))])
        #expect(filter.admits(type: 1, subtype: 0, info: 8))
        #expect(filter.admits(type: 2, subtype: 6, info: 8))
        #expect(!filter.admits(type: 1, subtype: 5, info: 8))
        #expect(!filter.admits(type: 3, subtype: 0, info: 8))
    }

    @Test func allTypesAndAll256SubtypesAreHonouredUnlikeTheKernel() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        try f.engine.setFilter(of: queue, Grammar.filter("type=0x100 subtypes=32,200,255", maxEntries: 16), append: false)
        let source = try f.source("s") // type 0x100: the kernel would ignore an entry for it
        try f.watches("q 1", on: source)
        try f.post("31\n32\n199\n200\n255\n0", to: source)
        #expect(records(in: try f.read(queue)).map(\.header.subtype) == [32, 200, 255])
    }

    @Test func watchIDIsAlreadyInInfoWhenTheFilterLooks() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        try f.engine.setFilter(of: queue, Grammar.filter("type=user info=0x200/0xff00", maxEntries: 16), append: false)
        let one = try f.source("one")
        let two = try f.source("two")
        try f.watches("q 1", on: one)
        try f.watches("q 2", on: two)
        try f.post("10", to: one)
        try f.post("20", to: two)
        // post.bin's own watch-ID bits do not count: the delivering watch's ID does.
        try f.postBinary(RecordHeader(type: NotificationType.user, subtype: 11, length: 8, watchID: 2).bytes, to: one)
        let stream = records(in: try f.read(queue))
        #expect(stream.map(\.header.subtype) == [20])
        #expect(stream.first?.header.watchID == 2)
        #expect(try f.status(queue).counters.filtered == 2)
    }

    @Test func lengthIsAlreadyInInfoWhenTheFilterLooks() throws {
        // The mask cannot cover the length bits, but the value it sees has them: a
        // filter of 0 under a mask that avoids them still matches records of any length.
        let entry = try FilterEntry(type: 1, infoFilter: 0, infoMask: 0xff80)
        #expect(entry.matches(type: 1, subtype: 0, info: 16))
        #expect(entry.matches(type: 1, subtype: 0, info: 127))
        #expect(!entry.matches(type: 1, subtype: 0, info: 16 | 0x80))
    }

    @Test func typeSpecificInfoBitsCanBeFiltered() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        try f.engine.setFilter(of: queue, Grammar.filter("type=user info=0x10000/0x10000", maxEntries: 16), append: false)
        let source = try f.source("s")
        try f.watches("q 1", on: source)
        try f.post("1 info=1\n2 info=2\n3 info=3", to: source)
        #expect(records(in: try f.read(queue)).map(\.header.subtype) == [1, 3])
    }

    @Test func metaRecordsAreNeverFiltered() throws {
        let f = Fixture()
        let queue = try f.queue("q", size: 1)
        // A filter that admits nothing this source posts.
        try f.engine.setFilter(of: queue, Grammar.filter("type=1 subtypes=0", maxEntries: 16), append: false)
        #expect(QueueFilter([try FilterEntry(type: 1, subtypes: SubtypeSet())]).admits(type: 0, subtype: 0, info: 16))
        let source = try f.source("s", objectID: 77)
        try f.watches("q 4", on: source)
        try f.post("1", to: source)
        expectFailure(EAGAIN) { try f.read(queue) }
        try f.watches("!q", on: source) // removal record: passes the filter
        try f.watches("q 4", on: source)
        try f.engine.setFilter(of: queue, .clear, append: false)
        try f.post("1", to: source) // dropped: the removal record is marked
        try f.engine.setFilter(of: queue, Grammar.filter("type=1 subtypes=0", maxEntries: 16), append: false)
        // The loss record made at read time is not filtered either.
        #expect(try f.read(queue) == cRemoval(watchID: 4, objectID: 77))
        #expect(try f.read(queue) == cLoss())
    }

    // MARK: replace, append, clear

    @Test func replacingAFilterIsAtomicAndLeavesQueuedRecordsAlone() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        let source = try f.source("s")
        try f.watches("q 1", on: source)
        try f.engine.setFilter(of: queue, Grammar.filter("type=user subtypes=1", maxEntries: 16), append: false)
        try f.post("1\n2", to: source)
        try f.engine.setFilter(of: queue, Grammar.filter("type=user subtypes=2\ntype=user subtypes=3", maxEntries: 16), append: false)
        #expect(try f.engine.filter(of: queue).entries.count == 2)
        try f.post("1\n2\n3", to: source)
        #expect(records(in: try f.read(queue)).map(\.header.subtype) == [1, 2, 3])
    }

    @Test func aBadFilterWriteLeavesTheOldFilter() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        try f.engine.setFilter(of: queue, Grammar.filter("type=5", maxEntries: 16), append: false)
        let before = try f.engine.filter(of: queue)
        expectFailure(EINVAL, naming: ["line 2", "bogus"]) {
            try f.engine.setFilter(of: queue, Grammar.filter("type=6\ntype=7 bogus=1", maxEntries: 16), append: false)
        }
        #expect(try f.engine.filter(of: queue) == before)
    }

    @Test func appendAddsEntriesAfterTheExistingOnes() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        try f.engine.setFilter(of: queue, Grammar.filter("type=5", maxEntries: 16), append: true)
        try f.engine.setFilter(of: queue, Grammar.filter("type=6 subtypes=1-3", maxEntries: 16), append: true)
        #expect(Grammar.format(filter: try f.engine.filter(of: queue))
                == "type=5 subtypes=all info=0x0/0x0\ntype=6 subtypes=1-3 info=0x0/0x0\n")
    }

    @Test func clearRemovesTheFilter() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        let source = try f.source("s")
        try f.watches("q 1", on: source)
        for clearing in ["none", "none\n", "", "\n\n", "# nothing\n", " none "] {
            try f.engine.setFilter(of: queue, Grammar.filter("type=5", maxEntries: 16), append: false)
            #expect(try Grammar.filter(clearing, maxEntries: 16) == .clear)
            try f.engine.setFilter(of: queue, Grammar.filter(clearing, maxEntries: 16), append: false)
            #expect(try f.engine.filter(of: queue).isEmpty)
            #expect(Grammar.format(filter: try f.engine.filter(of: queue)) == "none\n")
        }
        // Appending "none" clears too: the write asks for no filter.
        try f.engine.setFilter(of: queue, Grammar.filter("type=5", maxEntries: 16), append: false)
        try f.engine.setFilter(of: queue, .clear, append: true)
        #expect(try f.engine.filter(of: queue).isEmpty)
        try f.post("9", to: source)
        #expect(try f.status(queue).queued == 1)
    }
}
