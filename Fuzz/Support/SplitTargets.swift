// DESIGN §8: a stream written in pieces cut anywhere means what it means written
// whole. The text and post.bin targets feed their input once more through a
// WriteAssembler, cut at points drawn from the input, and compare.
import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

extension ParserTargets {
    /// Up to eight cut points drawn from the input itself, anywhere in it.
    static func cuts(_ data: UnsafeRawBufferPointer) -> [Int] {
        var probe = FuzzInput(data)
        return (0..<probe.below(9)).map { _ in Int(probe.u16()) % (data.count + 1) }.sorted()
    }

    /// What each chunk gave, in order, when `data` is written in pieces cut at
    /// `cuts(data)` and then closed; or the first rejection.
    static func assembled<R>(_ data: UnsafeRawBufferPointer, _ unit: WriteAssembler.Unit,
                             _ apply: (WriteAssembler.Chunk) throws(WQError) -> WriteAssembler.Applied<R>) -> Result<[R], WQError> {
        var assembler = WriteAssembler(unit: unit)
        var results: [R] = []
        var start = 0
        do throws(WQError) {
            for cut in cuts(data) + [data.count] {
                if let result = try assembler.write(UnsafeRawBufferPointer(rebasing: data[start..<cut]), apply) {
                    results.append(result)
                }
                start = cut
            }
            if let result = try assembler.finish(apply) { results.append(result) }
            return .success(results)
        } catch {
            return .failure(error)
        }
    }

    /// Only a line held past the assembler's bound may be refused cut but not whole.
    static func isHeldLineBound(_ error: WQError) -> Bool { error.reason.hasSuffix("bytes without a newline") }

    /// Compares one write with the same bytes cut: the same values, or the same
    /// errno (and, when `sameReason`, the same reason: line numbers count from the
    /// stream's start either way).
    static func compare<T: Equatable>(_ whole: Result<T, WQError>, _ cut: Result<T, WQError>, sameReason: Bool, _ what: String) {
        switch (whole, cut) {
        case (.success(let a), .success(let b)):
            fuzzCheck(a == b, "\(what): the cut stream gives something else than one write")
        case (.failure(let a), .failure(let b)):
            fuzzCheck(isHeldLineBound(b) || (sameReason ? a == b : a.errno == b.errno), "\(what): one write \(a), cut \(b)")
        case (.success, .failure(let b)):
            fuzzCheck(isHeldLineBound(b), "\(what): cut refused what one write takes: \(b)")
        case (.failure(let a), .success):
            fuzzCheck(false, "\(what): cut took what one write refuses: \(a)")
        }
    }

    static func splitPost(_ data: UnsafeRawBufferPointer, whole: Result<[UInt8], WQError>) {
        // The filesystem refuses text that is not UTF-8 before any grammar sees it.
        guard String(validating: data, as: UTF8.self) != nil else { return }
        let cut = assembled(data, .lines) { (chunk) throws(WQError) in
            .init(try Grammar.post(String(decoding: chunk.bytes, as: UTF8.self), type: NotificationType.user, firstLine: chunk.firstLine),
                  taken: chunk.bytes.count)
        }.map { $0.flatMap { $0 } }
        compare(whole, cut, sameReason: true, "post")
    }

    static func splitWatches(_ data: UnsafeRawBufferPointer, whole: Result<[Grammar.WatchCommand], WQError>) {
        guard String(validating: data, as: UTF8.self) != nil else { return }
        let cut = assembled(data, .lines) { (chunk) throws(WQError) in
            .init(try Grammar.watches(String(decoding: chunk.bytes, as: UTF8.self), firstLine: chunk.firstLine), taken: chunk.bytes.count)
        }.map { $0.flatMap { $0 } }
        compare(whole, cut, sameReason: true, "watches")
    }

    /// The filter a stream leaves, applied the way the filesystem applies it: the
    /// first chunk replaces (or clears), later ones extend, within 16 entries.
    static func splitFilter(_ data: UnsafeRawBufferPointer, whole: Result<Grammar.FilterWrite, WQError>) {
        guard String(validating: data, as: UTF8.self) != nil else { return }
        var entries: [FilterEntry] = []
        let cut = assembled(data, .lines) { (chunk) throws(WQError) in
            let text = String(decoding: chunk.bytes, as: UTF8.self)
            switch try Grammar.filter(text, maxEntries: 16, firstLine: chunk.firstLine, continuing: !chunk.isFirst) {
            case .clear: entries = []
            case .entries(let new): entries = chunk.isFirst ? new : entries + new
            }
            guard entries.count <= 16 else { throw WQError(EINVAL, "over 16 entries") }
            return .init((), taken: chunk.bytes.count)
        }.map { _ in entries }
        let wholeEntries = whole.map { write -> [FilterEntry] in
            if case .entries(let entries) = write { entries } else { [] }
        }
        // The first bad line or the entry count may be found first: compare errnos.
        compare(wholeEntries, cut, sameReason: false, "filter")
    }

    static func splitPostBinary(_ data: UnsafeRawBufferPointer, type: UInt32, whole: Result<Int, WQError>) {
        let cut = assembled(data, .records) { (chunk) throws(WQError) in
            let taken = try Grammar.validatePostBinary(chunk.bytes, type: type, firstByte: chunk.firstByte, partial: !chunk.isFinal).bytes
            return .init(Array(chunk.bytes[..<taken]), taken: taken)
        }.map { $0.flatMap { $0 } }
        // Framing is checked for a whole write before types: compare errnos.
        // Every record arrives whole, in order: the same bytes as one write.
        compare(whole.map { _ in Array(data) }, cut, sameReason: false, "post.bin")
    }
}
