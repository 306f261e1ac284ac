#if canImport(Glibc)
import Glibc
#endif

/// Names a queue for as long as it lives; never reused within one engine.
public struct QueueID: Hashable, Sendable {
    public let raw: UInt64
    /// Rebuilds an id from its raw value (an inode number, say); a stale value
    /// simply names no queue.
    public init(raw: UInt64) { self.raw = raw }
}

/// Names a source for as long as it lives; never reused within one engine.
public struct SourceID: Hashable, Sendable {
    public let raw: UInt64
    /// Rebuilds an id from its raw value; a stale value simply names no source.
    public init(raw: UInt64) { self.raw = raw }
}

/// The files that belong to a queue.
public enum QueueFile: Int, CaseIterable, Sendable {
    case queue, size, filter, status

    /// The suffix after the queue's name.
    public var suffix: String {
        switch self {
        case .queue: ""
        case .size: ".size"
        case .filter: ".filter"
        case .status: ".status"
        }
    }

    /// Owner-only at creation; the status file is read-only.
    var initialMode: UInt32 { self == .status ? 0o400 : 0o600 }
}

/// The directory and files that make a source.
public enum SourceFile: Int, CaseIterable, Sendable {
    case directory, id, type, post, postBinary, watches
    /// A system source's `status` and its side file (the mount table, recent device
    /// events): their text comes from the mechanism, not the engine.
    case status, table

    /// The name inside the source's directory (empty for the directory itself).
    public var name: String {
        switch self {
        case .directory: ""
        case .id: "id"
        case .type: "type"
        case .post: "post"
        case .postBinary: "post.bin"
        case .watches: "watches"
        case .status: "status"
        case .table: "table"
        }
    }

    /// The files of a user's source, and of a system source.
    public static let userFiles: [SourceFile] = [.id, .type, .post, .postBinary, .watches]
    public static let systemFiles: [SourceFile] = [.id, .type, .watches, .status, .table]

    /// Posting is the owner's until granted; the rest is world-readable.
    var initialMode: UInt32 {
        switch self {
        case .directory: 0o755
        case .post, .postBinary: 0o200
        case .id, .type, .watches: 0o644
        case .status, .table: 0o444
        }
    }
}

/// A point in time, as `struct timespec`.
public struct Timestamp: Equatable, Sendable {
    public var seconds: Int64
    public var nanoseconds: Int32

    public init(seconds: Int64, nanoseconds: Int32) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// The realtime clock now.
    public static func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(seconds: Int64(spec.tv_sec), nanoseconds: Int32(spec.tv_nsec))
    }
}

/// Who is asking: the caller's uid, gid and supplementary groups.
public struct Credentials: Equatable, Sendable {
    public var uid: UInt32
    public var gid: UInt32
    public var groups: [UInt32]

    public init(uid: UInt32, gid: UInt32, groups: [UInt32] = []) {
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }

    public static let root = Credentials(uid: 0, gid: 0)
}

/// Owner, permission bits and times of one file or directory.
public struct Metadata: Equatable, Sendable {
    public var uid: UInt32
    public var gid: UInt32
    /// Permission bits only (0o7777).
    public var mode: UInt32
    public var accessed: Timestamp
    public var modified: Timestamp
    public var changed: Timestamp

    public init(owner: Credentials, mode: UInt32, at time: Timestamp) {
        uid = owner.uid
        gid = owner.gid
        self.mode = mode & 0o7777
        accessed = time
        modified = time
        changed = time
    }

    /// Access bits as in `access(2)`: 4 read, 2 write, 1 execute.
    public struct Access: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let read = Access(rawValue: 4)
        public static let write = Access(rawValue: 2)
        public static let execute = Access(rawValue: 1)
    }

    /// The classic owner/group/other check; root may read and write anything.
    public func permits(_ access: Access, to caller: Credentials) -> Bool {
        if caller.uid == 0 { return !access.contains(.execute) || mode & 0o111 != 0 }
        let bits: UInt32
        if caller.uid == uid {
            bits = mode >> 6
        } else if caller.gid == gid || caller.groups.contains(gid) {
            bits = mode >> 3
        } else {
            bits = mode
        }
        return bits & access.rawValue == access.rawValue
    }
}

/// Changes to a file's metadata, as `setattr` carries them.
public struct MetadataChange: Sendable {
    public var uid: UInt32?
    public var gid: UInt32?
    public var mode: UInt32?
    public var accessed: Timestamp?
    public var modified: Timestamp?

    public init(uid: UInt32? = nil, gid: UInt32? = nil, mode: UInt32? = nil,
                accessed: Timestamp? = nil, modified: Timestamp? = nil) {
        self.uid = uid
        self.gid = gid
        self.mode = mode
        self.accessed = accessed
        self.modified = modified
    }
}

