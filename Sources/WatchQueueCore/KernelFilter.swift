#if canImport(Glibc)
import Glibc
#endif

/// `struct watch_notification_filter`, as `IOC_WATCH_QUEUE_SET_FILTER` takes it and
/// `WQFS_IOC_SET_FILTER` carries it (include/wqfs/compat.h): a header
/// `{u32 nr_filters; u32 __reserved}` and `nr_filters` entries of 44 bytes
/// `{u32 type, info_filter, info_mask; u32 subtype_filter[8]}`, little-endian.
public enum KernelFilter {
    /// The most entries the kernel accepts.
    public static let maxEntries = 16
    public static let headerSize = 8
    public static let entrySize = 44

    /// Checks a filter as the kernel does and translates it. EINVAL, in the
    /// kernel's order: more than 16 entries or `__reserved` not 0; then, for every
    /// entry (ignored ones included), filter bits outside the mask or a mask
    /// touching the length bits 0x7f. `nr_filters` 0 means remove the filter (the
    /// kernel's NULL pointer; the shim refuses a real `nr_filters` 0 itself).
    ///
    /// Where wqfs keeps more than the kernel: the kernel keeps types below its
    /// `WATCH_TYPE__NR` (0 and 1) and only `subtype_filter[0]`; wqfs keeps every type
    /// a record can have (0...0xffffff, the system types included) and all eight
    /// subtype words, so all 256 subtypes count. Entries of type 0 (META) are kept
    /// as entries: META records always pass, but a filter of only `{type 0}` then
    /// refuses everything else, as the kernel's does. When no entry survives, every
    /// record but META is refused, as in the kernel.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(WQError) -> Grammar.FilterWrite {
        guard bytes.count >= headerSize else { throw .invalid("a filter request needs its 8-byte header, not \(bytes.count) bytes") }
        let count = word(bytes, 0)
        guard count != 0 else { return .clear }
        guard count <= maxEntries else { throw .invalid("\(count) filter entries exceed the kernel's limit of \(maxEntries)") }
        guard word(bytes, 4) == 0 else { throw .invalid("the filter's reserved word is 0x\(String(word(bytes, 4), radix: 16)), not 0") }
        let needed = headerSize + Int(count) * entrySize
        guard bytes.count >= needed else { throw .invalid("\(count) filter entries need \(needed) bytes, not \(bytes.count)") }
        var entries: [FilterEntry] = []
        for index in 0..<Int(count) {
            let at = headerSize + index * entrySize
            let type = word(bytes, at), infoFilter = word(bytes, at + 4), infoMask = word(bytes, at + 8)
            let entry = "filter entry \(index + 1): "
            guard infoFilter & ~infoMask == 0 else {
                throw .invalid(entry + "info filter 0x\(String(infoFilter, radix: 16)) has bits outside mask 0x\(String(infoMask, radix: 16))")
            }
            guard infoMask & RecordLayout.lengthMask == 0 else {
                throw .invalid(entry + "info mask 0x\(String(infoMask, radix: 16)) touches the length bits 0x7f")
            }
            // No record has a larger type: the entry could never match.
            guard type <= RecordLayout.maxType else { continue }
            var subtypes = SubtypeSet()
            for subtype in 0..<256 where word(bytes, at + 12 + subtype / 32 * 4) & (1 << UInt32(subtype % 32)) != 0 {
                subtypes.insert(UInt8(subtype))
            }
            entries.append(FilterEntry(kernelType: type, subtypes: subtypes, infoFilter: infoFilter, infoMask: infoMask))
        }
        // An empty list would mean "no filter" here; one META entry that admits no
        // subtype refuses all else and lets META through, as the kernel's empty filter.
        if entries.isEmpty { entries = [FilterEntry(kernelType: NotificationType.meta, subtypes: SubtypeSet(), infoFilter: 0, infoMask: 0)] }
        return .entries(entries)
    }

    private static func word(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}

extension FilterEntry {
    /// An entry from the kernel's filter struct, already checked by
    /// `KernelFilter.parse`. Unlike the text grammar's entries, type 0 is allowed:
    /// the kernel's filters name it (LTP's `{type 0, all}`).
    init(kernelType type: UInt32, subtypes: SubtypeSet, infoFilter: UInt32, infoMask: UInt32) {
        self.type = type
        self.subtypes = subtypes
        self.infoFilter = infoFilter
        self.infoMask = infoMask
    }
}
