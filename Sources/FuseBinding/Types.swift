import CFuse
#if canImport(Glibc)
import Glibc
#endif

/// FUSE inode number (`fuse_ino_t`). The root directory is ``rootInode``.
public typealias Inode = UInt64

/// The inode number the kernel uses for the mount's root directory.
public let rootInode: Inode = 1

/// What a successful LOOKUP, MKNOD, MKDIR or CREATE tells the kernel about a
/// directory entry (`struct fuse_entry_param`).
///
/// Every entry reply adds one to the inode's lookup count; the kernel later
/// gives those back through ``FuseFilesystem/forget(inode:lookups:)``.
/// An entry with `inode == 0` is a negative entry: the kernel caches the
/// absence of the name for `entryTimeout` seconds.
public struct EntryReply: Sendable {
    /// The entry's inode number.
    public var inode: Inode
    /// Generation number; (inode, generation) must be unique over the
    /// filesystem's lifetime if inode numbers are ever reused.
    public var generation: UInt64
    /// The inode's attributes. `st_ino` is set from ``inode`` when sent.
    public var attributes: stat
    /// Seconds the kernel may cache the attributes.
    public var attributeTimeout: Double
    /// Seconds the kernel may cache the name → inode binding.
    public var entryTimeout: Double

    public init(inode: Inode, generation: UInt64 = 0, attributes: stat,
                attributeTimeout: Double, entryTimeout: Double) {
        self.inode = inode
        self.generation = generation
        self.attributes = attributes
        self.attributeTimeout = attributeTimeout
        self.entryTimeout = entryTimeout
    }
}

/// How the kernel should treat a file opened by OPEN, OPENDIR or CREATE.
public struct OpenOptions: Sendable, Equatable {
    /// The file handle, given back in ``FileInfo/handle`` on every later
    /// operation on this open file description.
    public var handle: UInt64
    /// Bypass the page cache: every read and write reaches the filesystem,
    /// whatever the file size says (`FOPEN_DIRECT_IO`).
    public var directIO: Bool
    /// Keep cached data from a previous open (`FOPEN_KEEP_CACHE`).
    public var keepCache: Bool
    /// The file cannot be seeked; `lseek` fails with ESPIPE (`FOPEN_NONSEEKABLE`).
    public var nonseekable: Bool
    /// The file is a stream (`FOPEN_STREAM`): it has no position at all, the
    /// kernel does not serialise reads on one open file description, and
    /// `f_pos` stays 0. libfuse 3.14 cannot express this through
    /// `fuse_file_info`; when set, the binding writes the kernel's
    /// `fuse_open_out` itself (OPEN and OPENDIR replies only — for CREATE it
    /// is ignored, see ``Request/reply(create:open:)``).
    public var stream: Bool
    /// No FLUSH is needed on close (`FOPEN_NOFLUSH`).
    public var noFlush: Bool
    /// For OPENDIR: allow the kernel to cache readdir results.
    public var cacheDirectory: Bool

    public init(handle: UInt64 = 0, directIO: Bool = false, keepCache: Bool = false,
                nonseekable: Bool = false, stream: Bool = false, noFlush: Bool = false,
                cacheDirectory: Bool = false) {
        self.handle = handle
        self.directIO = directIO
        self.keepCache = keepCache
        self.nonseekable = nonseekable
        self.stream = stream
        self.noFlush = noFlush
        self.cacheDirectory = cacheDirectory
    }

    /// The kernel's `open_flags` word for these options.
    var kernelOpenFlags: UInt32 {
        var flags: UInt32 = 0
        if directIO { flags |= UInt32(CFUSE_FOPEN_DIRECT_IO) }
        if keepCache { flags |= UInt32(CFUSE_FOPEN_KEEP_CACHE) }
        if nonseekable { flags |= UInt32(CFUSE_FOPEN_NONSEEKABLE) }
        if stream { flags |= UInt32(CFUSE_FOPEN_STREAM) }
        if noFlush { flags |= UInt32(CFUSE_FOPEN_NOFLUSH) }
        if cacheDirectory { flags |= UInt32(CFUSE_FOPEN_CACHE_DIR) }
        return flags
    }

    /// A `fuse_file_info` carrying these options, for libfuse's own replies.
    var fileInfo: fuse_file_info {
        var fi = fuse_file_info()
        fi.fh = handle
        fi.direct_io = directIO ? 1 : 0
        fi.keep_cache = keepCache ? 1 : 0
        fi.nonseekable = nonseekable ? 1 : 0
        fi.noflush = noFlush ? 1 : 0
        fi.cache_readdir = cacheDirectory ? 1 : 0
        return fi
    }
}

