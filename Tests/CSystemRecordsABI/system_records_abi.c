#include <string.h>
#include <stddef.h>
#include <linux/netlink.h>
#include <linux/connector.h>
#include <linux/cn_proc.h>
#include <linux/fanotify.h>
#include <wqfs/records.h>
#include "system_records_abi.h"

/* ---- the record layouts, as include/wqfs/records.h promises them ---- */

#define AT(type, field, offset) _Static_assert(offsetof(struct type, field) == (offset), #type "." #field)
_Static_assert(sizeof(struct wqfs_mount_notification) == 24, "mount");
AT(wqfs_mount_notification, triggered_on, 8);
AT(wqfs_mount_notification, auxiliary_mount, 16);
_Static_assert(sizeof(struct wqfs_process_notification) == 24, "process");
AT(wqfs_process_notification, timestamp_ns, 8);
AT(wqfs_process_notification, pid, 16);
AT(wqfs_process_notification, tgid, 20);
_Static_assert(sizeof(struct wqfs_process_notification_fork) == 32, "fork");
AT(wqfs_process_notification_fork, parent_pid, 24);
AT(wqfs_process_notification_fork, parent_tgid, 28);
_Static_assert(sizeof(struct wqfs_process_notification_id) == 32, "id");
AT(wqfs_process_notification_id, real, 24);
AT(wqfs_process_notification_id, effective, 28);
_Static_assert(sizeof(struct wqfs_process_notification_ptrace) == 32, "ptrace");
AT(wqfs_process_notification_ptrace, tracer_pid, 24);
AT(wqfs_process_notification_ptrace, tracer_tgid, 28);
_Static_assert(sizeof(struct wqfs_process_notification_comm) == 40, "comm");
AT(wqfs_process_notification_comm, comm, 24);
_Static_assert(sizeof(struct wqfs_process_notification_coredump) == 32, "coredump");
AT(wqfs_process_notification_coredump, parent_pid, 24);
AT(wqfs_process_notification_coredump, parent_tgid, 28);
_Static_assert(sizeof(struct wqfs_process_notification_exit) == 40, "exit");
AT(wqfs_process_notification_exit, exit_code, 24);
AT(wqfs_process_notification_exit, exit_signal, 28);
AT(wqfs_process_notification_exit, parent_pid, 32);
AT(wqfs_process_notification_exit, parent_tgid, 36);
_Static_assert(sizeof(struct wqfs_device_notification) == 40, "device");
AT(wqfs_device_notification, seqnum, 8);
AT(wqfs_device_notification, major, 16);
AT(wqfs_device_notification, minor, 20);
AT(wqfs_device_notification, subsystem, 24);
AT(wqfs_device_notification, devpath, 40);
_Static_assert(WQFS_DEVICE_MAX_LEN == sizeof(struct wqfs_device_notification) + WQFS_DEVICE_DEVPATH_MAX, "device max");
_Static_assert(WQFS_DEVICE_MAX_LEN <= WATCH_INFO_LENGTH, "fits the length field");

/* ---- the kernel messages, as the decoders read them ---- */

_Static_assert(sizeof(struct nlmsghdr) == 16, "nlmsghdr");
_Static_assert(sizeof(struct cn_msg) == 20, "cn_msg");
AT(cn_msg, len, 16);
_Static_assert(sizeof(struct proc_event) == 40, "proc_event");
AT(proc_event, timestamp_ns, 8);
AT(proc_event, event_data, 16);
AT(proc_event, event_data.exit.exit_code, 24);
AT(proc_event, event_data.exit.parent_tgid, 36);
AT(proc_event, event_data.comm.comm, 24);
_Static_assert(sizeof(struct fanotify_event_metadata) == 24, "fanotify_event_metadata");
AT(fanotify_event_metadata, mask, 8);
AT(fanotify_event_metadata, fd, 16);
AT(fanotify_event_metadata, pid, 20);
_Static_assert(sizeof(struct fanotify_event_info_header) == 4, "info header");

