/* wqfs system records: the layouts of the notification records wqfs's system
 * sources post (sources/mounts, sources/processes, sources/devices), for C
 * programs reading a wqfs queue. Every record starts with the kernel's
 * struct watch_notification; all fields are little-endian, as on the machine.
 *
 * The structs are packed because a read buffer holds records of any type back to
 * back at their exact lengths, so a record need not start on an aligned address;
 * the layouts themselves are naturally aligned (no padding) and multiples of 8.
 * Take the length from the header (watch.info & WATCH_INFO_LENGTH), never from
 * sizeof: DEVICE records vary, and a later version may append fields.
 *
 * If the file also needs <fcntl.h>, define _LINUX_FCNTL_H before including this
 * header: <linux/watch_queue.h> pulls in <linux/fcntl.h>, which clashes with glibc.
 */
#ifndef WQFS_RECORDS_H
#define WQFS_RECORDS_H

#include <linux/types.h>
#include <linux/watch_queue.h>

/* ---- types ---------------------------------------------------------------- */

#define WQFS_WATCH_TYPE_MOUNT_NOTIFY	2	/* D. Howells' mount notifications */
#define WQFS_WATCH_TYPE_PROCESS		64	/* wqfs: proc connector events */
#define WQFS_WATCH_TYPE_DEVICE		65	/* wqfs: kernel uevents */

/* ---- MOUNT (type 2), 24 bytes ----------------------------------------------
 * Ids are the kernel's 64-bit unique mount ids (as fanotify and statmount give). */

enum wqfs_mount_notification_subtype {
	WQFS_MOUNT_NEW_MOUNT	= 0,	/* triggered_on = parent, auxiliary_mount = new mount */
	WQFS_MOUNT_UNMOUNT	= 1,	/* triggered_on = parent, auxiliary_mount = removed mount */
	WQFS_MOUNT_EXPIRY	= 2,	/* an automount expired (ids as for unmount) */
	WQFS_MOUNT_READONLY	= 3,	/* triggered_on = the mount; see IS_NOW_RO */
	WQFS_MOUNT_SETATTR	= 4,	/* other attributes or propagation; triggered_on = the mount */
	WQFS_MOUNT_MOVE_FROM	= 5,	/* triggered_on = old parent, auxiliary_mount = the mount */
	WQFS_MOUNT_MOVE_TO	= 6,	/* triggered_on = new parent, auxiliary_mount = the mount */
};

#define WQFS_MOUNT_IN_SUBTREE	WATCH_INFO_FLAG_0	/* 0x10000: below the watched mount */
#define WQFS_MOUNT_IS_NOW_RO	WATCH_INFO_FLAG_1	/* 0x20000: READONLY: it is read-only now */
#define WQFS_MOUNT_IS_SUBMOUNT	WATCH_INFO_FLAG_2	/* 0x40000: NEW_MOUNT: a submount */

struct wqfs_mount_notification {
	struct watch_notification watch;	/*  0: type 2 */
	__u64	triggered_on;			/*  8: the mount the change is accounted to */
	__u64	auxiliary_mount;		/* 16: the mount added, moved or removed, or 0 */
} __attribute__((packed));			/* 24 */

/* ---- PROCESS (type 64), 24 to 40 bytes --------------------------------------
 * Every record: header, CLOCK_MONOTONIC timestamp (as the proc connector gives
 * it), then the thread id (pid) and process id (tgid) the event is about, in the
 * initial pid namespace. Subtypes and lengths: */

enum wqfs_process_notification_subtype {
	WQFS_PROCESS_FORK	= 0,	/* 32: pid/tgid = the child */
	WQFS_PROCESS_EXEC	= 1,	/* 24 */
	WQFS_PROCESS_UID	= 2,	/* 32 */
	WQFS_PROCESS_GID	= 3,	/* 32 */
	WQFS_PROCESS_SID	= 4,	/* 24 */
	WQFS_PROCESS_PTRACE	= 5,	/* 32: tracer 0/0 = detached */
	WQFS_PROCESS_COMM	= 6,	/* 40 */
	WQFS_PROCESS_COREDUMP	= 7,	/* 32 */
	WQFS_PROCESS_EXIT	= 8,	/* 40 */
};

#define WQFS_PROCESS_KILLED	WATCH_INFO_FLAG_0	/* 0x10000: EXIT: killed by a signal */
#define WQFS_PROCESS_CORE	WATCH_INFO_FLAG_1	/* 0x20000: EXIT: dumped core */

