// The translation of the kernel's filter struct (IOC_WATCH_QUEUE_SET_FILTER, carried as
// WQFS_IOC_SET_FILTER): acceptance against the kernel's rules written out plainly, and
// every accepted entry matching records exactly as the struct says.
import WatchQueueCore

extension ParserTargets {
    public static func kernelFilter(_ data: UnsafeRawBufferPointer) {
        func word(_ offset: Int) -> UInt32 {
            (0..<4).reduce(UInt32(0)) { $0 | UInt32(data[offset + $1]) << (8 * UInt32($1)) }
        }
        // The rules, in the kernel's order.
        var expected: Bool
        var count = 0
        if data.count < 8 {
            expected = false
        } else {
            count = Int(word(0))
            if count == 0 {
                expected = true
            } else if count > 16 || word(4) != 0 || data.count < 8 + count * 44 {
                expected = false
            } else {
                expected = (0..<count).allSatisfy { index in
                    let at = 8 + index * 44, filter = word(at + 4), mask = word(at + 8)
                    return filter & ~mask == 0 && mask & 0x7f == 0
                }
            }
        }
        let result = Result { () throws(WQError) in try KernelFilter.parse(data) }
        switch result {
        case .failure(let error):
            fuzzCheck(!expected, "refused a filter the kernel takes: \(error)")
            fuzzCheck(error.errno == 22, "errno \(error.errno) is not EINVAL")
        case .success(.clear):
            fuzzCheck(expected && count == 0, "cleared for nr_filters \(count)")
        case .success(.entries(let entries)):
            fuzzCheck(expected && count > 0, "accepted a filter the kernel refuses")
            let kept = (0..<count).filter { word(8 + $0 * 44) <= 0xff_ffff }
            fuzzCheck(entries.count == max(kept.count, 1), "\(entries.count) entries from \(kept.count) kept")
            // Each kept entry admits exactly the subtypes its bitmap names.
            var probe = FuzzInput(data)
            for (entry, index) in zip(entries, kept) {
                let at = 8 + index * 44
                let subtype = probe.byte()
                let bit = word(at + 12 + Int(subtype) / 32 * 4) >> (UInt32(subtype) % 32) & 1 == 1
                fuzzCheck(entry.subtypes.contains(subtype) == bit, "subtype \(subtype) of entry \(index)")
                fuzzCheck(entry.type == word(at) && entry.infoFilter == word(at + 4) && entry.infoMask == word(at + 8),
                          "entry \(index) differs from the struct")
            }
        }
    }
}
