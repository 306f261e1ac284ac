import FuseBinding
import Synchronization
import WatchQueueCore

/// What the filesystem remembers about one open file or directory: how it was
/// opened, the writes in progress through it, and the text or listing a reader sees.
struct OpenFile: Sendable {
    let node: Node
    /// `open(2)` flags.
    let flags: Int32
    /// The writes through a control file opened for writing, assembled into whole
    /// lines or records (DESIGN.md §8); nil otherwise.
    var stream: WriteStream?
    /// The content as generated for the read at offset 0; later offsets read from it,
    /// so one `cat` never sees two versions torn together.
    var snapshot: [UInt8] = []
    /// An open directory's listing, made by the read at offset 0.
    var entries: [DirectoryEntry]?
}

/// The writes through one open control file. Its lock is held while a write is
/// applied, so writes through one open file apply in order, each whole; it is taken
/// before the engine's lock, never after.
final class WriteStream: Sendable {
    let assembler: Locked<WriteAssembler>

    init(_ unit: WriteAssembler.Unit) { assembler = Locked(WriteAssembler(unit: unit)) }
}

/// Open files and directories by handle.
final class OpenFiles: Sendable {
    private struct Table: ~Copyable {
        var files: [UInt64: OpenFile] = [:]
        var next: UInt64 = 1
        /// Directory entries kept in listings, against `listingBudget`.
        var listed = 0
    }

    /// The most directory entries kept in listings at once, over all open
    /// directories (by default 2²⁰, some 50 MB). Past it a listing is made again for
    /// each READDIR, which is slower but as correct, so directories held open cannot
    /// exhaust memory.
    let listingBudget: Int

    init(listingBudget: Int = 1 << 20) { self.listingBudget = listingBudget }

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
        table.withLock { table in
            let file = table.files.removeValue(forKey: handle)
            table.listed -= file?.entries?.count ?? 0
            return file
        }
    }

    /// The listing kept for the open directory `handle`, if any.
    func keptListing(_ handle: UInt64) -> [DirectoryEntry]? {
        table.withLock { $0.files[handle]?.entries }
    }

    /// Keeps `entries` as the listing of the open directory `handle`, replacing any
    /// kept before, when the budget allows.
    func keep(_ entries: [DirectoryEntry], for handle: UInt64) {
        table.withLock { table in
            guard let file = table.files[handle] else { return }
            table.listed -= file.entries?.count ?? 0
            let fits = table.listed + entries.count <= listingBudget
            table.files[handle]?.entries = fits ? entries : nil
            if fits { table.listed += entries.count }
        }
    }
}
