/*
 * CFuse: the one C header through which wqfs sees libfuse3's low-level API.
 *
 * FUSE_USE_VERSION must be defined here, before the first libfuse include:
 * 312 is the lowest API level at which fuse_session_loop_mt and
 * fuse_parse_cmdline are real (callable) functions on libfuse 3.14.
 *
 * The static inline helpers below exist only for things Swift cannot reach
 * directly (function-like macros, kernel ABI structs libfuse does not export).
 */
#ifndef WQFS_CFUSE_SHIM_H
#define WQFS_CFUSE_SHIM_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <fuse_opt.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>

/*
 * FOPEN_* bits of the kernel ABI (struct fuse_open_out.open_flags), with the
 * values of <linux/fuse.h>. That header is not included here: libfuse keeps
 * its own private copy of the protocol and the two are not meant to mix.
 */
#define CFUSE_FOPEN_DIRECT_IO   (1u << 0)
#define CFUSE_FOPEN_KEEP_CACHE  (1u << 1)
#define CFUSE_FOPEN_NONSEEKABLE (1u << 2)
#define CFUSE_FOPEN_CACHE_DIR   (1u << 3)
#define CFUSE_FOPEN_STREAM      (1u << 4)
#define CFUSE_FOPEN_NOFLUSH     (1u << 5)

/*
 * Answer an OPEN (or OPENDIR) request with an explicit kernel open_flags word.
 *
 * libfuse 3.14 fills `struct fuse_open_out` from `struct fuse_file_info`,
 * which has no bit for FOPEN_STREAM. The reply to OPEN is nothing but that
 * 16-byte struct, so sending it ourselves through fuse_reply_buf lets us set
 * any flag the kernel knows. Layout per the kernel ABI:
 * u64 fh; u32 open_flags; u32 padding.
 */
static inline int cfuse_reply_open_flags(fuse_req_t req, uint64_t fh,
                                         uint32_t open_flags)
{
    struct {
        uint64_t fh;
        uint32_t open_flags;
        uint32_t padding;
    } out;
    _Static_assert(sizeof(out) == 16, "fuse_open_out is 16 bytes");
    memset(&out, 0, sizeof(out));
    out.fh = fh;
    out.open_flags = open_flags;
    return fuse_reply_buf(req, (const char *)&out, sizeof(out));
}

/*
 * fuse_lowlevel_notify_store for one memory buffer. FUSE_BUFVEC_INIT is a
 * macro (a compound literal), which Swift cannot import.
 */
static inline int cfuse_notify_store(struct fuse_session *se, fuse_ino_t ino,
                                     off_t offset, const void *data,
                                     size_t size)
{
    struct fuse_bufvec bufv = FUSE_BUFVEC_INIT(size);
    bufv.buf[0].mem = (void *)data;
    return fuse_lowlevel_notify_store(se, ino, offset, &bufv, 0);
}

/*
 * fuse_session_new. From libfuse 3.17 on it is a macro (or inline function) over
 * a versioned entry point, which Swift would not see; called from C it works
 * with every libfuse 3.
 */
static inline struct fuse_session *cfuse_session_new(struct fuse_args *args,
                                                     const struct fuse_lowlevel_ops *op,
                                                     size_t op_size, void *userdata)
{
    return fuse_session_new(args, op, op_size, userdata);
}

#endif /* WQFS_CFUSE_SHIM_H */
