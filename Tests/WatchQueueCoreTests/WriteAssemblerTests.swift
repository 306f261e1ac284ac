import Testing
@testable import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// DESIGN.md §8: writes split anywhere. A stream fed to the assembler in pieces of
/// any size applies the same units as the stream written whole.
@Suite("8. Writes split anywhere")
struct WriteAssemblerTests {
    /// A deterministic generator (SplitMix64), so a failure can be replayed.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
    }

    /// The applier's answer for a chunk: all of it for lines; for records, the whole
    /// records at its start (checked as `post.bin` checks them, of the user type).
    static func taken(_ chunk: WriteAssembler.Chunk, _ unit: WriteAssembler.Unit) throws(WQError) -> WriteAssembler.Applied<Void> {
        guard unit == .records else { return .init((), taken: chunk.bytes.count) }
        let whole = try Grammar.validatePostBinary(chunk.bytes, type: NotificationType.user, firstByte: chunk.firstByte,
                                                   partial: !chunk.isFinal)
        return .init((), taken: whole.bytes)
    }

    /// Feeds `stream` in pieces cut at `cuts`, then finishes; returns each applied
    /// chunk as (bytes, firstLine, firstByte, isFirst).
    static func chunks(_ stream: [UInt8], unit: WriteAssembler.Unit, cuts: [Int]) throws
        -> [(bytes: [UInt8], line: Int, byte: Int, first: Bool)] {
        var assembler = WriteAssembler(unit: unit)
        var applied: [(bytes: [UInt8], line: Int, byte: Int, first: Bool)] = []
        let record = { (chunk: WriteAssembler.Chunk) throws(WQError) -> WriteAssembler.Applied<Void> in
            let answer = try taken(chunk, unit)
            applied.append((Array(chunk.bytes[..<answer.taken]), chunk.firstLine, chunk.firstByte, chunk.isFirst))
            return answer
        }
        var start = 0
        for cut in cuts.sorted() + [stream.count] where cut >= start {
            try stream[start..<cut].withUnsafeBytes { piece in _ = try assembler.write(piece, record) }
            start = cut
        }
        _ = try assembler.finish(record)
        return applied
    }

    static func randomCuts(_ count: Int, upTo length: Int, using rng: inout Seeded) -> [Int] {
        (0..<count).map { _ in Int.random(in: 0...length, using: &rng) }
    }

    @Test func linesCutAnywhereGiveTheRecordsOfOneWrite() throws {
        let text = (1...300).map { "\($0 % 256) u32=\($0) str=line \($0)" }.joined(separator: "\n") + "\n# end\n\n7 u8=1"
        let stream = Array(text.utf8)
        let whole = try Grammar.post(text, type: NotificationType.user)
        var rng = Seeded(state: 9)
        for round in 0..<200 {
            let cuts = round == 0 ? Array(stride(from: 4096, to: stream.count, by: 4096)) : Self.randomCuts(round % 40, upTo: stream.count, using: &rng)
            var packed: [UInt8] = []
            for chunk in try Self.chunks(stream, unit: .lines, cuts: cuts) {
                // Every chunk but the one finish applied ends a line; none splits one.
                #expect(chunk.bytes.last == ASCII.newline || chunk.byte + chunk.bytes.count == stream.count)
                let number = 1 + stream[..<chunk.byte].filter { $0 == ASCII.newline }.count
                #expect(chunk.line == number)
                packed += try Grammar.post(String(decoding: chunk.bytes, as: UTF8.self), type: NotificationType.user, firstLine: chunk.line)
            }
            #expect(packed == whole, "cuts \(cuts)")
        }
    }

    @Test func recordsCutAnywhereArriveWholeAndInOrder() throws {
        // 13-byte records, as `dd bs=4096` cuts them: 4096 is no multiple of 13.
        var stream: [UInt8] = []
        for n in 0..<2000 { stream += userRecord(subtype: UInt8(n % 256), payload: [UInt8(n & 0xff), UInt8(n >> 8), 7, 7, 7]) }
        var rng = Seeded(state: 13)
        for round in 0..<100 {
            let cuts = round == 0 ? Array(stride(from: 4096, to: stream.count, by: 4096)) : Self.randomCuts(round, upTo: stream.count, using: &rng)
            let applied = try Self.chunks(stream, unit: .records, cuts: cuts)
            #expect(applied.flatMap(\.bytes) == stream)
            for chunk in applied {
                #expect(chunk.bytes.count % 13 == 0)
                #expect(chunk.bytes == Array(stream[chunk.byte..<chunk.byte + chunk.bytes.count]))
            }
        }
    }

    @Test func onlyTheFirstAppliedChunkIsFirst() throws {
        // A write that completes nothing applies nothing, so the chunk after it is first.
        let applied = try Self.chunks(Array("type=1\ntype=2\n".utf8), unit: .lines, cuts: [3, 7, 9])
        #expect(applied.map(\.first) == [true, false])
        #expect(applied.map { String(decoding: $0.bytes, as: UTF8.self) } == ["type=1\n", "type=2\n"])
    }

    @Test func anUnfinishedLineWaitsForCloseAndIsAppliedThen() throws {
        var assembler = WriteAssembler(unit: .lines)
        var applied: [String] = []
        let apply = { (chunk: WriteAssembler.Chunk) throws(WQError) -> WriteAssembler.Applied<Void> in
            applied.append(String(decoding: chunk.bytes, as: UTF8.self))
            return .init((), taken: chunk.bytes.count)
        }
        let none = try "1 u8=".utf8Bytes { bytes in try assembler.write(bytes, apply) }
        #expect(none == nil)
        #expect(assembler.heldCount == 5 && applied.isEmpty && !assembler.applied)
        try "9".utf8Bytes { bytes in _ = try assembler.write(bytes, apply) }
        #expect(try assembler.finish(apply) != nil)
        #expect(applied == ["1 u8=9"])
        #expect(try assembler.finish(apply) == nil, "nothing is held after finish")
    }

    @Test func aRejectionEndsTheStreamAndNamesTheLineOfTheStream() throws {
        var assembler = WriteAssembler(unit: .lines)
        var calls = 0
        let post = { (chunk: WriteAssembler.Chunk) throws(WQError) -> WriteAssembler.Applied<Void> in
            calls += 1
            _ = try Grammar.post(String(decoding: chunk.bytes, as: UTF8.self), type: NotificationType.user, firstLine: chunk.firstLine)
            return .init((), taken: chunk.bytes.count)
        }
        let lines = (1...500).map { $0 == 421 ? "1 u3" : "1 u32=\($0)" }.joined(separator: "\n") + "\n"
        let bytes = Array(lines.utf8)
        var rejection: WQError?
        for start in stride(from: 0, to: bytes.count, by: 4096) {
            rejection = failure {
                try bytes[start..<min(bytes.count, start + 4096)].withUnsafeBytes { piece in _ = try assembler.write(piece, post) }
            }
            if rejection != nil { break }
        }
        let error = try #require(rejection)
        #expect(error.errno == EINVAL && error.reason.hasPrefix("line 421: "), "\(error)")
        let callsAtRejection = calls
        // Every later write and the close give the same error and apply nothing.
        expectFailure(EINVAL, naming: ["line 421"]) { try "1 u8=1\n".utf8Bytes { bytes in try assembler.write(bytes, post) } }
        expectFailure(EINVAL, naming: ["line 421"]) { try assembler.finish(post) }
        #expect(calls == callsAtRejection)
        #expect(assembler.heldCount == 0)
    }

    @Test func heldTailsAreBounded() throws {
        var lines = WriteAssembler(unit: .lines)
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: WriteAssembler.maxHeldLine)
        try ("3 u8=1\n1 str=").utf8Bytes { bytes in _ = try lines.write(bytes) { (chunk) throws(WQError) in try Self.taken(chunk, .lines) } }
        expectFailure(EINVAL, naming: ["line 2", "4096 bytes without a newline"]) {
            try long.withUnsafeBytes { try lines.write($0) { (chunk) throws(WQError) in try Self.taken(chunk, .lines) } }
        }
        // A record's length byte under 8 can never be completed: refused at once,
        // with its offset in the stream.
        var records = WriteAssembler(unit: .records)
        let good = userRecord(subtype: 1, payload: [1, 2])
        try good.withUnsafeBytes { bytes in _ = try records.write(bytes) { (chunk) throws(WQError) in try Self.taken(chunk, .records) } }
        expectFailure(EINVAL, naming: ["byte 10", "length 3"]) {
            try ([0, 1, 0, 2, 3] as [UInt8]).withUnsafeBytes { bytes in try records.write(bytes) { (chunk) throws(WQError) in try Self.taken(chunk, .records) } }
        }
    }

    @Test func aPartialRecordAtCloseIsRejectedWithItsStreamOffset() throws {
        var records = WriteAssembler(unit: .records)
        let stream = userRecord(subtype: 1, payload: [1, 2, 3]) + Array(userRecord(subtype: 2, payload: [9, 9]).prefix(6))
        try stream.withUnsafeBytes { bytes in _ = try records.write(bytes) { (chunk) throws(WQError) in try Self.taken(chunk, .records) } }
        #expect(records.heldCount == 6)
        expectFailure(EINVAL, naming: ["byte 11"]) {
            try records.finish { (chunk) throws(WQError) in try Self.taken(chunk, .records) }
        }
    }

    @Test func aFilterStreamExtendsButNeverClearsAfterItsFirstChunk() throws {
        #expect(try Grammar.filter("\n# c\n", maxEntries: 16) == .clear)
        #expect(try Grammar.filter("\n# c\n", maxEntries: 16, continuing: true) == .entries([]))
        #expect(try Grammar.filter("none\n", maxEntries: 16, continuing: true) == .entries([]))
        // `none` adds nothing wherever it stands, so a stream cut after it means the same.
        #expect(try Grammar.filter("none\ntype=1\n", maxEntries: 16) == Grammar.filter("type=1", maxEntries: 16))
        expectFailure(EINVAL, naming: ["line 8"]) { try Grammar.filter("none\nbogus\n", maxEntries: 16, firstLine: 7, continuing: true) }
    }
}

extension String {
    /// Runs `body` on the string's UTF-8 bytes.
    func utf8Bytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Array(utf8).withUnsafeBytes(body)
    }
}
