import CSystemCalls
import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// `sources/mounts`: the mount table of wqfs's mount namespace as MOUNT records.
///
/// New mounts, unmounts and moves come from fanotify's mount-namespace events
/// (Linux 6.15+, root), one per mount and per propagated copy, in the order they
/// happened; read-only and other attribute changes, which fanotify does not report,
/// from `POLLPRI` on `/proc/self/mountinfo` and a diff of the table. Where fanotify
/// cannot be had (an older kernel, not root) the diff alone reports everything. Ids
/// are the kernel's 64-bit unique mount ids (statmount/listmount, 6.8+), or
/// mountinfo's reused ids where those calls are missing.
///
/// A fanotify event is posted as soon as it is read, its parent from one
/// `statmount` of the mount; the table is read again once per wake-up, after the
/// records have gone out (`settle`), so the full scan never delays a reader.
final class MountsMechanism: Mechanism, @unchecked Sendable {
    let name = "mounts"
    let type = SystemNotificationType.mount

    /// Event-thread state: the open descriptors and the table as last read.
    private var fanotify: Int32 = -1
    private var mountinfo: Int32 = -1
    private var current = MountTable()
    /// Unique id → mountinfo id of the mounts listed last: statmount is asked only
    /// about new ones.
    private var legacyOfUnique: [UInt64: UInt64] = [:]
    /// Parents of mounts attached or moved since the table was last read, from
    /// statmount: a detach or move read before the next scan names them.
    private var parents: [UInt64: UInt64] = [:]
    /// Whether the table must be read again at the end of this wake-up, and whether
    /// fanotify lost events since the last reading (then everything changed is posted).
    private var needsScan = false, overflowed = false
    private var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    private var statBuffer = [UInt8](repeating: 0, count: StatMount.basicLength)

    /// What FUSE threads read.
    private struct Shared {
        var counters = MechanismCounters()
        /// The table as last read, and the mounts gone since (newest last), for the
        /// side file.
        var table = MountTable()
        var gone: [MountInfoEntry] = []
    }
    private let shared = Locked(Shared())

    /// How many gone mounts the side file keeps, so an unmount can still be named.
    static let keptGone = 64

    // fanotify_init and fanotify_mark flags (newer than this machine's headers).
    private static let classNotify: UInt32 = 0, closeOnExec: UInt32 = 0x1, nonBlocking: UInt32 = 0x2
    private static let markAdd: UInt32 = 0x1

    func probe() -> String? {
        // Reading the table is the least this source needs; fanotify is tried when a
        // queue first watches, and its absence only narrows what is seen.
        mountinfoText() == nil ? callFailed("open /proc/self/mountinfo", errno: errno) : nil
    }

