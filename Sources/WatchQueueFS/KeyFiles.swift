import FuseBinding
import SystemSources
import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

extension WatchQueueFileSystem {
    /// The source of the key a `keys/` entry names: a decimal serial of a key that
    /// exists (the server may describe it, or the kernel says it exists but the
    /// server may not view it). Naming it makes its source.
    func keySource(named name: String) -> SourceID? {
        guard let serial = Int32(name), serial > 0, "\(serial)" == name else { return nil }
        switch KeyAccess.describe(serial) {
        case .success: break
        case .failure(let error) where [EACCES, EKEYREVOKED, EKEYEXPIRED].contains(error.errno): break
        case .failure: return nil
        }
        return engine.keySource(serial: serial, create: true)
    }

    /// The directory a node sits in.
    func parent(of node: Node) -> Node {
        switch node {
        case .source(let source, .directory): engine.keySerial(of: source) == nil ? .sourcesDirectory : .keysDirectory
        case .source(let source, _): .source(source, .directory)
        case .queue: .queuesDirectory
        default: .root
        }
    }
}