/* Newer than Debian's 6.1 headers: defined here as the 6.6 / 6.15 uapi has them. */
#define WQFS_PROC_EVENT_NONZERO_EXIT	0x20000000
struct wqfs_proc_input {
	__u32 mcast_op;		/* enum proc_cn_mcast_op */
	__u32 event_type;	/* enum proc_cn_event */
};
#define WQFS_FAN_MNT_ATTACH		0x01000000
#define WQFS_FAN_MNT_DETACH		0x02000000
#define WQFS_FAN_REPORT_MNT		0x00004000
#define WQFS_FAN_MARK_MNTNS		0x00000110
#define WQFS_FAN_EVENT_INFO_TYPE_MNT	7
struct wqfs_fanotify_event_info_mnt {
	struct fanotify_event_info_header hdr;
	__u64 mnt_id;
};
_Static_assert(sizeof(struct wqfs_fanotify_event_info_mnt) == 16, "info_mnt");
AT(wqfs_fanotify_event_info_mnt, mnt_id, 8);

/* ---- builders ---- */

/* A macro, not a function: a pointer to a packed struct's member may be unaligned. */
#define HEADER(n, type_, subtype_, length, flags) do { \
	(n).watch.type = (type_); \
	(n).watch.subtype = (subtype_); \
	(n).watch.info = (((length) << WATCH_INFO_LENGTH__SHIFT) & WATCH_INFO_LENGTH) | ((flags) & WATCH_INFO_TYPE_INFO); \
} while (0)

size_t wqfs_abi_mount(uint8_t *out, uint32_t subtype, uint32_t flags, uint64_t triggered_on, uint64_t auxiliary_mount)
{
	struct wqfs_mount_notification n;
	memset(&n, 0, sizeof(n));
	HEADER(n, WQFS_WATCH_TYPE_MOUNT_NOTIFY, subtype, sizeof(n), flags);
	n.triggered_on = triggered_on;
	n.auxiliary_mount = auxiliary_mount;
	memcpy(out, &n, sizeof(n));
	return sizeof(n);
}

#define COMMON(n, subtype, flags) do { \
	memset(&(n), 0, sizeof(n)); \
	HEADER(n, WQFS_WATCH_TYPE_PROCESS, (subtype), sizeof(n), (flags)); \
	(n).timestamp_ns = timestamp_ns; (n).pid = pid; (n).tgid = tgid; \
} while (0)

size_t wqfs_abi_process(uint8_t *out, uint32_t subtype, uint64_t timestamp_ns, uint32_t pid, uint32_t tgid,
                        uint32_t a, uint32_t b)
{
	switch (subtype) {
	case WQFS_PROCESS_FORK: {
		struct wqfs_process_notification_fork n;
		COMMON(n, subtype, 0); n.parent_pid = a; n.parent_tgid = b;
		memcpy(out, &n, sizeof(n)); return sizeof(n);
	}
	case WQFS_PROCESS_UID: case WQFS_PROCESS_GID: {
		struct wqfs_process_notification_id n;
		COMMON(n, subtype, 0); n.real = a; n.effective = b;
		memcpy(out, &n, sizeof(n)); return sizeof(n);
	}
	case WQFS_PROCESS_PTRACE: {
		struct wqfs_process_notification_ptrace n;
		COMMON(n, subtype, 0); n.tracer_pid = a; n.tracer_tgid = b;
		memcpy(out, &n, sizeof(n)); return sizeof(n);
	}
	case WQFS_PROCESS_COREDUMP: {
		struct wqfs_process_notification_coredump n;
		COMMON(n, subtype, 0); n.parent_pid = a; n.parent_tgid = b;
		memcpy(out, &n, sizeof(n)); return sizeof(n);
	}
	default: {
		struct wqfs_process_notification n;
		COMMON(n, subtype, 0);
		memcpy(out, &n, sizeof(n)); return sizeof(n);
	}
	}
}