    func adjust(to demand: SourceDemand, sink: RecordSink) -> [Descriptor] {
        guard demand.watches > 0 else {
            closeAll()
            shared.withLock { $0.counters.open = false }
            return []
        }
        if mountinfo < 0 {
            mountinfo = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC)
            if let table = scan() { current = table }
            fanotify = openFanotify()
            let via = fanotify >= 0 ? "fanotify+mountinfo" : "mountinfo"
            shared.withLock {
                $0.counters.open = mountinfo >= 0
                $0.table = current
                $0.counters.details = [("via", via), ("mounts", "\(current.count)")]
            }
        }
        var descriptors: [Descriptor] = []
        if mountinfo >= 0 { descriptors.append(Descriptor(fd: mountinfo, events: EPOLLPRI.rawValue | EPOLLERR.rawValue)) }
        if fanotify >= 0 { descriptors.append(Descriptor(fd: fanotify, events: EPOLLIN.rawValue)) }
        return descriptors
    }

    func ready(_ fd: Int32, events: UInt32, sink: RecordSink) {
        if fd == fanotify {
            readFanotify(sink: sink)
        } else {
            shared.withLock { $0.counters.events += 1 }
        }
        needsScan = true
    }

    /// Reads the table once for everything this wake-up saw: with fanotify only what
    /// it cannot see (read-only, attributes) is posted from the diff, unless events
    /// were lost, when everything the diff shows is.
    func settle(sink: RecordSink) {
        guard needsScan else { return }
        needsScan = false
        defer {
            let posted = sink.posted
            shared.withLock { $0.counters.records = posted }
        }
        guard let table = scan() else { return }
        if overflowed {
            sink.loss()
            shared.withLock { $0.counters.resyncs += 1 }
        }
        post(current.changes(to: table), attributesOnly: fanotify >= 0 && !overflowed, sink: sink)
        overflowed = false
        replace(with: table)
        sink.flush()
    }

    var hasTable: Bool { true }

    var status: String { shared.withLock { $0.counters }.text(mechanism: "mounts") }

    /// Every mount the source knows, one per line: `ID PARENT MOUNT_POINT FS_TYPE
    /// SOURCE OPTIONS`, with mountinfo's escapes (so spaces never split a field);
    /// mounts gone lately follow, with `gone` at the end of the line.
    var table: String? {
        let (table, gone) = shared.withLock { ($0.table, $0.gone) }
        func line(_ entry: MountInfoEntry, parent: UInt64, suffix: String) -> String {
            let id = entry.uniqueMountID ?? entry.legacyMountID
            let fields = [entry.mountPoint, entry.fsType, entry.source, entry.mountOptions]
                .map { String(decoding: MountInfoEntry.escape($0), as: UTF8.self) }
            return "\(id) \(parent) " + fields.joined(separator: " ") + suffix + "\n"
        }
        let present = table.order.compactMap { table[$0] }.map { entry in
            line(entry, parent: table.reference(entry.legacyParentID).recordID, suffix: "")
        }
        let departed = gone.map { line($0, parent: table.reference($0.legacyParentID).recordID, suffix: " gone") }
        return (present + departed).joined()
    }

    // MARK: reading the kernel

    private func openFanotify() -> Int32 {
        let fd = wq_fanotify_init(Self.classNotify | Self.closeOnExec | Self.nonBlocking | Fanotify.reportMount, UInt32(O_RDONLY))
        guard fd >= 0 else {
            let reason = callFailed("fanotify_init(FAN_REPORT_MNT)", errno: errno)
            shared.withLock { $0.counters.lastError = reason }
            return -1
        }
        let namespace = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC)
        defer { if namespace >= 0 { close(namespace) } }
        guard namespace >= 0,
              wq_fanotify_mark(fd, Self.markAdd | Fanotify.markMountNamespace, Fanotify.mountAttach | Fanotify.mountDetach,
                               namespace, nil) == 0 else {
            let reason = callFailed("fanotify_mark(FAN_MARK_MNTNS)", errno: errno)
            close(fd)
            shared.withLock { $0.counters.lastError = reason }
            return -1
        }
        return fd
    }

    private func readFanotify(sink: RecordSink) {
        var events = 0
        var ignored: UInt64 = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fanotify, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            let decoded = buffer.withUnsafeBytes { bytes in
                Result { () throws(DecodeError) in try Fanotify.decode(UnsafeRawBufferPointer(rebasing: bytes[..<n])) }
            }
            guard case .success(let batch) = decoded else {
                ignored += 1
                continue
            }
            events += batch.count
            for event in batch { post(event, sink: sink) }
        }
        let count = UInt64(events)
        shared.withLock { $0.counters.events += count; $0.counters.ignored += ignored }
    }

    private func post(_ event: Fanotify.Event, sink: RecordSink) {
        switch event.kind {
        case .attach:
            let parent = parentNow(of: event.mountID)
            post(MountNotification(.newMount, flags: flags(parent: parent), triggeredOn: parent,
                                   auxiliaryMount: event.mountID), sink: sink)
        case .detach:
            let parent = parentBefore(of: event.mountID)
            post(MountNotification(.unmount, flags: flags(parent: parent), triggeredOn: parent,
                                   auxiliaryMount: event.mountID), sink: sink)
        case .move:
            let from = parentBefore(of: event.mountID), to = parentNow(of: event.mountID)
            post(MountNotification(.moveFrom, flags: flags(parent: from), triggeredOn: from,
                                   auxiliaryMount: event.mountID), sink: sink)
            post(MountNotification(.moveTo, flags: flags(parent: to), triggeredOn: to,
                                   auxiliaryMount: event.mountID), sink: sink)
        case .overflow:
            overflowed = true
            shared.withLock { $0.counters.overflows += 1 }
        }
    }

    /// The mount's parent as the kernel has it now (statmount), remembered for a
    /// detach or move read before the table is; 0 when the mount is already gone.
    private func parentNow(of mount: UInt64) -> UInt64 {
        let parent = statBuffer.withUnsafeMutableBytes { bytes -> UInt64? in
            guard wq_statmount(mount, StatMount.basic, bytes.baseAddress, bytes.count) == 0 else { return nil }
            return StatMount.parentID(in: UnsafeRawBufferPointer(bytes))
        }
        guard let parent else { return parents[mount] ?? 0 }
        parents[mount] = parent
        return parent
    }

    /// The mount's parent as last known: the table, a statmount since, or the mounts
    /// gone lately; 0 when it was never seen.
    private func parentBefore(of mount: UInt64) -> UInt64 {
        if let parent = parents[mount] { return parent }
        let entry = current.entry(unique: mount) ?? shared.withLock { $0.gone.last { $0.uniqueMountID == mount } }
        return entry.map { current.reference($0.legacyParentID).recordID } ?? 0
    }

    /// In-subtree (flag 16): the change is below the namespace's root mount, as it
    /// is for every mount but the root itself.
    private func flags(parent: UInt64) -> MountFlags {
        parent == current.rootRecordID ? [] : .inSubtree
    }

    private func post(_ changes: [MountChange], attributesOnly: Bool, sink: RecordSink) {
        for change in changes where !attributesOnly || change.subtype == .readOnly || change.subtype == .setattr {
            post(change.notification, sink: sink)
        }
    }

    private func post(_ notification: MountNotification, sink: RecordSink) {
        sink.append(maxLength: MountNotification.length) { notification.encode(into: $0) }
    }

    /// Makes `table` the current one; mounts it no longer has join the gone list.
    private func replace(with table: MountTable) {
        let gone = current.order.compactMap { id in table[id] == nil ? current[id] : nil }
        current = table
        parents = [:]
        let count = table.count
        shared.withLock { state in
            state.table = table
            state.gone.append(contentsOf: gone)
            if state.gone.count > Self.keptGone { state.gone.removeFirst(state.gone.count - Self.keptGone) }
            if let index = state.counters.details.firstIndex(where: { $0.0 == "mounts" }) {
                state.counters.details[index].1 = "\(count)"
            }
        }
    }

    /// The table now: mountinfo, with each mount's unique id from statmount where
    /// the kernel has it.
    private func scan() -> MountTable? {
        guard let text = mountinfoText(), var table = try? MountTable(parsing: text) else { return nil }
        table.setUniqueIDs(uniqueIDs())
        return table
    }

    private func mountinfoText() -> [UInt8]? { readWholeFile("/proc/self/mountinfo") }

    /// Legacy id → unique id of every mount of the namespace: listmount, then
    /// statmount of only the mounts not seen before (a unique id is never reused);
    /// empty where the kernel lacks these calls (before 6.8).
    private func uniqueIDs() -> [UInt64: UInt64] {
        var ids = [UInt64](repeating: 0, count: 512)
        var listed: [UInt64] = []
        var after: UInt64 = 0
        while true {
            let n = ids.withUnsafeMutableBufferPointer { wq_listmount(after, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            listed += ids.prefix(Int(n))
            guard n == ids.count, let last = ids.last else { break }
            after = last
        }
        var now: [UInt64: UInt64] = [:]
        for id in listed {
            if let legacy = legacyOfUnique[id] {
                now[id] = legacy
            } else if statBuffer.withUnsafeMutableBytes({ wq_statmount(id, StatMount.basic, $0.baseAddress, $0.count) }) == 0,
                      let legacy = statBuffer.withUnsafeBytes({ StatMount.legacyID(in: $0) }) {
                now[id] = UInt64(legacy)
            }
        }
        legacyOfUnique = now
        return Dictionary(now.map { ($0.value, $0.key) }, uniquingKeysWith: { first, _ in first })
    }

    private func closeAll() {
        if fanotify >= 0 { close(fanotify) }
        if mountinfo >= 0 { close(mountinfo) }
        fanotify = -1
        mountinfo = -1
    }
}

/// The fixed part of `struct statmount` that the mounts source reads (the kernel's
/// `include/uapi/linux/mount.h`): enough to map a unique id to mountinfo's id.
enum StatMount {
    /// `STATMOUNT_MNT_BASIC`: mnt_id, mnt_parent_id, the old ids, attributes.
    static let basic: UInt64 = 0x2
    /// Room for the struct, whatever its size in this kernel (no strings are asked for).
    static let basicLength = 4096
    private static let maskOffset = 8, parentIDOffset = 48, legacyIDOffset = 56

    /// `mnt_id_old` of a filled buffer, when the kernel says it wrote it.
    static func legacyID(in buffer: UnsafeRawBufferPointer) -> UInt32? {
        hasBasic(buffer) ? UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: legacyIDOffset, as: UInt32.self)) : nil
    }

    /// `mnt_parent_id`, the parent's unique id, of a filled buffer.
    static func parentID(in buffer: UnsafeRawBufferPointer) -> UInt64? {
        hasBasic(buffer) ? UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: parentIDOffset, as: UInt64.self)) : nil
    }

    private static func hasBasic(_ buffer: UnsafeRawBufferPointer) -> Bool {
        guard buffer.count >= legacyIDOffset + 4 else { return false }
        return UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: maskOffset, as: UInt64.self)) & basic != 0
    }
}
