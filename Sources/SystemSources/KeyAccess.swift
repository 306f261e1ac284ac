import CKeyObserver
import CSystemCalls
import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// What the server can learn of a key in its own credentials, to decide whether a
/// caller may watch it: the kernel lets a queue watch a key only with View
/// permission on it (DESIGN.md §6).
public struct KeyAccess: Equatable, Sendable {
    public var serial: Int32
    public var uid: UInt32
    public var gid: UInt32
    /// The permission mask: possessor, user, group, other bytes, high to low.
    public var permissions: UInt32
    public var type: String
    public var description: String

    /// `KEYCTL_DESCRIBE`.
    static let describeOperation: Int32 = 6
    /// The View bit in each byte of the mask.
    static let view: UInt32 = 0x01

    /// Describes key `serial`: the key, or the errno that says why not — ENOKEY (no
    /// such key), EKEYREVOKED, EKEYEXPIRED, or EACCES (it exists, but the server
    /// itself may not view it).
    /// With `caller`, the key is described with the caller's uid, gid and groups (as
    /// the kernel checks them, on a thread of its own): root may not view another
    /// user's keys (its session and user keyrings give others nothing), and without
    /// this could not tell what that user may watch of its own.
    public static func describe(_ serial: Int32, as caller: Credentials? = nil) -> Result<KeyAccess, WQError> {
        var buffer = [CChar](repeating: 0, count: 4096)
        var failure: Int32 = 0
        let n = buffer.withUnsafeMutableBufferPointer { raw in
            guard let caller else {
                let n = wq_keyctl(describeOperation, UInt(UInt32(bitPattern: serial)), UInt(bitPattern: raw.baseAddress), UInt(raw.count), 0)
                failure = errno
                return n
            }
            return caller.groups.withUnsafeBufferPointer { groups in
                wq_keyctl_describe_as(serial, caller.uid, caller.gid, groups.baseAddress, groups.count, raw.baseAddress, raw.count, &failure)
            }
        }
        guard n > 0 else {
            let code = failure
            return .failure(WQError(code, callFailed("keyctl describe \(serial)", errno: code)))
        }
        // "type;uid;gid;perm;description", NUL-terminated.
        let text = String(decoding: buffer.prefix(min(Int(n), buffer.count)).prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let fields = text.split(separator: ";", maxSplits: 4, omittingEmptySubsequences: false)
        guard fields.count == 5, let uid = UInt32(fields[1]), let gid = UInt32(fields[2]),
              let permissions = UInt32(fields[3], radix: 16) else {
            return .failure(WQError(EIO, "keyctl describe \(serial) gave \(Grammar.quoted(text))"))
        }
        return .success(KeyAccess(serial: serial, uid: uid, gid: gid, permissions: permissions,
                                  type: String(fields[0]), description: String(fields[4])))
    }

    /// Whether `caller` has View as the kernel decides it, as far as the server can
    /// tell: the user, group or other byte, chosen as the kernel chooses it (the
    /// owner's byte for the owner, even when it lacks View). A possessor's rights
    /// depend on the caller's keyrings, which the server cannot see: a key viewable
    /// only by possession is refused.
    /// - Throws: EACCES, saying which it was.
    public func checkView(by caller: Credentials) throws(WQError) {
        let byte: UInt32
        if caller.uid == uid {
            byte = permissions >> 16
        } else if caller.gid == gid || caller.groups.contains(gid) {
            byte = permissions >> 8
        } else {
            byte = permissions
        }
        guard byte & Self.view == 0 else { return }
        let reason = permissions >> 24 & Self.view != 0
            ? "key \(serial) is viewable only by its possessors, and wqfs cannot tell whether uid \(caller.uid) possesses it"
            : "uid \(caller.uid) may not view key \(serial) (permissions \(String(permissions, radix: 16)), owner \(uid))"
        throw WQError(EACCES, reason)
    }
}
