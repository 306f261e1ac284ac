import CFuse
#if canImport(Glibc)
import Glibc
#endif

/// What libfuse carries as the session's userdata: the filesystem (as an
/// existential, which an `Unmanaged` pointer cannot hold directly) and the
/// notifier. Owned by the ``FuseSession``, which outlives every callback.
final class SessionContext: Sendable {
    let filesystem: any FuseFilesystem
    let notifier: FuseNotifier

    init(filesystem: any FuseFilesystem, notifier: FuseNotifier) {
        self.filesystem = filesystem
        self.notifier = notifier
    }

    static func from(userdata: UnsafeMutableRawPointer?) -> SessionContext? {
        guard let userdata else { return nil }
        return Unmanaged<SessionContext>.fromOpaque(userdata).takeUnretainedValue()
    }

    static func from(request: OpaquePointer) -> SessionContext? {
        from(userdata: fuse_req_userdata(request))
    }
}

/// Route a request to the filesystem, or answer EIO if there is none (cannot
/// happen with a session built by ``FuseSession``).
@inline(__always)
private func dispatch(_ req: OpaquePointer?, _ body: (any FuseFilesystem, consuming Request) -> Void) {
    guard let req else { return }
    let request = Request(req)
    guard let ctx = SessionContext.from(request: req) else {
        request.reply(error: EIO)
        return
    }
    body(ctx.filesystem, request)
}

@inline(__always)
private func name(_ p: UnsafePointer<CChar>?) -> String {
    p.map { String(cString: $0) } ?? ""
}

/// A `FileInfo` for callbacks where libfuse always passes one.
@inline(__always)
private func info(_ fi: UnsafeMutablePointer<fuse_file_info>?) -> FileInfo {
    FileInfo.from(fi) ?? FileInfo(fuse_file_info())
}

/// The low-level operations table. Every entry is a non-capturing closure
/// that finds the filesystem through `fuse_req_userdata`.
func makeOperations() -> fuse_lowlevel_ops {
    var ops = fuse_lowlevel_ops()

    ops.`init` = { userdata, conn in
        guard let ctx = SessionContext.from(userdata: userdata), let conn else { return }
        var settings = ConnectionSettings(conn.pointee)
        ctx.filesystem.initialize(connection: &settings, notifier: ctx.notifier)
        settings.write(to: conn)
    }
    ops.destroy = { userdata in
        SessionContext.from(userdata: userdata)?.filesystem.destroy()
    }
    ops.lookup = { req, parent, cname in
        dispatch(req) { fs, r in fs.lookup(r, parent: parent, name: name(cname)) }
    }
    ops.forget = { req, ino, nlookup in
        if let req, let ctx = SessionContext.from(request: req) {
            ctx.filesystem.forget(inode: ino, lookups: nlookup)
        }
        fuse_reply_none(req)
    }
    ops.forget_multi = { req, count, items in
        if let req, let ctx = SessionContext.from(request: req), let items {
            for i in 0..<count {
                ctx.filesystem.forget(inode: items[i].ino, lookups: items[i].nlookup)
            }
        }
        fuse_reply_none(req)
    }
    ops.getattr = { req, ino, fi in
        dispatch(req) { fs, r in fs.getattr(r, inode: ino, file: FileInfo.from(fi)) }
    }
    ops.setattr = { req, ino, attr, toSet, fi in
        let attributes = attr?.pointee ?? stat()
        dispatch(req) { fs, r in
            fs.setattr(r, inode: ino, attributes: attributes,
                       fields: SetAttributeFields(rawValue: toSet), file: FileInfo.from(fi))
        }
    }
    ops.mknod = { req, parent, cname, mode, rdev in
        dispatch(req) { fs, r in fs.mknod(r, parent: parent, name: name(cname), mode: mode, device: rdev) }
    }
    ops.mkdir = { req, parent, cname, mode in
        dispatch(req) { fs, r in fs.mkdir(r, parent: parent, name: name(cname), mode: mode) }
    }
    ops.unlink = { req, parent, cname in
        dispatch(req) { fs, r in fs.unlink(r, parent: parent, name: name(cname)) }
    }
    ops.rmdir = { req, parent, cname in
        dispatch(req) { fs, r in fs.rmdir(r, parent: parent, name: name(cname)) }
    }
    ops.rename = { req, parent, cname, newParent, cnewName, flags in
        dispatch(req) { fs, r in
            fs.rename(r, parent: parent, name: name(cname), newParent: newParent,
                      newName: name(cnewName), flags: flags)
        }
    }
    ops.symlink = { req, target, parent, cname in
        dispatch(req) { fs, r in fs.symlink(r, target: name(target), parent: parent, name: name(cname)) }
    }
    ops.link = { req, ino, newParent, cnewName in
        dispatch(req) { fs, r in fs.link(r, inode: ino, newParent: newParent, newName: name(cnewName)) }
    }
    ops.open = { req, ino, fi in
        dispatch(req) { fs, r in fs.open(r, inode: ino, file: info(fi)) }
    }
    ops.read = { req, ino, size, off, fi in
        dispatch(req) { fs, r in fs.read(r, inode: ino, size: size, offset: Int64(off), file: info(fi)) }
    }
    ops.write = { req, ino, buf, size, off, fi in
        dispatch(req) { fs, r in
            fs.write(r, inode: ino, data: UnsafeRawBufferPointer(start: buf, count: buf == nil ? 0 : size),
                     offset: Int64(off), file: info(fi))
        }
    }
    ops.flush = { req, ino, fi in
        dispatch(req) { fs, r in fs.flush(r, inode: ino, file: info(fi)) }
    }
    ops.release = { req, ino, fi in
        dispatch(req) { fs, r in fs.release(r, inode: ino, file: info(fi)) }
    }
    ops.opendir = { req, ino, fi in
        dispatch(req) { fs, r in fs.opendir(r, inode: ino, file: info(fi)) }
    }
    ops.readdir = { req, ino, size, off, fi in
        dispatch(req) { fs, r in fs.readdir(r, inode: ino, size: size, offset: Int64(off), file: info(fi)) }
    }
    ops.releasedir = { req, ino, fi in
        dispatch(req) { fs, r in fs.releasedir(r, inode: ino, file: info(fi)) }
    }
    ops.statfs = { req, ino in
        dispatch(req) { fs, r in fs.statfs(r, inode: ino) }
    }
    ops.access = { req, ino, mask in
        dispatch(req) { fs, r in fs.access(r, inode: ino, mask: mask) }
    }
    ops.create = { req, parent, cname, mode, fi in
        dispatch(req) { fs, r in fs.create(r, parent: parent, name: name(cname), mode: mode, file: info(fi)) }
    }
    ops.ioctl = { req, ino, cmd, arg, fi, flags, inBuf, inSize, outSize in
        dispatch(req) { fs, r in
            fs.ioctl(r, inode: ino, command: cmd, argument: UInt64(UInt(bitPattern: arg)),
                     file: info(fi), flags: flags,
                     input: UnsafeRawBufferPointer(start: inBuf, count: inBuf == nil ? 0 : inSize),
                     outputSize: outSize)
        }
    }
    ops.poll = { req, ino, fi, ph in
        let handle = ph.map { PollHandle($0) }
        dispatch(req) { fs, r in fs.poll(r, inode: ino, file: info(fi), handle: handle) }
    }
    return ops
}
