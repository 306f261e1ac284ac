import WatchQueueCore

/// Cuts a byte stream that arrives in arbitrary pieces into whole records.
///
/// A queue's read() never splits a record, but a pipe or a file read in fixed-size
/// blocks may, so bytes are kept until their record is complete. Judgement is strict
/// (the core's `RecordIterator` does it): a header with a length under 8 is an error
/// as soon as its 8 bytes are here; a partial record is an error only at the end of
/// the input (`finish()`), when no more bytes can complete it. Error offsets count
/// from the first byte of the whole stream.
public struct RecordReassembler: Sendable {
    private var buffer: [UInt8] = []
    /// Index in `buffer` of the next unconsumed byte.
    private var start = 0
    /// Stream offset of `buffer[0]`.
    private var base = 0

    public init() {}

    /// Stream offset of the next record, i.e. the number of bytes consumed so far.
    public var offset: Int { base + start }

    /// Bytes received that do not yet form a whole record.
    public var pendingByteCount: Int { buffer.count - start }

    /// Adds the next bytes of the stream.
    public mutating func append<Bytes: Collection<UInt8>>(contentsOf bytes: Bytes) {
        // Drop consumed bytes before growing, so the buffer stays about one read long.
        if start > 0 {
            buffer.removeFirst(start)
            base += start
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next whole record, or nil if more bytes are needed.
    /// Throws `.lengthTooSmall` for a header whose length is under 8; the stream cannot
    /// be resynchronised after that, so every later call throws too.
    public mutating func next() throws(RecordStreamError) -> CapturedRecord? {
        let streamOffset = offset
        let found = buffer.withUnsafeBytes { raw -> Result<CapturedRecord, RecordStreamError>? in
            var records = RecordIterator(UnsafeRawBufferPointer(rebasing: raw[start...]))
            if let record = records.next() {
                return .success(CapturedRecord(header: record.header, bytes: Array(record.bytes)))
            }
            if case .lengthTooSmall = records.error {
                return records.error.map { .failure($0.shifted(by: streamOffset)) }
            }
            return nil  // Out of data, or a partial record that more bytes may complete.
        }
        switch found {
        case .success(let record)?:
            start += record.bytes.count
            return record
        case .failure(let error)?:
            throw error
        case nil:
            return nil
        }
    }

    /// Declares the end of the input. Throws if bytes are left that do not form a whole
    /// record: a header cut short, a length under 8, or a record running past the end.
    public func finish() throws(RecordStreamError) {
        let streamOffset = offset
        let error = buffer.withUnsafeBytes { raw -> RecordStreamError? in
            var records = RecordIterator(UnsafeRawBufferPointer(rebasing: raw[start...]))
            while records.next() != nil {}
            return records.error
        }
        if let error { throw error.shifted(by: streamOffset) }
    }
}

extension RecordStreamError {
    /// The same error with its offset moved by `delta` bytes.
    func shifted(by delta: Int) -> RecordStreamError {
        switch self {
        case let .truncatedHeader(offset, available):
            .truncatedHeader(offset: offset + delta, available: available)
        case let .lengthTooSmall(offset, length):
            .lengthTooSmall(offset: offset + delta, length: length)
        case let .runsPastEnd(offset, length, available):
            .runsPastEnd(offset: offset + delta, length: length, available: available)
        }
    }

    /// A one-line explanation for a person, e.g.
    /// `record at byte 24 has length 0 (a record is at least 8 bytes)`.
    public var message: String {
        switch self {
        case let .truncatedHeader(offset, available):
            "truncated record at byte \(offset): input ends \(available) bytes into its 8-byte header"
        case let .lengthTooSmall(offset, length):
            "record at byte \(offset) has length \(length) (a record is at least 8 bytes)"
        case let .runsPastEnd(offset, length, available):
            "truncated record at byte \(offset): its length is \(length) but input ends after \(available) bytes"
        }
    }
}
