import Testing
@testable import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// Rule 5: the text grammars, their canonical printers and their typed errors.
@Suite("5. Grammars")
struct GrammarTests {
    // MARK: numbers, size, id, type

    @Test func sizeIsOneNumberDecimalOrHexWithinOneToMax() throws {
        #expect(try Grammar.size("5\n", max: 512) == 5)
        #expect(try Grammar.size("  0x20 \n", max: 512) == 32)
        #expect(try Grammar.size("512", max: 512) == 512)
        expectFailure(EINVAL, naming: ["'0'", "1..512"]) { try Grammar.size("0", max: 512) }
        expectFailure(EINVAL, naming: ["'513'"]) { try Grammar.size("513", max: 512) }
        expectFailure(EINVAL, naming: ["'abc'"]) { try Grammar.size("abc", max: 512) }
        expectFailure(EINVAL, naming: ["'0x'"]) { try Grammar.size("0x", max: 512) }
        expectFailure(EINVAL, naming: ["'-1'"]) { try Grammar.size("-1", max: 512) }
        expectFailure(EINVAL, naming: ["'99999999999999999999999'"]) { try Grammar.size("99999999999999999999999", max: 512) }
        expectFailure(EINVAL, naming: ["no size"]) { try Grammar.size("", max: 512) }
        expectFailure(EINVAL, naming: ["one value"]) { try Grammar.size("1 2", max: 512) }
    }

    @Test func numbersRejectSignsAndNonASCIIDigits() throws {
        for token in ["+5", "-0", "0x+5", "0x-1", "٣", "5 "] {
            expectFailure(EINVAL) { try Grammar.number(token, in: 0...UInt64.max, what: "value") }
        }
        #expect(try Grammar.number("0X1f", in: 0...255, what: "value") == 31)
        #expect(try Grammar.number("18446744073709551615", in: 0...UInt64.max, what: "value") == .max)
    }

    @Test func idFileTakesAnyU64IncludingZero() throws {
        #expect(try Grammar.objectID("0\n") == 0)
        #expect(try Grammar.objectID("0xffffffffffffffff") == .max)
        expectFailure(EINVAL, naming: ["'18446744073709551616'"]) { try Grammar.objectID("18446744073709551616") }
        expectFailure(EINVAL, naming: ["'x1'"]) { try Grammar.objectID("x1") }
    }

    @Test func typeIsANumber1To0xffffffOrAKnownName() throws {
        #expect(try Grammar.typeFile("key\n") == 1)
        #expect(try Grammar.typeFile("key_notify") == 1)
        #expect(try Grammar.typeFile("user") == 0x100)
        #expect(try Grammar.typeFile("0x10") == 16)
        #expect(try Grammar.typeFile("16777215") == 0xff_ffff)
        expectFailure(EINVAL, naming: ["'0'"]) { try Grammar.typeFile("0") }
        expectFailure(EINVAL, naming: ["'0x1000000'"]) { try Grammar.typeFile("0x1000000") }
        expectFailure(EINVAL, naming: ["'meta'", "key, key_notify, user"]) { try Grammar.typeFile("meta") }
        expectFailure(EINVAL, naming: ["'KEY'"]) { try Grammar.typeFile("KEY") }
    }

    // MARK: names

    @Test func namesAre1To64LettersDigitsAndUnderscoreDashAtColon() throws {
        for name in ["a", "Queue_1", "x-y", "user@host", "a:b", String(repeating: "n", count: 64)] {
            #expect(failure { try Grammar.validateName(name) } == nil, "\(name)")
        }
        expectFailure(EINVAL, naming: ["empty"]) { try Grammar.validateName("") }
        expectFailure(EINVAL, naming: ["64"]) { try Grammar.validateName(String(repeating: "n", count: 65)) }
        for name in ["a.size", ".", "..", "a/b", "a b", "é", "tab\t", "new\nline", "a'b"] {
            expectFailure(EINVAL, naming: ["name '"]) { try Grammar.validateName(name) }
        }
    }

    @Test func quotedEscapesUnprintableBytesAndTruncates() {
        #expect(Grammar.quoted("ok") == "'ok'")
        #expect(Grammar.quoted("a\nb'c\\") == "'a\\x0ab\\x27c\\x5c'")
        #expect(Grammar.quoted("é") == "'\\xc3\\xa9'")
        #expect(Grammar.quoted(String(repeating: "x", count: 81)) == "'" + String(repeating: "x", count: 80) + "…'")
    }

    // MARK: filters

