import Testing
@testable import WatchQueueCore
import CWatchQueueABI
#if canImport(Glibc)
import Glibc
#endif

// MARK: bytes from the C helper (the kernel's structs and macros)

/// Runs a `wq_abi_*` builder on a 128-byte buffer and returns the bytes it wrote.
func cRecord(_ build: (UnsafeMutablePointer<UInt8>) -> Int) -> [UInt8] {
    var buffer = [UInt8](repeating: 0xee, count: 128)
    let length = buffer.withUnsafeMutableBufferPointer { build($0.baseAddress!) }
    return Array(buffer.prefix(length))
}

func cHeader(type: UInt32, subtype: UInt8, length: Int, watchID: UInt8 = 0, typeInfo: UInt16 = 0) -> [UInt8] {
    cRecord { wq_abi_header($0, type, UInt32(subtype), UInt32(length), UInt32(watchID), UInt32(typeInfo)) }
}

func cRemoval(watchID: UInt8, objectID: UInt64) -> [UInt8] {
    cRecord { wq_abi_removal($0, UInt32(watchID), objectID) }
}

func cLoss() -> [UInt8] { cRecord { wq_abi_loss($0) } }

func cKey(_ subtype: UInt8, watchID: UInt8 = 0, keyID: UInt32, aux: UInt32) -> [UInt8] {
    cRecord { wq_abi_key($0, UInt32(subtype), UInt32(watchID), keyID, aux) }
}

func cFilterEntry(type: UInt32, infoFilter: UInt32, infoMask: UInt32, subtypeWords: [UInt32]) -> [UInt8] {
    precondition(subtypeWords.count == 8)
    return cRecord { out in
        subtypeWords.withUnsafeBufferPointer { wq_abi_filter_entry(out, type, infoFilter, infoMask, $0.baseAddress!) }
    }
}

// MARK: errors

/// The error `body` throws, or nil when it succeeds. Every failure in the core must
/// be a `WQError`; anything else is recorded as an issue.
func failure<T>(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> T) -> WQError? {
    do {
        _ = try body()
        return nil
    } catch let error as WQError {
        return error
    } catch {
        Issue.record("not a WQError: \(error)", sourceLocation: sourceLocation)
        return WQError(0, "untyped")
    }
}

/// Expects `body` to fail with `errno`, with a reason that names every one of `tokens`.
func expectFailure<T>(_ errno: Int32, naming tokens: [String] = [],
                      sourceLocation: SourceLocation = #_sourceLocation,
                      _ body: () throws -> T) {
    guard let error = failure(sourceLocation: sourceLocation, body) else {
        Issue.record("expected \(WQError.errnoName(errno)), but it succeeded", sourceLocation: sourceLocation)
        return
    }
    #expect(error.errno == errno, "reason: \(error.reason)", sourceLocation: sourceLocation)
    #expect(!error.reason.isEmpty, sourceLocation: sourceLocation)
    for token in tokens {
        #expect(error.reason.contains(token), "reason \(error.reason.debugDescription) should name \(token)",
                sourceLocation: sourceLocation)
    }
}

// MARK: engine fixtures

/// An engine with small default queues, and shortcuts for the common steps.
struct Fixture {
    let engine: Engine

    init(limits: Limits = Fixture.smallLimits()) { engine = Engine(limits: limits) }

    static func smallLimits(defaultSize: Int = 8) -> Limits {
        var limits = Limits()
        limits.defaultSize = defaultSize
        return limits
    }

    @discardableResult
    func queue(_ name: String, size: Int? = nil, owner: Credentials = .root) throws -> QueueID {
        let queue = try engine.createQueue(named: name, owner: owner)
        if let size { try engine.setSize(of: queue, to: size) }
        return queue
    }

    @discardableResult
    func source(_ name: String, type: UInt32? = nil, objectID: UInt64? = nil, owner: Credentials = .root) throws -> SourceID {
        let source = try engine.createSource(named: name, owner: owner)
        if let type { try engine.setType(of: source, to: type) }
        if let objectID { try engine.setObjectID(of: source, to: objectID) }
        return source
    }

    /// Applies the text of a write to the source's `watches` file.
    @discardableResult
    func watches(_ text: String, on source: SourceID, caller: Credentials = .root) throws -> Wakeups {
        try engine.applyWatches(Grammar.watches(text), to: source, caller: caller)
    }

    @discardableResult
    func post(_ text: String, to source: SourceID) throws -> Wakeups {
        try engine.postText(text, to: source)
    }

    @discardableResult
    func postBinary(_ bytes: [UInt8], to source: SourceID) throws -> Wakeups {
        try bytes.withUnsafeBytes { (buffer) throws -> Wakeups in try engine.postBinary(buffer, to: source) }
    }

    /// A non-blocking read with a buffer of `capacity` bytes.
    func read(_ queue: QueueID, capacity: Int = 4096) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0xa5, count: capacity)
        let count = try buffer.withUnsafeMutableBytes { (raw) throws -> Int in
            try engine.read(from: queue, into: raw)
        }
        return Array(buffer.prefix(count))
    }

    func status(_ queue: QueueID) throws -> QueueStatus { try engine.status(of: queue) }
}

/// The records in a packed stream, each as its header and whole bytes.
func records(in bytes: [UInt8]) -> [(header: RecordHeader, bytes: [UInt8])] {
    bytes.withUnsafeBytes { raw in
        var iterator = RecordIterator(raw)
        var result: [(RecordHeader, [UInt8])] = []
        while let record = iterator.next() { result.append((record.header, Array(record.bytes))) }
        #expect(iterator.error == nil, "the stream is not whole records")
        return result
    }
}

/// True for an 8-byte loss record.
func isLoss(_ header: RecordHeader) -> Bool {
    header.type == NotificationType.meta && header.subtype == MetaSubtype.loss
}

/// A user-type record of `length` bytes with `payload` after the header.
func userRecord(subtype: UInt8, payload: [UInt8] = [], typeInfo: UInt16 = 0, type: UInt32 = NotificationType.user) -> [UInt8] {
    RecordHeader(type: type, subtype: subtype, length: 8 + payload.count, typeInfo: typeInfo).bytes + payload
}

extension Array where Element == UInt8 {
    /// Hex, for readable failure messages.
    var hex: String { map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ") }
}
