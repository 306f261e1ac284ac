import Testing
@testable import WatchQueueCore
import CWatchQueueABI

/// Rule 1: records are byte-exact with <linux/watch_queue.h>, proven against a C
/// target that builds them with the kernel's own structs and macros.
@Suite("1. Records")
struct RecordTests {
    @Test func layoutConstantsEqualTheHeaderMacros() {
        #expect(RecordLayout.lengthMask == wq_abi_info_length_mask())
        #expect(RecordLayout.watchIDMask == wq_abi_info_id_mask())
        #expect(RecordLayout.watchIDShift == wq_abi_info_id_shift())
        #expect(RecordLayout.typeInfoMask == wq_abi_info_type_info_mask())
        #expect(RecordLayout.typeInfoShift == wq_abi_info_type_info_shift())
        #expect(RecordLayout.headerSize == cLoss().count)
        #expect(RecordLayout.maxLength == Int(wq_abi_info_length_mask()))
        #expect(wq_abi_sizeof_removal() == 16)
        #expect(wq_abi_sizeof_key() == 16)
        #expect(wq_abi_sizeof_type_filter() == 44)
        #expect(wq_abi_ioc_set_size() == 0x5760)
        #expect(wq_abi_ioc_set_filter() == 0x5761)
    }

    @Test func word0HoldsType24BitsThenSubtype8Bits() {
        let header = RecordHeader(type: 0xabcdef, subtype: 0x12, length: 8, watchID: 0x34, typeInfo: 0x5678)
        #expect(header.word0 == 0x12ab_cdef)
        #expect(header.info == 0x5678_3408)
        #expect(header.bytes == [0xef, 0xcd, 0xab, 0x12, 0x08, 0x34, 0x78, 0x56])
        #expect(header.bytes == cHeader(type: 0xabcdef, subtype: 0x12, length: 8, watchID: 0x34, typeInfo: 0x5678))
    }

    @Test func headerBytesEqualTheKernelStructForManyCombinations() {
        var compared = 0
        for type: UInt32 in [0, 1, 2, 0x100, 0x7fff, 0xabcdef, 0xffffff] {
            for subtype: UInt8 in [0, 1, 7, 0x7f, 0x80, 0xff] {
                for length in [8, 9, 16, 64, 126, 127] {
                    for watchID: UInt8 in [0, 1, 0x80, 0xff] {
                        for typeInfo: UInt16 in [0, 1, 0x00ff, 0x8000, 0xffff] {
                            let swift = RecordHeader(type: type, subtype: subtype, length: length, watchID: watchID, typeInfo: typeInfo)
                            let c = cHeader(type: type, subtype: subtype, length: length, watchID: watchID, typeInfo: typeInfo)
                            #expect(swift.bytes == c, "type \(type) subtype \(subtype) length \(length) id \(watchID) info \(typeInfo)")
                            // And the parser reads the C bytes back into the same parts.
                            let parsed = c.withUnsafeBytes { RecordHeader(bytes: $0) }
                            #expect(parsed == swift)
                            #expect(parsed.type == type && parsed.subtype == subtype && parsed.length == length)
                            #expect(parsed.watchID == watchID && parsed.typeInfo == typeInfo)
                            compared += 1
                        }
                    }
                }
            }
        }
        #expect(compared == 7 * 6 * 6 * 4 * 5)
    }

    @Test func typeIsTruncatedTo24Bits() {
        #expect(RecordHeader(type: 0x1ff_ffff, subtype: 0, info: 8).type == 0xff_ffff)
    }

    @Test func removalRecordIs16BytesWithTheObjectID() {
        // KERNEL-FACTS.md's example: key 0x12345678, watch ID 1.
        let expected: [UInt8] = [0, 0, 0, 0, 0x10, 0x01, 0, 0, 0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0]
        #expect(Records.removal(watchID: 1, objectID: 0x1234_5678) == expected)
        #expect(cRemoval(watchID: 1, objectID: 0x1234_5678) == expected)
        for watchID: UInt8 in [0, 1, 42, 255] {
            for objectID: UInt64 in [1, 0xff, 0x1234_5678, 0x8000_0000_0000_0000, .max] {
                let swift = Records.removal(watchID: watchID, objectID: objectID)
                #expect(swift.count == 16)
                #expect(swift == cRemoval(watchID: watchID, objectID: objectID), "id \(watchID) object \(objectID)")
            }
        }
    }

