/// A fixed number of record slots, 128 bytes each, in one allocation made up front,
/// so queuing a record never allocates. It keeps the kernel's loss bookkeeping: a
/// record posted to a full ring is dropped and the newest queued record is marked;
/// reading a marked record owes the reader one loss record.
///
/// Not thread-safe: the engine guards it with its lock.
final class RecordRing {
    /// Slot size: the largest record (127 bytes) plus one byte for the loss mark.
    static let slotSize = 128
    /// Offset of the loss-mark byte inside a slot; never part of a record.
    private static let markOffset = 127

    private(set) var capacity: Int
    private var slots: UnsafeMutableRawPointer
    /// Index of the oldest queued record.
    private var head = 0
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
        slots = .allocate(byteCount: capacity * Self.slotSize, alignment: 16)
    }

    deinit { slots.deallocate() }

    var isFull: Bool { count == capacity }
    /// True when a read would return something: records, or an owed loss record.
    var isReadable: Bool { count > 0 || lossPending }

    /// The slot `index` places past the start of the array, wrapping once: every
    /// caller passes less than `2 * capacity` (head < capacity, count <= capacity),
    /// so a compare replaces the division `%` would cost on every record.
    @inline(__always)
    private func slot(_ index: Int) -> UnsafeMutableRawPointer {
        slots + (index < capacity ? index : index - capacity) * Self.slotSize
    }

    /// Queues `record` with its header's `info` replaced by `info`, or returns false
    /// (marking the newest record) when the ring is full.
    func push(_ record: UnsafeRawBufferPointer, info: UInt32) -> Bool {
        guard count < capacity else {
            // The drop is reported after the newest record; a ring with no record to
            // mark cannot be full, since capacity is at least 1.
            slot(head + count - 1).storeBytes(of: 1, toByteOffset: Self.markOffset, as: UInt8.self)
            return false
        }
        let destination = slot(head + count)
        destination.copyMemory(from: record.baseAddress!, byteCount: record.count)
        (destination + 4).storeBytes(of: info.littleEndian, as: UInt32.self)
        destination.storeBytes(of: 0, toByteOffset: Self.markOffset, as: UInt8.self)
        count += 1
        byteCount += record.count
        return true
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

    /// Copies as many whole records as fit into `buffer`, placing loss records
    /// where the kernel places them.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> ReadOutcome {
        let lossSize = Records.loss.count
        var copied = 0
        var records = 0
        while true {
            if lossPending {
                guard buffer.count - copied >= lossSize else {
                    return copied == 0 ? .bufferTooSmall : .copied(bytes: copied, records: records)
                }
                Records.loss.withUnsafeBytes { loss in
                    (buffer.baseAddress! + copied).copyMemory(from: loss.baseAddress!, byteCount: lossSize)
                }
                copied += lossSize
                lossPending = false
            }
            guard count > 0 else { break }
            let source = slot(head)
            let length = Int(source.load(fromByteOffset: 4, as: UInt32.self).littleEndian & RecordLayout.lengthMask)
            guard length <= buffer.count - copied else {
                return copied == 0 ? .bufferTooSmall : .copied(bytes: copied, records: records)
            }
            (buffer.baseAddress! + copied).copyMemory(from: source, byteCount: length)
            copied += length
            records += 1
            lossPending = source.load(fromByteOffset: Self.markOffset, as: UInt8.self) != 0
            head += 1
            if head == capacity { head = 0 }
            count -= 1
            byteCount -= length
            // As in the kernel, a loss owed after the last queued record, or after a
            // record that filled the buffer, opens the next read instead.
            if copied == buffer.count || count == 0 { break }
        }
        return copied == 0 ? .empty : .copied(bytes: copied, records: records)
    }

    /// Changes the capacity, keeping queued records and their marks in order.
    /// The caller checks that `newCapacity >= count`.
    func resize(to newCapacity: Int) {
        precondition(newCapacity >= count && newCapacity > 0)
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: newCapacity * Self.slotSize, alignment: 16)
        for index in 0..<count {
            (fresh + index * Self.slotSize).copyMemory(from: slot(head + index), byteCount: Self.slotSize)
        }
        slots.deallocate()
        slots = fresh
        capacity = newCapacity
        head = 0
    }
}
