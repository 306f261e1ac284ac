import FuseBinding
import Synchronization
import WatchQueueCore

/// What the filesystem remembers about one open control file: how it was opened,
/// whether it has been written, and the text a reader sees. Queue files need none
/// of this (their state is the engine's) and are opened with handle 0.
struct OpenFile: Sendable {
    let node: Node
    /// `open(2)` flags.
    let flags: Int32
    /// Set by the first write: later writes through this open file extend what the
    /// first one set (a filter written in several chunks is appended, not replaced).
    var wrote = false
    /// The content as generated for the read at offset 0; later offsets read from it,
    /// so one `cat` never sees two versions torn together.
    var snapshot: [UInt8] = []
}

/// Open control files by handle.
final class OpenFiles: Sendable {
    private struct Table: ~Copyable {
        var files: [UInt64: OpenFile] = [:]
        var next: UInt64 = 1
    }

    private let table = Locked(Table())

    /// Registers an open file and returns its handle.
    func open(_ file: OpenFile) -> UInt64 {
        table.withLock { table in
            let handle = table.next
            table.next += 1
            table.files[handle] = file
            return handle
        }
    }

    /// Runs `body` on the open file, if the handle is known.
    func with<T: Sendable>(_ handle: UInt64, _ body: (inout OpenFile) -> T) -> T? {
        table.withLock { table in
            guard table.files[handle] != nil else { return nil }
            return body(&table.files[handle]!)
        }
    }

    /// Forgets a handle and returns what it was.
    func close(_ handle: UInt64) -> OpenFile? {
        table.withLock { $0.files.removeValue(forKey: handle) }
    }
}