/* EXEC and SID carry nothing more. */
struct wqfs_process_notification {
	struct watch_notification watch;	/*  0: type 64 */
	__u64	timestamp_ns;			/*  8 */
	__u32	pid;				/* 16 */
	__u32	tgid;				/* 20 */
} __attribute__((packed));			/* 24 */

/* FORK: pid/tgid are the child's. */
struct wqfs_process_notification_fork {
	struct watch_notification watch;
	__u64	timestamp_ns;
	__u32	pid;
	__u32	tgid;
	__u32	parent_pid;			/* 24 */
	__u32	parent_tgid;			/* 28 */
} __attribute__((packed));			/* 32 */

/* UID (ruid, euid) and GID (rgid, egid). */
struct wqfs_process_notification_id {
	struct watch_notification watch;
	__u64	timestamp_ns;
	__u32	pid;
	__u32	tgid;
	__u32	real;				/* 24: ruid or rgid */
	__u32	effective;			/* 28: euid or egid */
} __attribute__((packed));			/* 32 */

struct wqfs_process_notification_ptrace {
	struct watch_notification watch;
	__u64	timestamp_ns;
	__u32	pid;
	__u32	tgid;
	__u32	tracer_pid;			/* 24: 0 on detach */
	__u32	tracer_tgid;			/* 28: 0 on detach */
} __attribute__((packed));			/* 32 */

struct wqfs_process_notification_comm {
	struct watch_notification watch;
	__u64	timestamp_ns;
	__u32	pid;
	__u32	tgid;
	char	comm[16];			/* 24: NUL padded */
} __attribute__((packed));			/* 40 */

struct wqfs_process_notification_coredump {
	struct watch_notification watch;
	__u64	timestamp_ns;
	__u32	pid;
	__u32	tgid;
	__u32	parent_pid;			/* 24 */
	__u32	parent_tgid;			/* 28 */
} __attribute__((packed));			/* 32 */

/* EXIT: exit_code = WEXITSTATUS of a normal exit, else 0; exit_signal = WTERMSIG
 * when killed, else 0 (not the kernel's exit_signal, which is the signal sent to
 * the parent); WQFS_PROCESS_KILLED and WQFS_PROCESS_CORE in watch.info. */
struct wqfs_process_notification_exit {
	struct watch_notification watch;
	__u64	timestamp_ns;
	__u32	pid;
	__u32	tgid;
	__u32	exit_code;			/* 24 */
	__u32	exit_signal;			/* 28 */
	__u32	parent_pid;			/* 32 */
	__u32	parent_tgid;			/* 36 */
} __attribute__((packed));			/* 40 */

/* ---- DEVICE (type 65), 40 to 120 bytes --------------------------------------
 * Subtype = the uevent's ACTION. The length is 40 + the devpath rounded up to a
 * multiple of 8; a devpath of exactly a multiple of 8 bytes has no NUL, so read
 * it with strnlen(n->devpath, length - 40). Longer devpaths (> 80) and subsystems
 * (> 16) are cut to fit, and flagged. */

enum wqfs_device_notification_subtype {
	WQFS_DEVICE_ADD		= 0,
	WQFS_DEVICE_REMOVE	= 1,
	WQFS_DEVICE_CHANGE	= 2,
	WQFS_DEVICE_MOVE	= 3,
	WQFS_DEVICE_ONLINE	= 4,
	WQFS_DEVICE_OFFLINE	= 5,
	WQFS_DEVICE_BIND	= 6,
	WQFS_DEVICE_UNBIND	= 7,
};

#define WQFS_DEVICE_DEVPATH_TRUNCATED	WATCH_INFO_FLAG_0	/* 0x10000 */
#define WQFS_DEVICE_SUBSYSTEM_TRUNCATED	WATCH_INFO_FLAG_1	/* 0x20000 */
#define WQFS_DEVICE_NO_NUMBER		0xffffffffU	/* major/minor of a uevent without one */
#define WQFS_DEVICE_SUBSYSTEM_LEN	16
#define WQFS_DEVICE_DEVPATH_MAX		80
#define WQFS_DEVICE_MAX_LEN		120

struct wqfs_device_notification {
	struct watch_notification watch;	/*  0: type 65 */
	__u64	seqnum;				/*  8: SEQNUM */
	__u32	major;				/* 16: MAJOR, or WQFS_DEVICE_NO_NUMBER */
	__u32	minor;				/* 20: MINOR, or WQFS_DEVICE_NO_NUMBER */
	char	subsystem[16];			/* 24: SUBSYSTEM, NUL padded (no NUL if 16 long) */
	char	devpath[];			/* 40: DEVPATH, NUL padded to a multiple of 8 */
} __attribute__((packed));			/* 40 without devpath */

#endif /* WQFS_RECORDS_H */