    @Test func removalRecordIs8BytesWhenTheObjectIDIsZero() {
        for watchID: UInt8 in [0, 9, 255] {
            let swift = Records.removal(watchID: watchID, objectID: 0)
            #expect(swift == [0, 0, 0, 0, 0x08, watchID, 0, 0])
            #expect(swift == cRemoval(watchID: watchID, objectID: 0))
        }
    }

    @Test func lossRecordIs8BytesTypeMetaSubtypeLoss() {
        #expect(Records.loss == [0, 0, 0, 1, 8, 0, 0, 0])
        #expect(Records.loss == cLoss())
    }

    @Test(arguments: KeySubtype.allCases)
    func keyRecordIs16BytesAsStructKeyNotification(subtype: KeySubtype) {
        #expect(subtype.rawValue == UInt8(KeySubtype.allCases.firstIndex(of: subtype)!))
        for (keyID, aux, watchID): (UInt32, UInt32, UInt8) in [(0, 0, 0), (0x1234_5678, 0x9abc_def0, 7),
                                                               (.max, .max, 255), (42, UInt32(bitPattern: -126), 1)] {
            let swift = Records.key(subtype, keyID: keyID, aux: aux, watchID: watchID)
            #expect(swift.count == 16)
            #expect(swift == cKey(subtype.rawValue, watchID: watchID, keyID: keyID, aux: aux))
        }
    }

    @Test func keySubtypesNumberZeroToSevenInTheKernelOrder() {
        #expect(KeySubtype.allCases.map(\.rawValue) == Array(0...7))
        #expect(KeySubtype.instantiated.rawValue == 0 && KeySubtype.setattr.rawValue == 7)
        #expect(KeySubtype.revoked.rawValue == 5 && KeySubtype.invalidated.rawValue == 6)
    }

    @Test func filterEntryWordsEqualStructWatchNotificationTypeFilter() throws {
        var sets: [SubtypeSet] = [SubtypeSet(), .all]
        for members: [UInt8] in [[0], [31], [32], [63, 64], [0, 1, 2, 3, 4, 5, 6, 7], [127, 128], [255], [1, 100, 200, 254]] {
            var set = SubtypeSet()
            for member in members { set.insert(member) }
            sets.append(set)
        }
        sets.append(try Grammar.subtypeList("0-31,64-95,250-255"))
        for set in sets {
            for (type, infoFilter, infoMask): (UInt32, UInt32, UInt32) in [(1, 0, 0), (0x100, 0x200, 0xff00), (0xffffff, 0x8000_0000, 0xffff_ff80)] {
                let entry = try FilterEntry(type: type, subtypes: set, infoFilter: infoFilter, infoMask: infoMask)
                let words = entry.subtypes.kernelWords
                #expect(words.count == 8)
                var swift = Records.littleEndianBytes(entry.type) + Records.littleEndianBytes(entry.infoFilter)
                    + Records.littleEndianBytes(entry.infoMask)
                for word in words { swift += Records.littleEndianBytes(word) }
                let c = cFilterEntry(type: type, infoFilter: infoFilter, infoMask: infoMask, subtypeWords: words)
                #expect(c.count == 44)
                #expect(swift == c)
                // The bitmap is the kernel's: bit N of subtype_filter[N / 32].
                for subtype in 0...255 {
                    let bit = words[subtype / 32] >> UInt32(subtype % 32) & 1 == 1
                    #expect(bit == set.contains(UInt8(subtype)))
                }
            }
        }
    }

    // MARK: what the engine actually returns

