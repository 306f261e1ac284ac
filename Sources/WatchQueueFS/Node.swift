import FuseBinding
import WatchQueueCore

/// Every file and directory of the mount, and its inode number. Inode numbers are
/// computed from the engine's never-reused handles, so the filesystem keeps no
/// inode table and `forget` has nothing to free.
enum Node: Hashable, Sendable {
    case root, queuesDirectory, sourcesDirectory, readme, errors
    /// `keys/`: the sources of keys (DESIGN.md §6), by serial.
    case keysDirectory
    case queue(QueueID, QueueFile)
    case source(SourceID, SourceFile)

    // Low four bits: 0–7 source files, 8–11 queue files; handles start at 1, so
    // computed numbers (≥ 16) never meet the fixed ones (1–6).
    private static let queueKindBase: UInt64 = 8

    init?(inode: Inode) {
        switch inode {
        case rootInode: self = .root
        case 2: self = .queuesDirectory
        case 3: self = .sourcesDirectory
        case 4: self = .readme
        case 5: self = .errors
        case 6: self = .keysDirectory
        default:
            let handle = inode >> 4
            let kind = inode & 0xf
            guard handle > 0 else { return nil }
            if kind >= Self.queueKindBase, let file = QueueFile(rawValue: Int(kind - Self.queueKindBase)) {
                self = .queue(QueueID(raw: handle), file)
            } else if let file = SourceFile(rawValue: Int(kind)) {
                self = .source(SourceID(raw: handle), file)
            } else {
                return nil
            }
        }
    }

    var inode: Inode {
        switch self {
        case .root: rootInode
        case .queuesDirectory: 2
        case .sourcesDirectory: 3
        case .readme: 4
        case .errors: 5
        case .keysDirectory: 6
        case .queue(let id, let file): id.raw << 4 | (Self.queueKindBase + UInt64(file.rawValue))
        case .source(let id, let file): id.raw << 4 | UInt64(file.rawValue)
        }
    }

    var isDirectory: Bool {
        switch self {
        case .root, .queuesDirectory, .sourcesDirectory, .keysDirectory, .source(_, .directory): true
        default: false
        }
    }
}
