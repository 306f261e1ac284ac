import Synchronization
import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// The most recent rejected writes, newest last, as `MOUNT/errors` shows them; each
/// is also written to the server's log (standard error). Bounded in entries and in
/// the input each keeps, so no user can grow it.
final class ErrorLog: Sendable {
    /// Entries kept.
    static let capacity = 128
    private let entries = Locked<[String]>([])

    /// Records that `input` written by `uid` to `path` was refused.
    func record(path: String, uid: UInt32, input: String, error: WQError) {
        let line = "\(Self.timestamp()) uid=\(uid) \(path) \(input): \(error)\n"
        entries.withLock { entries in
            if entries.count == Self.capacity { entries.removeFirst() }
            entries.append(line)
        }
        Log.write("rejected: " + line)
    }

    /// The whole list as text.
    var text: String { entries.withLock { $0.joined() } }

    private static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}

/// The server's log: lines on standard error, which systemd's journal or the
/// terminal of a foreground mount collects.
enum Log {
    static func write(_ line: String) {
        var text = "wqfs: " + line
        if !text.hasSuffix("\n") { text += "\n" }
        text.utf8.withContiguousStorageIfAvailable { bytes in
            _ = Glibc.write(2, bytes.baseAddress, bytes.count)
        }
    }
}
