#if canImport(Glibc)
import Glibc
#endif

/// A rejected operation: the errno the caller receives and a reason a person can read,
/// naming the offending token. Every failure in the core is one of these.
public struct WQError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The errno to return to the caller (a positive value such as `EINVAL`).
    public var errno: Int32
    /// What was wrong, in words.
    public var reason: String

    public init(_ errno: Int32, _ reason: String) {
        self.errno = errno
        self.reason = reason
    }

    public var description: String { "\(Self.errnoName(errno)): \(reason)" }

    static func invalid(_ reason: String) -> WQError { WQError(EINVAL, reason) }

    /// The symbolic name of the errno values the core uses, for messages.
    public static func errnoName(_ code: Int32) -> String {
        switch code {
        case EINVAL: "EINVAL"
        case ENOENT: "ENOENT"
        case EBUSY: "EBUSY"
        case EAGAIN: "EAGAIN"
        case EACCES: "EACCES"
        case EPERM: "EPERM"
        case EEXIST: "EEXIST"
        case ENOSPC: "ENOSPC"
        case EMSGSIZE: "EMSGSIZE"
        case ENOBUFS: "ENOBUFS"
        case EXDEV: "EXDEV"
        case ENOTTY: "ENOTTY"
        case EINTR: "EINTR"
        case ENOTEMPTY: "ENOTEMPTY"
        case ENOTDIR: "ENOTDIR"
        case EISDIR: "EISDIR"
        case ENAMETOOLONG: "ENAMETOOLONG"
        case ENOKEY: "ENOKEY"
        case EKEYREVOKED: "EKEYREVOKED"
        case EKEYEXPIRED: "EKEYEXPIRED"
        case EBADSLT: "EBADSLT"
        case ENOPKG: "ENOPKG"
        default: "errno \(code)"
        }
    }
}
