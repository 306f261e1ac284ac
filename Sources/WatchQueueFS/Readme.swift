import WatchQueueCore

/// The text of `MOUNT/README`: the layout and grammars in brief.
enum Readme {
    /// `systemSources`: a line per system source, saying it runs or why not.
    static func text(limits: Limits, systemSources: [String]) -> String {
        """
        wqfs: Linux watch queues (general notification queues) as files.

        queues/NAME          read: packed records, as read() on a notification pipe
                             gives them; write: EXDEV; ioctl FIONREAD,
                             IOC_WATCH_QUEUE_SET_SIZE (0x5760)
        queues/NAME.size     capacity in records, 1..\(limits.maxSize) (default \(limits.defaultSize))
        queues/NAME.filter   one entry per line: type=T [subtypes=LIST] [info=FILTER/MASK]
                             '>' replaces, '>>' appends, ': >' or 'none' clears
                             (at most \(limits.maxFilters) entries)
        queues/NAME.status   key value lines: size queued bytes lost posted ...
        sources/NAME/id      u64 object id, writable while unwatched
        sources/NAME/type    the type posted: a number or key (1) or user (256)
        sources/NAME/post    SUBTYPE [info=N] [u8=N|u16=N|u32=N|u64=N|hex=HEX|str=TEXT]...
        sources/NAME/post.bin  packed records of the source's type
        sources/NAME/watches QUEUE WATCH_ID adds a watch; !QUEUE removes it
        errors               the most recent rejected writes and why

        touch queues/NAME makes a queue; rm removes it. mkdir sources/NAME makes a
        source; rmdir removes it, sending removal records to its watchers.
        Names: 1-64 of letters, digits, _ - @ :
        Writes are joined per open file: each applies the whole lines (post.bin:
        records) it completes; close applies the rest and fails if it is refused.
        After a refused write, later writes through the same open file fail too.

        System sources (sources/mounts, processes, devices: real events of the
        machine; id, type, watches, status, and a table naming what records refer to):
        \(systemSources.isEmpty ? "none" : systemSources.joined(separator: "\n"))

        """
    }
}
