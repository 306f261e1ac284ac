/// A queue of up to `capacity` records, packed back to back in one circular byte
/// buffer allocated up front, so queuing never allocates and a read copies runs of
/// records with one or two `memcpy` calls. It keeps the kernel's loss bookkeeping: a
/// record posted to a full ring is dropped and the newest queued record is marked;
/// reading a marked record owes the reader one loss record.
///
/// The buffer holds `capacity × slotSize` bytes, room for `capacity` records of the
/// largest size. Beside it, per record position: where the record ends, as a running
/// byte count, so a read finds how many whole records fit by binary search instead of
/// walking them; and one loss-mark bit.
///
/// Not thread-safe: the engine guards it with its lock.
final class RecordRing {
    /// Bytes of buffer per record of capacity: at least the largest record (127).
    static let slotSize = 128

    private(set) var capacity: Int
    /// `capacity × slotSize`: where the buffer wraps.
    private var wrapSize: Int
    private var buffer: UnsafeMutableRawPointer
    /// Per position: `pushedBytes` just after that record was queued. Differences of
    /// these running counts (mod 2³²) are byte counts of runs of records.
    private var ends: UnsafeMutablePointer<UInt32>
    /// One bit per record position.
    private var marks: UnsafeMutablePointer<UInt64>
    /// Marks set; when zero, reads skip the bitmap.
    private var markCount = 0
    /// Bytes ever queued, mod 2³².
    private var pushedBytes: UInt32 = 0
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
        buffer = .allocate(byteCount: wrapSize, alignment: 16)
        ends = .allocate(capacity: capacity)
        marks = Self.allocateMarks(capacity: capacity)
    }

    deinit {
        buffer.deallocate()
        ends.deallocate()
        marks.deallocate()
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
    // in-range values), so a compare replaces a division.
    @inline(__always) private func wrapped(offset: Int) -> Int { offset < wrapSize ? offset : offset &- wrapSize }
    @inline(__always) private func wrapped(position: Int) -> Int { position < capacity ? position : position &- capacity }

    @inline(__always) private func isMarked(_ position: Int) -> Bool {
        marks[position >> 6] & (1 << UInt64(position & 63)) != 0
    }

    @inline(__always) private func setMark(_ position: Int, _ on: Bool) {
        let bit: UInt64 = 1 << UInt64(position & 63)
        guard (marks[position >> 6] & bit != 0) != on else { return }
        marks[position >> 6] ^= bit
        markCount += on ? 1 : -1
    }

    /// Copies `bytes` into the buffer at `offset`, wrapping at the end.
    @inline(__always)
    private func store(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        guard let source = bytes.baseAddress else { return }
        let first = min(bytes.count, wrapSize - offset)
        (buffer + offset).copyMemory(from: source, byteCount: first)
        if first < bytes.count { buffer.copyMemory(from: source + first, byteCount: bytes.count - first) }
    }

    /// Marks the newest queued record: a post was dropped after it.
    private func markNewest() {
        // A full ring holds at least one record, since capacity is at least 1.
        setMark(wrapped(position: headPosition + count - 1), true)
    }

    /// Records were lost before they reached this ring (a kernel queue overflowed): a
    /// loss record follows the newest queued record, or comes next if none is queued.
    func markLoss() {
        if count > 0 { markNewest() } else { lossPending = true }
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
        if offset + record.count <= wrapSize {
            (buffer + offset).copyMemory(from: source, byteCount: record.count)
            buffer.storeBytes(of: info.littleEndian, toByteOffset: offset + 4, as: UInt32.self)
        } else {
            // Across the wrap: the header with `info` replaced, then the payload.
            let header = (record.loadUnaligned(as: UInt32.self), info.littleEndian)
            withUnsafeBytes(of: header) { store($0, at: offset) }
            store(UnsafeRawBufferPointer(rebasing: record[RecordLayout.headerSize...]),
                  at: wrapped(offset: offset + RecordLayout.headerSize))
        }
        pushedBytes &+= UInt32(truncatingIfNeeded: record.count)
        ends[wrapped(position: headPosition + count)] = pushedBytes
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
        if taken > 0 {
            var length = taken == records ? batch.count : 0
            if taken < records {
                for _ in 0..<taken {
                    length += Int(bytes.load(fromByteOffset: length + 4, as: UInt8.self) & UInt8(RecordLayout.lengthMask))
                }
            }
            let start = wrapped(offset: headOffset + byteCount)
            store(UnsafeRawBufferPointer(rebasing: batch[..<length]), at: start)
            // Per record: the watch ID into byte 5 (`info` bits 8–15, little-endian)
            // and its end into `ends`. Locals, since a store through a raw pointer
            // could alias any property; sums of in-range offsets cannot overflow.
            let buffer = self.buffer, ends = self.ends, wrapSize = self.wrapSize, capacity = self.capacity
            var total = pushedBytes
            var position = wrapped(position: headPosition + count)
            var offset = 0
            while offset < length {
                let target = start &+ offset &+ 5
                buffer.storeBytes(of: watchID, toByteOffset: target < wrapSize ? target : target &- wrapSize, as: UInt8.self)
                let recordLength = bytes.load(fromByteOffset: offset &+ 4, as: UInt8.self) & UInt8(RecordLayout.lengthMask)
                offset &+= Int(recordLength)
                total &+= UInt32(recordLength)
                ends[position] = total
                position &+= 1
                if position == capacity { position = 0 }
            }
            pushedBytes = total
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

    /// The bytes of the oldest `records` records (1...count): where the last of them
    /// ends, less where the oldest began.
    @inline(__always)
    private func bytes(ofFirst records: Int) -> Int {
        Int(ends[wrapped(position: headPosition + records - 1)] &- (pushedBytes &- UInt32(truncatingIfNeeded: byteCount)))
    }

    /// How many of the oldest records fit in `room` bytes, and their bytes.
    private func fitting(in room: Int) -> (records: Int, bytes: Int) {
        if byteCount <= room { return (count, byteCount) }
        // The run grows with its length: find the longest that fits.
        var low = 0, high = count // the first `low` fit (0 trivially); the first `high` do not
        while high - low > 1 {
            let middle = (low + high) / 2
            if bytes(ofFirst: middle) <= room { low = middle } else { high = middle }
        }
        return (low, low == 0 ? 0 : bytes(ofFirst: low))
    }

    /// The index within the next `records` records of the first marked one.
    private func firstMark(within records: Int) -> Int? {
        var index = 0
        while index < records {
            let position = wrapped(position: headPosition + index)
            let span = min(64 - (position & 63), capacity - position, records - index)
            let word = marks[position >> 6] >> UInt64(position & 63)
            let bits = span == 64 ? word : word & ((1 << UInt64(span)) - 1)
            if bits != 0 { return index + bits.trailingZeroBitCount }
            index += span
        }
        return nil
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
            var (runRecords, runBytes) = fitting(in: destination.count - copied)
            guard runRecords > 0 else { break }
            if markCount > 0, let marked = firstMark(within: runRecords) {
                setMark(wrapped(position: headPosition + marked), false)
                lossPending = true
                if marked + 1 < runRecords {
                    runRecords = marked + 1
                    runBytes = bytes(ofFirst: runRecords)
                }
            }
            let first = min(runBytes, wrapSize - headOffset)
            (base + copied).copyMemory(from: buffer + headOffset, byteCount: first)
            if first < runBytes { (base + copied + first).copyMemory(from: buffer, byteCount: runBytes - first) }
            copied += runBytes
            records += runRecords
            headOffset = wrapped(offset: headOffset + runBytes)
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
        let freshBuffer = UnsafeMutableRawPointer.allocate(byteCount: newWrapSize, alignment: 16)
        let first = min(byteCount, wrapSize - headOffset)
        freshBuffer.copyMemory(from: buffer + headOffset, byteCount: first)
        if first < byteCount { (freshBuffer + first).copyMemory(from: buffer, byteCount: byteCount - first) }
        let freshEnds = UnsafeMutablePointer<UInt32>.allocate(capacity: newCapacity)
        let freshMarks = Self.allocateMarks(capacity: newCapacity)
        for index in 0..<count {
            let position = wrapped(position: headPosition + index)
            freshEnds[index] = ends[position]
            if markCount > 0 && isMarked(position) { freshMarks[index >> 6] |= 1 << UInt64(index & 63) }
        }
        buffer.deallocate()
        ends.deallocate()
        marks.deallocate()
        buffer = freshBuffer
        ends = freshEnds
        marks = freshMarks
        capacity = newCapacity
        wrapSize = newWrapSize
        headOffset = 0
        headPosition = 0
    }
}