/// The mount's limits: sizes, filter entries, watches, and the total that one
/// user's objects may pin in memory.
public struct Limits: Sendable, Equatable {
    /// Capacity of a new queue, in records.
    public var defaultSize = 256
    /// The largest capacity `NAME.size` accepts.
    public var maxSize = 16_384
    /// The most entries one filter may hold.
    public var maxFilters = 16
    /// The most watches one user may hold (the kernel's bound is RLIMIT_NOFILE).
    public var maxWatchesPerUser = 4_096
    /// The most queues on the mount.
    public var maxQueues = 10_000
    /// The most sources on the mount.
    public var maxSources = 200_000
    /// The most record slots, over all queues (each slot pins 128 bytes).
    public var maxTotalSlots = 2_097_152
    /// The most queues one user may have made (root is held only by `maxQueues`),
    /// so that one user cannot take the whole mount's allowance from the others.
    public var maxQueuesPerUser = 2_500
    /// The most sources one user may have made (root: only `maxSources`).
    public var maxSourcesPerUser = 50_000
    /// The most record slots the queues one user made may hold (root: only
    /// `maxTotalSlots`).
    public var maxSlotsPerUser = 524_288

    public init() {}

    /// The per-user share a mount-wide limit implies when none is given: a quarter.
    public static func userShare(of mountLimit: Int) -> Int { max(1, mountLimit / 4) }
}

/// A watch of a source by a queue.
struct Watch {
    let queue: QueueObject
    let watchID: UInt8
    /// Who made it: the per-user limit counts it against them.
    let uid: UInt32
}

/// A read waiting for records: the token its owner gave, and its buffer size.
struct ParkedRead {
    let token: UInt64
    let capacity: Int
}

/// A poll waiting for a queue to become ready: the open file it came from and the
/// token to notify.
struct Poller {
    let owner: UInt64
    var token: UInt64
}

/// Per-queue counts, kept so that `posted == filtered + lost + read + queued`.
public struct QueueCounters: Equatable, Sendable {
    /// Copies offered to the queue by posts and watch removals.
    public var posted: UInt64 = 0
    /// Copies the queue's filter turned away.
    public var filtered: UInt64 = 0
    /// Copies dropped because the queue was full.
    public var lost: UInt64 = 0
    /// Records handed to readers (loss records not counted).
    public var read: UInt64 = 0
}

final class QueueObject {
    let id: QueueID
    /// Changes once, when the queue turns anonymous and its name is given up.
    var name: String
    /// The uid that made it: its queue and slot counts are charged to them (a
    /// later chown does not move the charge).
    let creator: UInt32
    let ring: RecordRing
    var filter = QueueFilter()
    var counters = QueueCounters()
    /// Sources this queue watches, in the order the watches were made.
    var watched: [SourceObject] = []
    var parked: [ParkedRead] = []
    var pollers: [Poller] = []
    var openReaders = 0
    /// Open files of the queue file, and those of them opened for writing: an
    /// anonymous queue lives while the first is non-zero and reads end of file once
    /// the second is zero (AnonymousQueues.swift).
    var openFiles = 0
    var openWriters = 0
    /// Set once the queue has turned anonymous (`WQFS_IOC_ANONYMOUS`).
    var anonymous: AnonymousState?
    var metadata: [Metadata]

    init(id: QueueID, name: String, capacity: Int, owner: Credentials, at time: Timestamp) {
        self.id = id
        self.name = name
        creator = owner.uid
        ring = RecordRing(capacity: capacity)
        metadata = QueueFile.allCases.map { Metadata(owner: owner, mode: $0.initialMode, at: time) }
    }
}

final class SourceObject {
    let id: SourceID
    let name: String
    /// The uid that made it, charged with it against `maxSourcesPerUser`.
    let creator: UInt32
    var objectID: UInt64
    var type: UInt32 = NotificationType.user
    /// Made by the mount for a mechanism of the machine (DESIGN.md §6): nobody posts
    /// to it, removes it, or changes its id or type.
    var isSystem = false
    /// The key this source stands for (`keys/SERIAL`), if it is a key's.
    var keySerial: Int32?
    /// Newest last; posting walks them all, so order only shows in listings.
    var watches: [Watch] = []
    var metadata: [Metadata]

    init(id: SourceID, name: String, objectID: UInt64, owner: Credentials, directoryMode: UInt32, at time: Timestamp) {
        self.id = id
        self.name = name
        creator = owner.uid
        self.objectID = objectID
        metadata = SourceFile.allCases.map {
            Metadata(owner: owner, mode: $0 == .directory ? directoryMode : $0.initialMode, at: time)
        }
    }
}