size_t wqfs_abi_process_comm(uint8_t *out, uint64_t timestamp_ns, uint32_t pid, uint32_t tgid, const char *comm)
{
	struct wqfs_process_notification_comm n;
	COMMON(n, WQFS_PROCESS_COMM, 0);
	strncpy(n.comm, comm, sizeof(n.comm));
	memcpy(out, &n, sizeof(n));
	return sizeof(n);
}

size_t wqfs_abi_process_exit(uint8_t *out, uint32_t flags, uint64_t timestamp_ns, uint32_t pid, uint32_t tgid,
                             uint32_t exit_code, uint32_t exit_signal, uint32_t parent_pid, uint32_t parent_tgid)
{
	struct wqfs_process_notification_exit n;
	COMMON(n, WQFS_PROCESS_EXIT, flags);
	n.exit_code = exit_code;
	n.exit_signal = exit_signal;
	n.parent_pid = parent_pid;
	n.parent_tgid = parent_tgid;
	memcpy(out, &n, sizeof(n));
	return sizeof(n);
}

size_t wqfs_abi_device(uint8_t *out, uint32_t subtype, uint64_t seqnum, uint32_t major, uint32_t minor,
                       const char *subsystem, const char *devpath)
{
	uint8_t buffer[WQFS_DEVICE_MAX_LEN];
	struct wqfs_device_notification *n = (void *)buffer;
	size_t path = strlen(devpath), sub = strlen(subsystem), flags = 0;
	if (path > WQFS_DEVICE_DEVPATH_MAX) { path = WQFS_DEVICE_DEVPATH_MAX; flags |= WQFS_DEVICE_DEVPATH_TRUNCATED; }
	if (sub > WQFS_DEVICE_SUBSYSTEM_LEN) { sub = WQFS_DEVICE_SUBSYSTEM_LEN; flags |= WQFS_DEVICE_SUBSYSTEM_TRUNCATED; }
	size_t length = sizeof(*n) + ((path + 7) & ~(size_t)7);
	memset(buffer, 0, sizeof(buffer));
	HEADER(*n, WQFS_WATCH_TYPE_DEVICE, subtype, length, flags);
	n->seqnum = seqnum;
	n->major = major;
	n->minor = minor;
	memcpy(n->subsystem, subsystem, sub);
	memcpy(n->devpath, devpath, path);
	memcpy(out, buffer, length);
	return length;
}

/* nlmsghdr + cn_msg for a proc event, as cn_netlink_send_mult lays them out. */
static struct proc_event *cn_frame(uint8_t *out, uint32_t seq)
{
	struct nlmsghdr *nh = (void *)out;
	struct cn_msg *msg = NLMSG_DATA(nh);
	memset(out, 0, NLMSG_SPACE(sizeof(*msg) + sizeof(struct proc_event)));
	nh->nlmsg_len = NLMSG_LENGTH(sizeof(*msg) + sizeof(struct proc_event));
	nh->nlmsg_type = NLMSG_DONE;
	nh->nlmsg_seq = seq;
	msg->id.idx = CN_IDX_PROC;
	msg->id.val = CN_VAL_PROC;
	msg->seq = seq;
	msg->len = sizeof(struct proc_event);
	return (struct proc_event *)msg->data;
}

