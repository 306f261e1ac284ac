#if canImport(Glibc)
import Glibc
#endif
import SystemSources
import WatchQueueCore

/// The `-o` options wqfs adds to FUSE's, and the command line's shape.
public enum MountOptions {
    /// wqfs's own option names.
    public static let names: Set<String> = Set([
        "default_size", "max_size", "max_filters", "max_watches", "max_queues", "max_sources", "max_slots",
        "max_user_queues", "max_user_sources", "max_user_slots",
    ]).union(systemSourceOptions)

    /// Options every wqfs mount gets: the kernel checks mode bits (root's checks
    /// included), and /proc/mounts names the filesystem.
    public static let implied = ["-o", "default_permissions,fsname=wqfs,subtype=wqfs"]

    /// Limits from `name=value` options over the defaults. A per-user limit not
    /// given is a quarter of its mount-wide limit.
    /// - Throws: EINVAL for an unknown name, a missing or bad value, or
    ///   `default_size` above `max_size`.
    public static func limits(from options: [(name: String, value: String?)]) throws(WQError) -> Limits {
        var limits = Limits()
        let given = Set(options.map(\.name))
        for (name, value) in options where !systemSourceOptions.contains(name) {
            guard let value else { throw WQError(Glibc.EINVAL, "option \(name) needs a value (\(name)=N)") }
            let number = Int(try Grammar.number(value, in: 1...UInt64(Int32.max), what: name))
            switch name {
            case "default_size": limits.defaultSize = number
            case "max_size": limits.maxSize = number
            case "max_filters": limits.maxFilters = number
            case "max_watches": limits.maxWatchesPerUser = number
            case "max_queues": limits.maxQueues = number
            case "max_sources": limits.maxSources = number
            case "max_slots": limits.maxTotalSlots = number
            case "max_user_queues": limits.maxQueuesPerUser = number
            case "max_user_sources": limits.maxSourcesPerUser = number
            case "max_user_slots": limits.maxSlotsPerUser = number
            default: throw WQError(Glibc.EINVAL, "unknown option \(name)")
            }
        }
        if !given.contains("max_user_queues") { limits.maxQueuesPerUser = Limits.userShare(of: limits.maxQueues) }
        if !given.contains("max_user_sources") { limits.maxSourcesPerUser = Limits.userShare(of: limits.maxSources) }
        if !given.contains("max_user_slots") { limits.maxSlotsPerUser = Limits.userShare(of: limits.maxTotalSlots) }
        guard limits.defaultSize <= limits.maxSize else {
            throw WQError(Glibc.EINVAL, "default_size \(limits.defaultSize) exceeds max_size \(limits.maxSize)")
        }
        return limits
    }

    /// The options of the system sources, which `systemSources(from:)` reads.
    static let systemSourceOptions = Set(["sources", "source_buffer", "event_priority", "none", "keys"] + SystemSources.names)

    /// Which system sources to start and how. `sources=LIST` names them, separated
    /// by `:` or by commas (libfuse splits `-o sources=mounts,devices` into
    /// `sources=mounts` and `devices`, so bare source names after it continue its
    /// list); `none` for none; all of them when not given. `source_buffer=BYTES`
    /// sets the netlink receive buffers; `event_priority=N` the event thread's
    /// SCHED_FIFO priority (0: normal scheduling).
    /// - Throws: EINVAL for an unknown source name, a source name or `none`
    ///   outside a `sources=` list, or a missing or bad `source_buffer` or
    ///   `event_priority` value.
    public static func systemSources(from options: [(name: String, value: String?)]) throws(WQError) -> SystemSources.Configuration {
        var configuration = SystemSources.Configuration()
        var listed: Set<String>?
        for (name, value) in options where systemSourceOptions.contains(name) {
            switch (name, value) {
            case ("sources", let list?):
                listed = []
                for item in list.split(separator: ":") where item != "none" {
                    guard SystemSources.names.contains(String(item)) || item == "keys" else {
                        throw WQError(Glibc.EINVAL, "sources: \(Grammar.quoted(item)) is none of \(SystemSources.names.joined(separator: ", ")), keys, none")
                    }
                    listed?.insert(String(item))
                }
            case ("source_buffer", let bytes?):
                configuration.receiveBuffer = Int(try Grammar.number(bytes, in: 1...UInt64(Int32.max), what: name))
            case ("event_priority", let priority?):
                configuration.eventPriority = Int32(try Grammar.number(priority, in: 0...99, what: name))
            case ("source_buffer", nil), ("event_priority", nil):
                throw WQError(Glibc.EINVAL, "option \(name) needs a value (\(name)=N)")
            case (let item, nil) where listed != nil && item != "sources":
                if item != "none" { listed?.insert(item) }
            default:
                throw WQError(Glibc.EINVAL, "option \(name) is only meaningful as sources=\(SystemSources.names.joined(separator: ",")),keys or sources=none")
            }
        }
        if let listed { configuration.enabled = listed }
        return configuration
    }

    /// Drops the device argument that `mount -t fuse.wqfs DEVICE DIR` and fstab
    /// put before the mount point (mount.fuse3 runs `wqfs DEVICE DIR -o …`).
    public static func droppingMountHelperDevice(_ arguments: [String]) -> [String] {
        var positional: [Int] = []
        var index = 1
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "-o" {
                index += 2
                continue
            }
            if !argument.hasPrefix("-") { positional.append(index) }
            index += 1
        }
        guard positional.count == 2 else { return arguments }
        var result = arguments
        result.remove(at: positional[0])
        return result
    }

    /// `--help` text for wqfs's part; libfuse's follows it.
    public static let usage = """
        usage: wqfs MOUNTPOINT [-f] [-d] [-s] [-o OPTION[,OPTION...]]
               mount -t fuse.wqfs wqfs MOUNTPOINT [-o OPTIONS]

        Mounts Linux watch queues (notification queues) as files: queues/NAME
        delivers packed notification records; sources/NAME/ posts them. See
        MOUNTPOINT/README once mounted.

        wqfs options:
            -o default_size=N   capacity of a new queue, in records (256)
            -o max_size=N       largest capacity NAME.size accepts (16384)
            -o max_filters=N    most entries in one filter (16)
            -o max_watches=N    most watches one user may hold (4096)
            -o max_queues=N     most queues on the mount (10000)
            -o max_sources=N    most sources on the mount (200000)
            -o max_slots=N      most record slots over all queues, 128 bytes
                                each (2097152, i.e. 256 MiB)
            -o max_user_queues=N, max_user_sources=N, max_user_slots=N
                                the same per user other than root (a quarter
                                of the mount's limit: 2500, 50000, 524288)
            -o sources=LIST     the system sources to start: mounts, processes,
                                devices (all by default), or none
            -o source_buffer=N  receive buffer of the netlink sockets, bytes
            -o event_priority=N SCHED_FIFO priority of the sources' event
                                thread, 1-99, or 0 for normal scheduling (0)
            -o allow_other      let other users use the mount (needs root, or
                                user_allow_other in /etc/fuse.conf)
        Always on: default_permissions (mode bits are enforced), fsname=wqfs.

        The server stops and unmounts on SIGINT, SIGTERM, SIGHUP or umount.
        Readers blocked in read() then get end of file.

        """
}
