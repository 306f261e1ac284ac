import Testing
import WQCatKit
import WatchQueueCore

/// Feeds `pieces` one after another, then ends the input; returns the text lines
/// printed and the error that stopped the stream, if any.
private func reassemble(_ pieces: [[UInt8]]) -> (text: String, error: RecordStreamError?) {
    var stream = RecordReassembler()
    var text = ""
    do {
        for piece in pieces {
            stream.append(contentsOf: piece)
            while let record = try stream.next() { text += RecordFormatter.textLine(record) + "\n" }
        }
        try stream.finish()
        return (text, nil)
    } catch {
        return (text, error)
    }
}

@Suite struct Reassembly {
    @Test func oneByteAtATime() {
        let result = reassemble(Fixtures.goldenStream.map { [$0] })
        #expect(result.error == nil)
        #expect(result.text == Fixtures.goldenText)
    }

    @Test(arguments: [1, 3, 7, 8, 9, 15, 16, 17, 100, 4096])
    func inChunksOfEverySize(size: Int) {
        let bytes = Fixtures.goldenStream
        let pieces = stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0 ..< min($0 + size, bytes.count)]) }
        let result = reassemble(pieces)
        #expect(result.error == nil)
        #expect(result.text == Fixtures.goldenText)
    }

    @Test func partialRecordWaitsForMoreBytes() throws {
        var stream = RecordReassembler()
        stream.append(contentsOf: Fixtures.kernelRemoval.prefix(10))
        #expect(try stream.next() == nil)
        #expect(stream.pendingByteCount == 10)
        stream.append(contentsOf: Fixtures.kernelRemoval.dropFirst(10))
        #expect(try stream.next()?.bytes == Fixtures.kernelRemoval)
        #expect(stream.offset == 16)
        #expect(stream.pendingByteCount == 0)
    }

    @Test func zeroLengthStopsAtOnceWithItsOffset() {
        let zero: [UInt8] = [0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]
        let result = reassemble([Fixtures.kernelLoss + Fixtures.kernelRemoval, zero + Fixtures.kernelLoss])
        #expect(result.text == "-- LOSS --\n305419896 gc\n")
        #expect(result.error == .lengthTooSmall(offset: 24, length: 0))
    }

    @Test func lengthUnderEightIsAnErrorNotAGuess() {
        let seven = Fixtures.record(type: 1, subtype: 0).prefix(4) + [0x07, 0x00, 0x00, 0x00]
        let result = reassemble([Array(seven) + [0, 0, 0, 0, 0, 0, 0, 0]])
        #expect(result.text == "")
        #expect(result.error == .lengthTooSmall(offset: 0, length: 7))
    }

    @Test func errorIsSticky() {
        var stream = RecordReassembler()
        stream.append(contentsOf: [0, 0, 0, 0, 0, 0, 0, 0] as [UInt8])
        #expect(throws: RecordStreamError.lengthTooSmall(offset: 0, length: 0)) { try stream.next() }
        stream.append(contentsOf: Records.loss)
        #expect(throws: RecordStreamError.lengthTooSmall(offset: 0, length: 0)) { try stream.next() }
    }

    @Test func recordRunningPastTheEnd() {
        let cut = Array(Records.key(.linked, keyID: 1, aux: 2).prefix(12))
        let result = reassemble([Fixtures.kernelLoss, cut])
        #expect(result.text == "-- LOSS --\n")
        #expect(result.error == .runsPastEnd(offset: 8, length: 16, available: 12))
        #expect(result.error?.message == "truncated record at byte 8: its length is 16 but input ends after 12 bytes")
    }

    @Test func headerCutShort() {
        let result = reassemble([Fixtures.kernelLoss + Fixtures.kernelLoss.prefix(5)])
        #expect(result.text == "-- LOSS --\n")
        #expect(result.error == .truncatedHeader(offset: 8, available: 5))
        #expect(result.error?.message == "truncated record at byte 8: input ends 5 bytes into its 8-byte header")
    }

    @Test func emptyInputIsFine() {
        let result = reassemble([])
        #expect(result.text == "")
        #expect(result.error == nil)
    }

    @Test func offsetsCountTheWholeStreamAcrossCompaction() {
        // Many reads, so consumed bytes are dropped several times before the error.
        let pieces = Array(repeating: Fixtures.kernelRemoval, count: 1000) + [[0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00]]
        let result = reassemble(pieces)
        #expect(result.error == .lengthTooSmall(offset: 16_000, length: 3))
        #expect(result.text.split(separator: "\n").count == 1000)
    }
}