size_t wqfs_abi_cn_event(uint8_t *out, uint32_t what, uint32_t cpu, uint64_t timestamp_ns, uint32_t seq,
                         const uint32_t f[6])
{
	/* proc_event sits at offset 36: build it aligned, then copy it in. */
	struct proc_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.what = what;
	ev.cpu = cpu;
	ev.timestamp_ns = timestamp_ns;
	switch (what) {
	case PROC_EVENT_NONE: ev.event_data.ack.err = f[0]; break;
	case PROC_EVENT_FORK:
		ev.event_data.fork.parent_pid = f[0]; ev.event_data.fork.parent_tgid = f[1];
		ev.event_data.fork.child_pid = f[2]; ev.event_data.fork.child_tgid = f[3]; break;
	case PROC_EVENT_EXEC:
		ev.event_data.exec.process_pid = f[0]; ev.event_data.exec.process_tgid = f[1]; break;
	case PROC_EVENT_UID:
		ev.event_data.id.process_pid = f[0]; ev.event_data.id.process_tgid = f[1];
		ev.event_data.id.r.ruid = f[2]; ev.event_data.id.e.euid = f[3]; break;
	case PROC_EVENT_GID:
		ev.event_data.id.process_pid = f[0]; ev.event_data.id.process_tgid = f[1];
		ev.event_data.id.r.rgid = f[2]; ev.event_data.id.e.egid = f[3]; break;
	case PROC_EVENT_SID:
		ev.event_data.sid.process_pid = f[0]; ev.event_data.sid.process_tgid = f[1]; break;
	case PROC_EVENT_PTRACE:
		ev.event_data.ptrace.process_pid = f[0]; ev.event_data.ptrace.process_tgid = f[1];
		ev.event_data.ptrace.tracer_pid = f[2]; ev.event_data.ptrace.tracer_tgid = f[3]; break;
	case PROC_EVENT_COREDUMP:
		ev.event_data.coredump.process_pid = f[0]; ev.event_data.coredump.process_tgid = f[1];
		ev.event_data.coredump.parent_pid = f[2]; ev.event_data.coredump.parent_tgid = f[3]; break;
	case PROC_EVENT_EXIT:
		ev.event_data.exit.process_pid = f[0]; ev.event_data.exit.process_tgid = f[1];
		ev.event_data.exit.exit_code = f[2]; ev.event_data.exit.exit_signal = f[3];
		ev.event_data.exit.parent_pid = f[4]; ev.event_data.exit.parent_tgid = f[5]; break;
	default: break;
	}
	memcpy(cn_frame(out, seq), &ev, sizeof(ev));
	return NLMSG_SPACE(sizeof(struct cn_msg) + sizeof(struct proc_event));
}

size_t wqfs_abi_cn_comm(uint8_t *out, uint64_t timestamp_ns, uint32_t pid, uint32_t tgid, const char *comm)
{
	struct proc_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.what = PROC_EVENT_COMM;
	ev.timestamp_ns = timestamp_ns;
	ev.event_data.comm.process_pid = pid;
	ev.event_data.comm.process_tgid = tgid;
	strncpy(ev.event_data.comm.comm, comm, sizeof(ev.event_data.comm.comm));
	memcpy(cn_frame(out, 0), &ev, sizeof(ev));
	return NLMSG_SPACE(sizeof(struct cn_msg) + sizeof(struct proc_event));
}

size_t wqfs_abi_cn_listen(uint8_t *out, uint32_t op, int filtered, uint32_t event_type, uint32_t seq, uint32_t port)
{
	struct nlmsghdr *nh = (void *)out;
	struct cn_msg *msg = NLMSG_DATA(nh);
	struct wqfs_proc_input input = { op, event_type };
	size_t data = filtered ? sizeof(input) : sizeof(input.mcast_op);
	memset(out, 0, NLMSG_SPACE(sizeof(*msg) + data));
	nh->nlmsg_len = NLMSG_LENGTH(sizeof(*msg) + data);
	nh->nlmsg_type = NLMSG_DONE;
	nh->nlmsg_seq = seq;
	nh->nlmsg_pid = port;
	msg->id.idx = CN_IDX_PROC;
	msg->id.val = CN_VAL_PROC;
	msg->seq = seq;
	msg->len = data;
	memcpy(msg->data, &input, data);
	return nh->nlmsg_len;
}

size_t wqfs_abi_fanotify_mount(uint8_t *out, uint64_t mask, int32_t pid, uint64_t mnt_id)
{
	struct fanotify_event_metadata m;
	struct wqfs_fanotify_event_info_mnt info;
	memset(&m, 0, sizeof(m));
	memset(&info, 0, sizeof(info));
	m.event_len = sizeof(m) + sizeof(info);
	m.vers = FANOTIFY_METADATA_VERSION;
	m.metadata_len = sizeof(m);
	m.mask = mask;
	m.fd = FAN_NOFD;
	m.pid = pid;
	info.hdr.info_type = WQFS_FAN_EVENT_INFO_TYPE_MNT;
	info.hdr.len = sizeof(info);
	info.mnt_id = mnt_id;
	memcpy(out, &m, sizeof(m));
	memcpy(out + sizeof(m), &info, sizeof(info));
	return m.event_len;
}

