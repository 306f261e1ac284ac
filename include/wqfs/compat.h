/* The requests libwqfs-compat.so makes of a wqfs queue, through ioctls on the queue's
 * own descriptor (DESIGN.md §7). Each command carries its size, so FUSE passes it to
 * the server; the kernel's own IOC_WATCH_QUEUE_SET_FILTER does not, which is why the
 * shim translates it into WQFS_IOC_SET_FILTER. */
#ifndef WQFS_COMPAT_H
#define WQFS_COMPAT_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Turns the queue of this descriptor into an anonymous one, with the kernel's rules:
 * its name leaves queues/ at once, it lives while any descriptor on it is open (its
 * watches go with it, silently), it holds no records until sized once with
 * IOC_WATCH_QUEUE_SET_SIZE (1..512, rounded up to 32; again: EBUSY), a read of it
 * empty with no descriptor open for writing is end of file, and poll reports POLLIN
 * only for queued records (POLLHUP once no descriptor open for writing is left).
 * Only the queue's owner (or root) may ask: EPERM otherwise. */
#define WQFS_IOC_ANONYMOUS	_IO('W', 0x70)

/* IOC_WATCH_QUEUE_SET_FILTER, carried whole: `struct watch_notification_filter`
 * with room for 16 entries. nr_filters 0 removes the filter (the kernel's NULL). */
struct wqfs_filter_request {
	__u32	nr_filters;
	__u32	__reserved;
	struct {
		__u32	type;
		__u32	info_filter;
		__u32	info_mask;
		__u32	subtype_filter[8];
	} filters[16];
};
#define WQFS_IOC_SET_FILTER	_IOW('W', 0x71, struct wqfs_filter_request)

/* KEYCTL_WATCH_KEY, once the shim has checked the watch id and resolved the key in
 * the caller's credentials: `serial` is the key's serial, `watch_id` -1 (remove) or
 * 0..255. The server answers EBUSY, EAGAIN, EBADSLT or EACCES as the kernel would. */
struct wqfs_watch_key_request {
	__s32	serial;
	__s32	watch_id;
};
#define WQFS_IOC_WATCH_KEY	_IOW('W', 0x72, struct wqfs_watch_key_request)

#endif /* WQFS_COMPAT_H */