    @Test func removalRecordReadFromAQueueEqualsTheKernelBytes() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        let source = try f.source("s", objectID: 0x1234_5678)
        try f.watches("q 1", on: source)
        try f.watches("!q", on: source)
        let bytes = try f.read(queue)
        #expect(bytes == cRemoval(watchID: 1, objectID: 0x1234_5678))
        #expect(bytes == [0, 0, 0, 0, 0x10, 0x01, 0, 0, 0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0])
    }

    @Test func removalRecordReadFromAQueueIs8BytesForObjectIDZero() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        let source = try f.source("s", objectID: 0)
        try f.watches("q 200", on: source)
        _ = try f.engine.removeSource(named: "s")
        #expect(try f.read(queue) == cRemoval(watchID: 200, objectID: 0))
    }

    @Test func postedKeyRecordReadBackEqualsTheKernelBytes() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        let source = try f.source("keys", type: NotificationType.keyNotify)
        try f.watches("q 7", on: source)
        // Text: subtype 2 (linked), key_id, aux.
        try f.post("2 u32=0x12345678 u32=99", to: source)
        // Binary: whatever watch ID bits the writer put there are replaced.
        try f.postBinary(Records.key(.revoked, keyID: 0xdead_beef, aux: 0, watchID: 0x55), to: source)
        let bytes = try f.read(queue)
        #expect(bytes == cKey(2, watchID: 7, keyID: 0x1234_5678, aux: 99) + cKey(5, watchID: 7, keyID: 0xdead_beef, aux: 0))
    }

    @Test func everyKeySubtypePostedInBinaryReadsBackAsTheKernelBuildsIt() throws {
        let f = Fixture(limits: Fixture.smallLimits(defaultSize: 16))
        let queue = try f.queue("q")
        let source = try f.source("keys", type: NotificationType.keyNotify)
        try f.watches("q 255", on: source)
        var expected: [UInt8] = []
        for subtype in KeySubtype.allCases {
            let keyID = 1000 + UInt32(subtype.rawValue)
            try f.postBinary(Records.key(subtype, keyID: keyID, aux: UInt32(subtype.rawValue) * 3), to: source)
            expected += cKey(subtype.rawValue, watchID: 255, keyID: keyID, aux: UInt32(subtype.rawValue) * 3)
        }
        #expect(try f.read(queue) == expected)
    }

    @Test func lossRecordReadFromAQueueEqualsTheKernelBytes() throws {
        let f = Fixture()
        let queue = try f.queue("q", size: 1)
        let source = try f.source("s")
        try f.watches("q 3", on: source)
        try f.post("1\n2", to: source)
        try f.post("3", to: source)
        #expect(try f.read(queue, capacity: 8) == cHeader(type: NotificationType.user, subtype: 1, length: 8, watchID: 3))
        #expect(try f.read(queue, capacity: 8) == cLoss())
    }

    // MARK: parsing streams

    @Test func iteratorWalksPackedRecordsOfDifferentLengths() {
        let stream = Records.removal(watchID: 1, objectID: 9) + Records.loss + userRecord(subtype: 4, payload: Array(repeating: 7, count: 119))
        stream.withUnsafeBytes { raw in
            var iterator = RecordIterator(raw)
            #expect(iterator.next()?.header.length == 16)
            #expect(iterator.next()?.header.length == 8)
            let last = iterator.next()
            #expect(last?.header.length == 127)
            #expect(last.map { Array($0.bytes) } == userRecord(subtype: 4, payload: Array(repeating: 7, count: 119)))
            #expect(iterator.next() == nil)
            #expect(iterator.error == nil)
            #expect(iterator.offset == 151)
        }
    }

    @Test func iteratorRejectsATrailingPartialHeader() {
        (Records.loss + [1, 2, 3]).withUnsafeBytes { raw in
            var iterator = RecordIterator(raw)
            #expect(iterator.next() != nil)
            #expect(iterator.next() == nil)
            #expect(iterator.error == .truncatedHeader(offset: 8, available: 3))
        }
    }

    @Test func iteratorRejectsALengthUnder8() {
        for length in [0, 1, 7] {
            RecordHeader(type: 1, subtype: 0, length: length).bytes.withUnsafeBytes { raw in
                var iterator = RecordIterator(raw)
                #expect(iterator.next() == nil)
                #expect(iterator.error == .lengthTooSmall(offset: 0, length: length))
            }
        }
    }

    @Test func iteratorRejectsARecordRunningPastTheData() {
        RecordHeader(type: 1, subtype: 0, length: 16).bytes.withUnsafeBytes { raw in
            var iterator = RecordIterator(raw)
            #expect(iterator.next() == nil)
            #expect(iterator.error == .runsPastEnd(offset: 0, length: 16, available: 8))
        }
    }
}