size_t wqfs_abi_fanotify_overflow(uint8_t *out)
{
	struct fanotify_event_metadata m;
	memset(&m, 0, sizeof(m));
	m.event_len = sizeof(m);
	m.vers = FANOTIFY_METADATA_VERSION;
	m.metadata_len = sizeof(m);
	m.mask = FAN_Q_OVERFLOW;
	m.fd = FAN_NOFD;
	memcpy(out, &m, sizeof(m));
	return sizeof(m);
}

uint32_t wqfs_abi_constant(const char *name)
{
	static const struct { const char *name; uint32_t value; } table[] = {
		{ "WQFS_WATCH_TYPE_MOUNT_NOTIFY", WQFS_WATCH_TYPE_MOUNT_NOTIFY },
		{ "WQFS_WATCH_TYPE_PROCESS", WQFS_WATCH_TYPE_PROCESS },
		{ "WQFS_WATCH_TYPE_DEVICE", WQFS_WATCH_TYPE_DEVICE },
		{ "WQFS_MOUNT_IN_SUBTREE", WQFS_MOUNT_IN_SUBTREE },
		{ "WQFS_MOUNT_IS_NOW_RO", WQFS_MOUNT_IS_NOW_RO },
		{ "WQFS_MOUNT_IS_SUBMOUNT", WQFS_MOUNT_IS_SUBMOUNT },
		{ "WQFS_MOUNT_MOVE_TO", WQFS_MOUNT_MOVE_TO },
		{ "WQFS_PROCESS_KILLED", WQFS_PROCESS_KILLED },
		{ "WQFS_PROCESS_CORE", WQFS_PROCESS_CORE },
		{ "WQFS_PROCESS_EXIT", WQFS_PROCESS_EXIT },
		{ "WQFS_DEVICE_DEVPATH_TRUNCATED", WQFS_DEVICE_DEVPATH_TRUNCATED },
		{ "WQFS_DEVICE_SUBSYSTEM_TRUNCATED", WQFS_DEVICE_SUBSYSTEM_TRUNCATED },
		{ "WQFS_DEVICE_NO_NUMBER", WQFS_DEVICE_NO_NUMBER },
		{ "WQFS_DEVICE_UNBIND", WQFS_DEVICE_UNBIND },
		{ "WQFS_DEVICE_MAX_LEN", WQFS_DEVICE_MAX_LEN },
		{ "CN_IDX_PROC", CN_IDX_PROC },
		{ "CN_VAL_PROC", CN_VAL_PROC },
		{ "NLMSG_DONE", NLMSG_DONE },
		{ "PROC_EVENT_FORK", PROC_EVENT_FORK },
		{ "PROC_EVENT_EXEC", PROC_EVENT_EXEC },
		{ "PROC_EVENT_UID", PROC_EVENT_UID },
		{ "PROC_EVENT_GID", PROC_EVENT_GID },
		{ "PROC_EVENT_SID", PROC_EVENT_SID },
		{ "PROC_EVENT_PTRACE", PROC_EVENT_PTRACE },
		{ "PROC_EVENT_COMM", PROC_EVENT_COMM },
		{ "PROC_EVENT_COREDUMP", PROC_EVENT_COREDUMP },
		{ "PROC_EVENT_EXIT", PROC_EVENT_EXIT },
		{ "PROC_CN_MCAST_LISTEN", PROC_CN_MCAST_LISTEN },
		{ "PROC_CN_MCAST_IGNORE", PROC_CN_MCAST_IGNORE },
		{ "FANOTIFY_METADATA_VERSION", FANOTIFY_METADATA_VERSION },
		{ "FAN_Q_OVERFLOW", FAN_Q_OVERFLOW },
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].name, name) == 0) return table[i].value;
	return 0xdeadbeef;
}
