/// A queue of up to `capacity` records, packed back to back in one circular byte
/// buffer allocated up front, so queuing never allocates and a read copies runs of
/// records with one or two `memcpy` calls. It keeps the kernel's loss bookkeeping: a
/// record posted to a full ring is dropped and the newest queued record is marked;
/// reading a marked record owes the reader one loss record.
///
/// The buffer holds `capacity × slotSize` bytes, room for `capacity` records of the
/// largest size, followed by a mirror of its first `maxLength` bytes, kept current
/// for the length bytes it is read for: a header that wraps past the end still gives
/// its length in one load. Marks live in a bitmap beside it, one bit per record
/// position.
///
/// Not thread-safe: the engine guards it with its lock.
final class RecordRing {
    /// Bytes of buffer per record of capacity: at least the largest record (127).
    static let slotSize = 128
    private static let mirrorSize = RecordLayout.maxLength

    private(set) var capacity: Int
    /// `capacity × slotSize`: where the buffer wraps.
    private var wrapSize: Int
    private var buffer: UnsafeMutableRawPointer
    /// One bit per record position (`position`: 0..<capacity, in step with `offset`).
    private var marks: UnsafeMutablePointer<UInt64>
    /// Marks set; when zero, reads skip the bitmap.
    private var markCount = 0
    /// Byte offset and record position of the oldest queued record.
    private var headOffset = 0
    private var headPosition = 0
    /// Records queued.
    private(set) var count = 0
    /// Bytes of the records queued (what FIONREAD reports).
    private(set) var byteCount = 0
    /// A loss record is owed at the start of the next read: the marked record was
    /// the last one read, or it filled the reader's buffer.
    private(set) var lossPending = false

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        wrapSize = capacity * Self.slotSize
        buffer = Self.allocateBuffer(wrapSize: wrapSize)
        marks = Self.allocateMarks(capacity: capacity)
    }

    deinit {
        buffer.deallocate()
        marks.deallocate()
    }

    private static func allocateBuffer(wrapSize: Int) -> UnsafeMutableRawPointer {
        .allocate(byteCount: wrapSize + mirrorSize, alignment: 16)
    }

    private static func allocateMarks(capacity: Int) -> UnsafeMutablePointer<UInt64> {
        let words = (capacity + 63) / 64
        let marks = UnsafeMutablePointer<UInt64>.allocate(capacity: words)
        marks.initialize(repeating: 0, count: words)
        return marks
    }

    var isFull: Bool { count == capacity }
    /// True when a read would return something: records, or an owed loss record.
    var isReadable: Bool { count > 0 || lossPending }

    // Every offset and position passed below is under twice the bound (a sum of two
    // in-range values), so a compare replaces a division on every record.
    @inline(__always) private func wrapped(offset: Int) -> Int { offset < wrapSize ? offset : offset - wrapSize }
    @inline(__always) private func wrapped(position: Int) -> Int { position < capacity ? position : position - capacity }

    /// The length of the record starting at `offset`; the mirror makes it one load.
    @inline(__always) private func length(at offset: Int) -> Int {
        Int(buffer.load(fromByteOffset: offset + 4, as: UInt8.self) & UInt8(RecordLayout.lengthMask))
    }

    @inline(__always) private func isMarked(_ position: Int) -> Bool {
        marks[position >> 6] & (1 << UInt64(position & 63)) != 0
    }

    @inline(__always) private func setMark(_ position: Int, _ on: Bool) {
        let bit: UInt64 = 1 << UInt64(position & 63)
        guard (marks[position >> 6] & bit != 0) != on else { return }
        marks[position >> 6] ^= bit
        markCount += on ? 1 : -1
    }

    /// Copies `length` bytes to the buffer at `offset`, wrapping at the end, and keeps
    /// the mirror of the first bytes current.
    @inline(__always)
    private func store(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        guard let source = bytes.baseAddress else { return }
        let length = bytes.count
        let first = min(length, wrapSize - offset)
        (buffer + offset).copyMemory(from: source, byteCount: first)
        if first < length {
            buffer.copyMemory(from: source + first, byteCount: length - first)
            mirror(from: 0, to: length - first)
        } else if offset < Self.mirrorSize {
            mirror(from: offset, to: offset + length)
        }
    }

    /// Copies the buffer's bytes `start..<end`, as far as the mirror reaches, into it.
    private func mirror(from start: Int, to end: Int) {
        let end = min(end, Self.mirrorSize)
        guard start < end else { return }
        (buffer + wrapSize + start).copyMemory(from: buffer + start, byteCount: end - start)
    }

    /// Marks the newest queued record: a post was dropped after it.
    private func markNewest() {
        // A full ring holds at least one record, since capacity is at least 1.
        setMark(wrapped(position: headPosition + count - 1), true)
    }

    /// Queues `record` with its header's `info` replaced by `info`, or returns false
    /// (marking the newest record) when the ring is full.
    func push(_ record: UnsafeRawBufferPointer, info: UInt32) -> Bool {
        guard count < capacity else {
            markNewest()
            return false
        }
        guard let source = record.baseAddress, record.count >= RecordLayout.headerSize else { return false }
        let offset = wrapped(offset: headOffset + byteCount)
        if offset >= Self.mirrorSize && offset + record.count <= wrapSize {
            // The common case: clear of the wrap and of the mirrored start.
            (buffer + offset).copyMemory(from: source, byteCount: record.count)
            buffer.storeBytes(of: info.littleEndian, toByteOffset: offset + 4, as: UInt32.self)
        } else {
            // The header with `info` replaced, then the payload.
            let header = (record.loadUnaligned(as: UInt32.self), info.littleEndian)
            withUnsafeBytes(of: header) { store($0, at: offset) }
            store(UnsafeRawBufferPointer(rebasing: record[RecordLayout.headerSize...]),
                  at: wrapped(offset: offset + RecordLayout.headerSize))
        }
        count += 1
        byteCount += record.count
        return true
    }

    /// Queues the first records of `batch`, `records` well-formed records packed back
    /// to back, in one copy, with `watchID` as each one's watch ID; those that do not
    /// fit are dropped, marking the newest queued record. Returns how many were queued.
    func push(batch: UnsafeRawBufferPointer, records: Int, watchID: UInt8) -> Int {
        guard let bytes = batch.baseAddress else { return 0 }
        let taken = min(records, capacity - count)
        var length = taken == records ? batch.count : 0
        if taken < records {
            for _ in 0..<taken {
                length += Int(bytes.load(fromByteOffset: length + 4, as: UInt8.self) & UInt8(RecordLayout.lengthMask))
            }
        }
        if taken > 0 {
            let start = wrapped(offset: headOffset + byteCount)
            store(UnsafeRawBufferPointer(rebasing: batch[..<length]), at: start)
            // The watch ID is byte 5 of every record: `info` bits 8–15, little-endian.
            // Not a length byte, so the mirror that `store` refreshed stays current.
            // Locals, since a store through a raw pointer could alias any property.
            let buffer = self.buffer, wrapSize = self.wrapSize
            var offset = 0
            for _ in 0..<taken {
                // Sums of offsets under the buffer's size: they cannot overflow.
                let target = start &+ offset &+ 5
                buffer.storeBytes(of: watchID, toByteOffset: target < wrapSize ? target : target &- wrapSize, as: UInt8.self)
                offset &+= Int(bytes.load(fromByteOffset: offset &+ 4, as: UInt8.self) & UInt8(RecordLayout.lengthMask))
            }
            count += taken
            byteCount += length
        }
        if taken < records { markNewest() }
        return taken
    }

    /// The outcome of one read.
    enum ReadOutcome: Equatable {
        /// `bytes` were copied, holding `records` records (loss records not counted).
        case copied(bytes: Int, records: Int)
        /// The first record, or an owed loss record, does not fit: nothing consumed.
        case bufferTooSmall
        /// Nothing to read.
        case empty
    }

    /// Copies as many whole records as fit into `destination`, placing loss records
    /// where the kernel places them.
    func read(into destination: UnsafeMutableRawBufferPointer) -> ReadOutcome {
        guard let base = destination.baseAddress else { return isReadable ? .bufferTooSmall : .empty }
        let lossSize = Records.loss.count
        var copied = 0
        var records = 0
        while true {
            if lossPending {
                guard destination.count - copied >= lossSize else { break }
                Records.loss.withUnsafeBytes { (base + copied).copyMemory(from: $0.baseAddress!, byteCount: lossSize) }
                copied += lossSize
                lossPending = false
            }
            // A run: the records from the head that fit, ending after a marked one.
            let room = destination.count - copied
            var runBytes = 0, runRecords = 0
            var offset = headOffset
            let queued = count
            if markCount == 0 && byteCount <= room {
                // Everything fits and nothing is marked: no walk.
                runBytes = byteCount
                runRecords = queued
                offset = wrapped(offset: headOffset + byteCount)
            } else {
                let anyMarks = markCount > 0
                while runRecords < queued {
                    let length = length(at: offset)
                    guard runBytes + length <= room else { break }
                    runBytes += length
                    offset = wrapped(offset: offset + length)
                    runRecords += 1
                    if anyMarks {
                        let position = wrapped(position: headPosition + runRecords - 1)
                        if isMarked(position) {
                            setMark(position, false)
                            lossPending = true
                            break
                        }
                    }
                }
            }
            guard runRecords > 0 else { break }
            let first = min(runBytes, wrapSize - headOffset)
            (base + copied).copyMemory(from: buffer + headOffset, byteCount: first)
            if first < runBytes { (base + copied + first).copyMemory(from: buffer, byteCount: runBytes - first) }
            copied += runBytes
            records += runRecords
            headOffset = offset
            headPosition = wrapped(position: headPosition + runRecords)
            count -= runRecords
            byteCount -= runBytes
            // As in the kernel, a loss owed after the last queued record, or after a
            // record that filled the buffer, opens the next read instead; a run that
            // ended unmarked ended because the next record does not fit.
            if !lossPending || copied == destination.count || count == 0 { break }
        }
        if copied > 0 { return .copied(bytes: copied, records: records) }
        return isReadable ? .bufferTooSmall : .empty
    }

    /// Changes the capacity, keeping queued records and their marks in order.
    /// The caller checks that `newCapacity >= count`.
    func resize(to newCapacity: Int) {
        precondition(newCapacity >= count && newCapacity > 0)
        let newWrapSize = newCapacity * Self.slotSize
        let fresh = Self.allocateBuffer(wrapSize: newWrapSize)
        let first = min(byteCount, wrapSize - headOffset)
        fresh.copyMemory(from: buffer + headOffset, byteCount: first)
        if first < byteCount { (fresh + first).copyMemory(from: buffer, byteCount: byteCount - first) }
        let freshMarks = Self.allocateMarks(capacity: newCapacity)
        if markCount > 0 {
            for index in 0..<count where isMarked(wrapped(position: headPosition + index)) {
                freshMarks[index >> 6] |= 1 << UInt64(index & 63)
            }
        }
        buffer.deallocate()
        marks.deallocate()
        buffer = fresh
        marks = freshMarks
        capacity = newCapacity
        wrapSize = newWrapSize
        headOffset = 0
        headPosition = 0
        mirror(from: 0, to: byteCount)
    }
}
