/* The system records built with include/wqfs/records.h's structs, and the kernel
 * messages the system-source decoders read built with the kernel's own structs
 * (<linux/netlink.h>, <linux/connector.h>, <linux/cn_proc.h>, <linux/fanotify.h>),
 * so tests compare Swift's bytes with C's rather than with Swift's. */
#ifndef WQFS_SYSTEM_RECORDS_ABI_H
#define WQFS_SYSTEM_RECORDS_ABI_H

#include <stddef.h>
#include <stdint.h>

/* Each builder writes into out (at least 128 bytes) and returns the length. */
size_t wqfs_abi_mount(uint8_t *out, uint32_t subtype, uint32_t flags, uint64_t triggered_on, uint64_t auxiliary_mount);
/* PROCESS: a and b are the two subtype fields of fork, uid, gid, ptrace, coredump
 * (ignored for exec and sid). */
size_t wqfs_abi_process(uint8_t *out, uint32_t subtype, uint64_t timestamp_ns, uint32_t pid, uint32_t tgid,
                        uint32_t a, uint32_t b);
size_t wqfs_abi_process_comm(uint8_t *out, uint64_t timestamp_ns, uint32_t pid, uint32_t tgid, const char *comm);
size_t wqfs_abi_process_exit(uint8_t *out, uint32_t flags, uint64_t timestamp_ns, uint32_t pid, uint32_t tgid,
                             uint32_t exit_code, uint32_t exit_signal, uint32_t parent_pid, uint32_t parent_tgid);
/* DEVICE: computes the length, padding and truncation flags itself. */
size_t wqfs_abi_device(uint8_t *out, uint32_t subtype, uint64_t seqnum, uint32_t major, uint32_t minor,
                       const char *subsystem, const char *devpath);

/* A proc connector datagram as the kernel sends it: fields[] are the union's
 * members in declaration order for that what (fork: parent_pid, parent_tgid,
 * child_pid, child_tgid; exit: pid, tgid, exit_code, exit_signal, parent_pid,
 * parent_tgid; ...), assigned by name. */
size_t wqfs_abi_cn_event(uint8_t *out, uint32_t what, uint32_t cpu, uint64_t timestamp_ns, uint32_t seq,
                         const uint32_t fields[6]);
size_t wqfs_abi_cn_comm(uint8_t *out, uint64_t timestamp_ns, uint32_t pid, uint32_t tgid, const char *comm);
/* A subscription message; filtered = 0 sends only the op (pre-6.6 form). */
size_t wqfs_abi_cn_listen(uint8_t *out, uint32_t op, int filtered, uint32_t event_type, uint32_t seq, uint32_t port);

/* A fanotify mount event (metadata and one FAN_EVENT_INFO_TYPE_MNT record). */
size_t wqfs_abi_fanotify_mount(uint8_t *out, uint64_t mask, int32_t pid, uint64_t mnt_id);
/* An overflow event (metadata only). */
size_t wqfs_abi_fanotify_overflow(uint8_t *out);

/* Constants from the headers, to check the Swift ones against. */
uint32_t wqfs_abi_constant(const char *name);

#endif