    @Test func filterLineParsesIntoAnEntry() throws {
        let entry = try Grammar.filterEntry("type=key subtypes=0-3,7 info=0x100/0xff00")
        #expect(entry.type == 1)
        #expect(entry.subtypes == (try Grammar.subtypeList("0,1,2,3,7")))
        #expect(entry.infoFilter == 0x100 && entry.infoMask == 0xff00)
        #expect(try Grammar.filterEntry("  info=0/0\ttype=5   ") == FilterEntry(type: 5))
    }

    @Test func filterPrintsCanonicallyAndReparsesToTheSameEntries() throws {
        let text = """
            # comments and blank lines are ignored

            type=key subtypes=7,0-3 info=256/0xFF00
            type=0x100
            type=9 subtypes=1,3,5-6,255
            type=10 subtypes=0-255
            """
        guard case .entries(let entries) = try Grammar.filter(text, maxEntries: 16) else {
            Issue.record("expected entries"); return
        }
        let canonical = Grammar.format(filter: QueueFilter(entries))
        #expect(canonical == """
            type=1 subtypes=0-3,7 info=0x100/0xff00
            type=256 subtypes=all info=0x0/0x0
            type=9 subtypes=1,3,5-6,255 info=0x0/0x0
            type=10 subtypes=all info=0x0/0x0

            """)
        #expect(try Grammar.filter(canonical, maxEntries: 16) == .entries(entries))
        #expect(Grammar.format(filter: QueueFilter()) == "none\n")
    }

    @Test func subtypeListFormatsAsTheShortestList() throws {
        #expect(Grammar.format(subtypes: SubtypeSet()) == "none")
        #expect(Grammar.format(subtypes: try Grammar.subtypeList("all")) == "all")
        #expect(Grammar.format(subtypes: try Grammar.subtypeList("5,4,3,10,11,255,0")) == "0,3-5,10-11,255")
        #expect(Grammar.format(subtypes: try Grammar.subtypeList("1-254")) == "1-254")
    }

    @Test func filterRejectionsNameTheOffendingToken() {
        let cases: [(String, [String])] = [
            ("subtypes=1", ["missing type="]),
            ("type=1 color=red", ["'color'"]),
            ("type=1 type=2", ["type= given twice"]),
            ("type=1 subtypes=1 subtypes=2", ["subtypes= given twice"]),
            ("type=0", ["'0'"]),
            ("type=bogus", ["'bogus'"]),
            ("type=1 subtypes=256", ["'256'"]),
            ("type=1 subtypes=5-3", ["'5-3'", "backwards"]),
            ("type=1 subtypes=1,,2", ["''"]),
            ("type=1 subtypes=1-", ["''"]),
            ("type=1 info=5", ["'5'", "FILTER/MASK"]),
            ("type=1 info=1/2/3", ["'1/2/3'"]),
            ("type=1 info=x/0", ["'x'"]),
            ("type=1 info=0/0x100000000", ["'0x100000000'"]),
            ("type=1 info=0x100/0xff", ["0x100", "0xff"]),
            ("type=1 info=0/0x7f", ["0x7f", "length"]),
            ("type", ["'type'"]),
        ]
        for (line, tokens) in cases {
            expectFailure(EINVAL, naming: ["line 2"] + tokens) { try Grammar.filter("type=1\n" + line, maxEntries: 16) }
        }
    }

    // MARK: post lines

    @Test func postLineWithOnlyASubtypeIsAn8ByteRecord() throws {
        #expect(try Grammar.post("0", type: 0x100) == cHeader(type: 0x100, subtype: 0, length: 8))
        #expect(try Grammar.post("  255  \n", type: 7) == cHeader(type: 7, subtype: 255, length: 8))
    }

    @Test func postPayloadItemsArePackedLittleEndianInOrder() throws {
        let bytes = try Grammar.post("3 info=0xbeef u8=0xff u16=0x0102 u32=0x03040506 u64=0x0708090a0b0c0d0e hex=DEADbeef str=hi  there", type: 0x100)
        let payload: [UInt8] = [0xff, 0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08, 0x07,
                                0xde, 0xad, 0xbe, 0xef] + Array("hi  there".utf8)
        #expect(bytes == cHeader(type: 0x100, subtype: 3, length: 8 + payload.count, typeInfo: 0xbeef) + payload)
    }

    @Test func postStrTakesTheRestOfTheLineIncludingEqualsAndHashes() throws {
        let bytes = try Grammar.post("1 u8=1 str= a=b # c \n2 str=\n3 str=x y\r", type: 0x100)
        let text = Array(" a=b # c ".utf8)
        let first = cHeader(type: 0x100, subtype: 1, length: 8 + 1 + text.count) + [1] + text
        let third = cHeader(type: 0x100, subtype: 3, length: 11) + Array("x y".utf8)
        #expect(bytes == first + cHeader(type: 0x100, subtype: 2, length: 8) + third)
    }

    @Test func crlfLineEndingsAreAcceptedEverywhere() throws {
        // "\r\n" is a single Character in Swift: lines must still split there.
        #expect(try Grammar.post("1 str=ab\r\n2\r\n", type: 0x100)
                == cHeader(type: 0x100, subtype: 1, length: 10) + Array("ab".utf8) + cHeader(type: 0x100, subtype: 2, length: 8))
        #expect(try Grammar.filter("type=1\r\n# c\r\ntype=2 subtypes=3\r\n", maxEntries: 16)
                == .entries([try FilterEntry(type: 1), try FilterEntry(type: 2, subtypes: Grammar.subtypeList("3"))]))
        #expect(try Grammar.filter("none\r\n", maxEntries: 16) == .clear)
        #expect(try Grammar.watches("q 1\r\n!r\r\n") == [.add(queue: "q", watchID: 1), .remove(queue: "r")])
        #expect(try Grammar.size("12\r\n", max: 100) == 12)
        #expect(try Grammar.typeFile("key\r\n") == 1)
        #expect(try Grammar.objectID("7\r\n") == 7)
        expectFailure(EINVAL, naming: ["line 2"]) { try Grammar.post("1\r\nx\r\n", type: 0x100) }
    }

    @Test func postInfoMustComeOnceBeforeThePayload() {
        expectFailure(EINVAL, naming: ["line 1", "info="]) { try Grammar.post("1 u8=1 info=2", type: 0x100) }
        expectFailure(EINVAL, naming: ["info="]) { try Grammar.post("1 info=1 info=2", type: 0x100) }
        expectFailure(EINVAL, naming: ["'0x10000'"]) { try Grammar.post("1 info=0x10000", type: 0x100) }
    }

    @Test func postRecordsUpTo127BytesAndEMSGSIZEPastIt() throws {
        let fits = "1 hex=" + String(repeating: "ab", count: 119)
        #expect(try Grammar.post(fits, type: 0x100).count == 127)
        #expect(try Grammar.post("1 str=" + String(repeating: "x", count: 119), type: 0x100).count == 127)
        expectFailure(EMSGSIZE, naming: ["128", "127"]) { try Grammar.post("1 hex=" + String(repeating: "ab", count: 120), type: 0x100) }
        expectFailure(EMSGSIZE, naming: ["line 2"]) { try Grammar.post("1\n1 str=" + String(repeating: "x", count: 120), type: 0x100) }
        let sixteenU64 = (0..<16).map { "u64=\($0)" }.joined(separator: " ")
        expectFailure(EMSGSIZE) { try Grammar.post("1 " + sixteenU64, type: 0x100) }
        let fourteenU64 = (0..<14).map { "u64=\($0)" }.joined(separator: " ")
        #expect(try Grammar.post("1 " + fourteenU64 + " u32=0 u16=0 u8=0", type: 0x100).count == 127)
        expectFailure(EMSGSIZE) { try Grammar.post("1 " + fourteenU64 + " u32=0 u16=0 u16=0", type: 0x100) }
    }

    @Test func postRejectionsNameTheOffendingToken() {
        let cases: [(String, [String])] = [
            ("x", ["subtype", "'x'"]),
            ("256", ["'256'"]),
            ("1 u8=256", ["u8", "'256'"]),
            ("1 u16=0x10000", ["'0x10000'"]),
            ("1 u32=4294967296", ["'4294967296'"]),
            ("1 u64=18446744073709551616", ["'18446744073709551616'"]),
            ("1 hex=abc", ["'abc'", "odd"]),
            ("1 hex=zz", ["'zz'", "non-hex"]),
            ("1 u128=1", ["'u128'"]),
            ("1 payload", ["'payload'"]),
        ]
        for (line, tokens) in cases {
            expectFailure(EINVAL, naming: ["line 3"] + tokens) { try Grammar.post("1\n# comment\n" + line, type: 0x100) }
        }
    }

    @Test func aMultiLinePostIsAppliedEntirelyOrNotAtAll() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        let source = try f.source("s")
        try f.watches("q 1", on: source)
        expectFailure(EINVAL, naming: ["line 3", "'oops'"]) { try f.post("1\n2\noops\n4", to: source) }
        expectFailure(EMSGSIZE, naming: ["line 2"]) { try f.post("1\n2 str=" + String(repeating: "y", count: 200), to: source) }
        #expect(try f.status(queue).counters.posted == 0)
        expectFailure(EAGAIN) { try f.read(queue) }
        try f.post("1\n\n# skipped\n2\r\n", to: source)
        #expect(records(in: try f.read(queue)).map(\.header.subtype) == [1, 2])
    }

    // MARK: post.bin

    @Test func postBinaryAcceptsPackedRecordsOfTheSourcesType() throws {
        let stream = userRecord(subtype: 1) + userRecord(subtype: 2, payload: Array(repeating: 9, count: 119))
            + RecordHeader(type: 0x100, subtype: 3, length: 8, watchID: 0xee).bytes
        #expect(try stream.withUnsafeBytes { (raw) throws -> Int in try Grammar.validatePostBinary(raw, type: 0x100).records } == 3)
        #expect(try [UInt8]().withUnsafeBytes { (raw) throws -> Int in try Grammar.validatePostBinary(raw, type: 0x100).records } == 0)
    }

    @Test func postBinaryRejectionsSayWhereAndWhy() {
        func check(_ bytes: [UInt8], _ tokens: [String], sourceLocation: SourceLocation = #_sourceLocation) {
            expectFailure(EINVAL, naming: tokens, sourceLocation: sourceLocation) {
                try bytes.withUnsafeBytes { (raw) throws -> Int in try Grammar.validatePostBinary(raw, type: 0x100).records }
            }
        }
        check(userRecord(subtype: 1) + userRecord(subtype: 1, type: 1), ["record at byte 8", "type 1", "type 256"])
        check(userRecord(subtype: 1) + [1, 2, 3], ["3 stray bytes", "byte 8"])
        check(RecordHeader(type: 0x100, subtype: 0, length: 0).bytes, ["length 0"])
        check(RecordHeader(type: 0x100, subtype: 0, length: 7).bytes + [0], ["length 7"])
        check(RecordHeader(type: 0x100, subtype: 0, length: 20).bytes + [0, 0], ["length 20", "10 bytes remain"])
    }

    @Test func postBinaryIsAllOrNothingAndIgnoresWatchIDBits() throws {
        let f = Fixture()
        let queue = try f.queue("q")
        let source = try f.source("s")
        try f.watches("q 6", on: source)
        expectFailure(EINVAL) { try f.postBinary(userRecord(subtype: 1) + userRecord(subtype: 2, type: 2), to: source) }
        #expect(try f.status(queue).counters.posted == 0)
        try f.postBinary(RecordHeader(type: 0x100, subtype: 1, length: 12, watchID: 0xff, typeInfo: 0x1234).bytes + [1, 2, 3, 4], to: source)
        #expect(try f.read(queue) == cHeader(type: 0x100, subtype: 1, length: 12, watchID: 6, typeInfo: 0x1234) + [1, 2, 3, 4])
    }

    // MARK: watches lines

    @Test func watchesLinesAddOrRemove() throws {
        #expect(try Grammar.watches("q 3\n!r\n\n# c\n  x:y\t0x10  \n") == [.add(queue: "q", watchID: 3), .remove(queue: "r"), .add(queue: "x:y", watchID: 16)])
        #expect(try Grammar.watches("") == [])
    }

    @Test func watchesRejectionsNameTheOffendingToken() {
        let cases: [(String, [String])] = [
            ("q", ["'q'", "QUEUE WATCH_ID"]),
            ("q 1 2", ["'q 1 2'"]),
            ("q 256", ["'256'"]),
            ("q -1", ["'-1'"]),
            ("bad.name 1", ["'bad.name'"]),
            ("!", ["empty name"]),
            ("!bad/name", ["'bad/name'"]),
        ]
        for (line, tokens) in cases {
            expectFailure(EINVAL, naming: ["line 2"] + tokens) { try Grammar.watches("ok 1\n" + line) }
        }
    }

    @Test func errorsAreTypedWithErrnoAndAReadableDescription() {
        let error = failure { try Grammar.size("zero", max: 10) }
        #expect(error?.errno == EINVAL)
        #expect(error?.description == "EINVAL: size 'zero' is not a number (decimal or 0x…)")
        #expect(WQError(EMSGSIZE, "x").description == "EMSGSIZE: x")
        #expect(WQError(ENOBUFS, "x").description == "ENOBUFS: x")
        #expect(WQError(12345, "x").description == "errno 12345: x")
    }
}
