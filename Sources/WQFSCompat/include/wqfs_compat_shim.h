/* libwqfs-compat.so: loaded with LD_PRELOAD, it lets a program written for the
 * kernel's watch queues run on a wqfs mount (DESIGN.md §7). It defines, with the
 * prototypes of glibc and libkeyutils, pipe2, ioctl, syscall and keyctl; it has
 * no API of its own. What it asks of the server is in include/wqfs/compat.h. */
#ifndef WQFS_COMPAT_SHIM_H
#define WQFS_COMPAT_SHIM_H

/* The environment variable naming the mount to make queues on; without it, the
 * first fuse.wqfs mount in /proc/self/mountinfo. */
#define WQFS_COMPAT_MOUNT_VARIABLE "WQFS_MOUNT"

#endif
