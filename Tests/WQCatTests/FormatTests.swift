import Testing
import WQCatKit
import WatchQueueCore

/// Feeds `bytes` through a reassembler in one piece and renders every record.
private func render(_ bytes: [UInt8], style: OutputStyle, queue: String? = nil,
                    time: Timestamp? = nil) throws -> String {
    var stream = RecordReassembler()
    stream.append(contentsOf: bytes)
    var output: [UInt8] = []
    let formatter = RecordFormatter(style: style)
    while let record = try stream.next() {
        formatter.write(record, queue: queue, time: time, to: &output)
    }
    try stream.finish()
    return String(decoding: output, as: UTF8.self)
}

@Suite struct TextFormat {
    @Test func kernelLiteralsMatchTheCoreBuilders() {
        #expect(Fixtures.kernelRemoval == Records.removal(watchID: 1, objectID: 0x1234_5678))
        #expect(Fixtures.kernelLoss == Records.loss)
    }

    @Test(arguments: Fixtures.golden.indices)
    func eachGoldenRecord(index: Int) throws {
        let (bytes, text) = Fixtures.golden[index]
        let record = try #require(CapturedRecord(bytes: bytes))
        #expect(RecordFormatter.textLine(record) == text)
    }

    @Test func goldenStreamInOneRead() throws {
        #expect(try render(Fixtures.goldenStream, style: .text) == Fixtures.goldenText)
    }

    @Test func everyKeySubtypeHasItsKeyutilsWord() {
        #expect(KeySubtype.allCases.map(\.keyutilsWord) == ["inst", "upd", "link", "unlk", "clr", "rev", "inv", "attr"])
    }

    @Test func meaningIsDecodedOnlyForExactShapes() throws {
        let link = try #require(CapturedRecord(bytes: Records.key(.linked, keyID: 5, aux: 6)))
        #expect(link.meaning == .key(.linked, keyID: 5, aux: 6))
        let removal = try #require(CapturedRecord(bytes: Fixtures.kernelRemoval))
        #expect(removal.meaning == .removal(objectID: 0x1234_5678))
        let loss = try #require(CapturedRecord(bytes: Records.loss))
        #expect(loss.meaning == .loss)
        let long = try #require(CapturedRecord(bytes: Fixtures.record(type: 1, subtype: 2, payload: [5, 0, 0, 0, 6, 0, 0, 0, 0])))
        #expect(long.meaning == .other)
    }

    @Test func capturedRecordRejectsAnythingButOneWholeRecord() {
        #expect(CapturedRecord(bytes: []) == nil)
        #expect(CapturedRecord(bytes: Records.loss + Records.loss) == nil)
        #expect(CapturedRecord(bytes: Array(Fixtures.kernelRemoval.prefix(12))) == nil)
        #expect(CapturedRecord(bytes: [0, 0, 0, 0, 0, 0, 0, 0]) == nil)
    }

    @Test func severalQueuesPrefixEveryLine() throws {
        let time = Timestamp(seconds: 1_700_000_000, nanoseconds: 123_456_789)
        let a = try render(Records.key(.linked, keyID: 10, aux: 11) + Records.loss, style: .text, queue: "a")
        let b = try render(Fixtures.kernelRemoval + Fixtures.record(type: 9, subtype: 1), style: .text,
                           queue: "b", time: time)
        #expect(a + b == """
            a: 10 link 11
            a: -- LOSS --
            2023-11-14T22:13:20.123456Z b: 305419896 gc
            2023-11-14T22:13:20.123456Z b: type=9 subtype=1 id=0 len=8 info=0x00000008 typeinfo=0x0000 data=

            """)
    }

    @Test func labelsAreQueueNamesUnlessTheyCollide() {
        #expect(inputLabels(for: ["/mnt/wq/queues/a", "queues/b", "-"]) == ["a", "b", "-"])
        #expect(inputLabels(for: ["x/q", "y/q"]) == ["x/q", "y/q"])
        #expect(inputLabels(for: ["dir/", "/"]) == ["dir", "/"])
    }
}

@Suite struct JSONFormat {
    @Test func goldenJSON() throws {
        let stream = Fixtures.kernelRemoval + Fixtures.kernelLoss
            + Records.key(.instantiated, keyID: 1001, aux: 0, watchID: 1)
            + Records.key(.unlinked, keyID: 1004, aux: 2002, watchID: 1)
            + Records.removal(watchID: 2, objectID: 0)
            + Fixtures.record(type: 0x1234, subtype: 3, watchID: 2, typeInfo: 1, payload: [0xde, 0xad, 0xbe, 0xef])
        #expect(try render(stream, style: .json) == """
            {"kind":"removal","type":0,"subtype":0,"id":1,"len":16,"info":272,"typeinfo":0,"object_id":305419896,"data":"7856341200000000"}
            {"kind":"loss","type":0,"subtype":1,"id":0,"len":8,"info":8,"typeinfo":0,"data":""}
            {"kind":"key","type":1,"subtype":0,"id":1,"len":16,"info":272,"typeinfo":0,"event":"inst","key_id":1001,"aux":0,"data":"e903000000000000"}
            {"kind":"key","type":1,"subtype":3,"id":1,"len":16,"info":272,"typeinfo":0,"event":"unlk","key_id":1004,"aux":2002,"data":"ec030000d2070000"}
            {"kind":"removal","type":0,"subtype":0,"id":2,"len":8,"info":520,"typeinfo":0,"object_id":0,"data":""}
            {"kind":"other","type":4660,"subtype":3,"id":2,"len":12,"info":66060,"typeinfo":1,"data":"deadbeef"}

            """)
    }

    @Test func timeAndQueueComeFirstAndQueueIsEscaped() throws {
        let time = Timestamp(seconds: 0, nanoseconds: 999)
        let line = try render(Records.loss, style: .json, queue: "q\"\\\n\u{1}", time: time)
        #expect(line == #"{"time":"1970-01-01T00:00:00.000000Z","queue":"q\"\\\n\u0001","kind":"loss","type":0,"subtype":1,"id":0,"len":8,"info":8,"typeinfo":0,"data":""}"# + "\n")
    }
}

@Suite struct RawFormat {
    @Test func passesBytesThroughUnchanged() throws {
        #expect(try render(Fixtures.goldenStream, style: .raw, queue: "ignored")
            == String(decoding: Fixtures.goldenStream, as: UTF8.self))
    }
}

@Suite struct Timestamps {
    @Test(arguments: [
        (Int64(0), Int32(0), "1970-01-01T00:00:00.000000Z"),
        (951_782_400, 1_000, "2000-02-29T00:00:00.000001Z"),  // A leap day in a century leap year.
        (4_107_542_399, 999_999_999, "2100-02-28T23:59:59.999999Z"),  // 2100 is not a leap year.
        (1_735_689_599, 500_000_000, "2024-12-31T23:59:59.500000Z"),
        (-1, 0, "1969-12-31T23:59:59.000000Z"),
    ])
    func iso8601(seconds: Int64, nanoseconds: Int32, expected: String) {
        #expect(Timestamp(seconds: seconds, nanoseconds: nanoseconds).iso8601 == expected)
    }
}