/// A snapshot of libfuse's `struct fuse_file_info` for one request.
public struct FileInfo: Sendable, Equatable {
    /// `open(2)` flags (O_RDONLY, O_NONBLOCK, O_TRUNC, …). Set in OPEN,
    /// CREATE, OPENDIR and RELEASE; for other requests the kernel sends the
    /// flags of the open file description where the protocol carries them.
    public var flags: Int32
    /// The handle chosen in the OPEN/CREATE/OPENDIR reply.
    public var handle: UInt64
    /// Lock owner id (FLUSH, and RELEASE when ``releasesFlockLocks``).
    public var lockOwner: UInt64
    /// Requested poll events (POLL only).
    public var pollEvents: UInt32
    /// A write caused by page-cache write-back (uid/gid/pid then invalid).
    public var isWritePage: Bool
    /// RELEASE: flush data too. FLUSH: always.
    public var isFlush: Bool
    /// RELEASE: flock locks of ``lockOwner`` must be released.
    public var releasesFlockLocks: Bool

    init(_ fi: UnsafePointer<fuse_file_info>) { self.init(fi.pointee) }

    init(_ v: fuse_file_info) {
        flags = v.flags
        handle = v.fh
        lockOwner = v.lock_owner
        pollEvents = v.poll_events
        isWritePage = v.writepage != 0
        isFlush = v.flush != 0
        releasesFlockLocks = v.flock_release != 0
    }

    static func from(_ fi: UnsafeMutablePointer<fuse_file_info>?) -> FileInfo? {
        guard let fi else { return nil }
        return FileInfo(UnsafePointer(fi))
    }
}

/// Which fields of a SETATTR request are to be changed (`FUSE_SET_ATTR_*`).
public struct SetAttributeFields: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let mode = SetAttributeFields(rawValue: 1 << 0)
    public static let uid = SetAttributeFields(rawValue: 1 << 1)
    public static let gid = SetAttributeFields(rawValue: 1 << 2)
    /// Truncate (e.g. `open(O_TRUNC)`, `truncate(2)`): the new size is `st_size`.
    public static let size = SetAttributeFields(rawValue: 1 << 3)
    public static let accessTime = SetAttributeFields(rawValue: 1 << 4)
    public static let modificationTime = SetAttributeFields(rawValue: 1 << 5)
    public static let accessTimeNow = SetAttributeFields(rawValue: 1 << 7)
    public static let modificationTimeNow = SetAttributeFields(rawValue: 1 << 8)
    public static let changeTime = SetAttributeFields(rawValue: 1 << 10)
}

/// One entry for ``Request/reply(directoryEntries:size:offset:)``.
public struct DirectoryEntry: Sendable {
    /// The entry's name (no slash, not empty).
    public var name: String
    /// Its inode number.
    public var inode: Inode
    /// Its mode; only the file-type bits (`S_IFMT`) are used.
    public var mode: mode_t

    public init(name: String, inode: Inode, mode: mode_t) {
        self.name = name
        self.inode = inode
        self.mode = mode
    }
}

/// The connection parameters offered to ``FuseFilesystem/initialize(connection:notifier:)``
/// (`struct fuse_conn_info`). Changes to the `var` fields are sent to the kernel.
public struct ConnectionSettings: Sendable {
    /// FUSE protocol version the kernel speaks.
    public let protocolMajor: UInt32
    public let protocolMinor: UInt32
    /// Capabilities the kernel and libfuse support (`FUSE_CAP_*`, see ``FuseCapability``).
    public let capable: UInt32
    /// Capabilities to use; starts with libfuse's defaults.
    public var want: UInt32
    /// Largest WRITE request, in bytes.
    public var maxWrite: UInt32
    /// Largest readahead, in bytes.
    public var maxReadahead: UInt32
    /// Maximum number of pending background requests.
    public var maxBackground: UInt32
    /// Timestamp granularity in nanoseconds (0 or 1: full nanoseconds).
    public var timeGranularity: UInt32

    init(_ c: fuse_conn_info) {
        protocolMajor = c.proto_major
        protocolMinor = c.proto_minor
        capable = c.capable
        want = c.want
        maxWrite = c.max_write
        maxReadahead = c.max_readahead
        maxBackground = c.max_background
        timeGranularity = c.time_gran
    }

    func write(to c: UnsafeMutablePointer<fuse_conn_info>) {
        c.pointee.want = want
        c.pointee.max_write = maxWrite
        c.pointee.max_readahead = maxReadahead
        c.pointee.max_background = maxBackground
        c.pointee.time_gran = timeGranularity
    }
}

/// A few `FUSE_CAP_*` bits for ``ConnectionSettings/want``.
public enum FuseCapability {
    public static let asyncRead = UInt32(FUSE_CAP_ASYNC_READ)
    public static let atomicOTrunc = UInt32(FUSE_CAP_ATOMIC_O_TRUNC)
    public static let ioctlDirectory = UInt32(FUSE_CAP_IOCTL_DIR)
    public static let autoInvalidateData = UInt32(FUSE_CAP_AUTO_INVAL_DATA)
    public static let readdirPlus = UInt32(FUSE_CAP_READDIRPLUS)
    public static let asyncDirectIO = UInt32(FUSE_CAP_ASYNC_DIO)
    public static let writebackCache = UInt32(FUSE_CAP_WRITEBACK_CACHE)
    public static let parallelDirectoryOperations = UInt32(FUSE_CAP_PARALLEL_DIROPS)
}
