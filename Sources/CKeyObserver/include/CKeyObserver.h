/* The key observer's loader: loads the BPF program (Sources/KeyObserverBPF, embedded
 * in the build by Plugins/KeyObserverBPFPlugin) from memory with libbpf, attaches its
 * six syscall tracepoints, and hands out its ring buffer of struct wq_key_event
 * (key_event.h). It starts no thread: the caller waits on `wq_key_observer_fd` with
 * its own epoll and calls `wq_key_observer_consume` when it is readable.
 *
 * Plus the user-space half of resolving the special ids BPF cannot: the user (-4) and
 * user-session (-5) keyrings of a uid. */
#ifndef WQFS_CKEYOBSERVER_H
#define WQFS_CKEYOBSERVER_H

#include <stddef.h>
#include <stdint.h>
#include "key_event.h"

typedef struct wq_key_observer wq_key_observer;

/* Called once per event with its bytes (`size` as the ring buffer holds it); return
 * 0 to go on, anything else stops the consume. */
typedef int (*wq_key_event_fn)(void *context, const void *data, size_t size);

/* Loads and attaches the program `object` (an ELF of `size` bytes) with a ring buffer
 * of `ring_bytes` (rounded up to a power of two of pages; 0: 256 KiB). Mounts tracefs
 * on /sys/kernel/tracing when no tracefs is found (libbpf reads tracepoint ids there).
 * Returns 0 and the observer in *out, or an errno with a sentence in `reason`
 * (EPERM: not root / BPF refused; ENOENT: no tracefs or tracepoint; EINVAL: the
 * object is not a valid program). */
int wq_key_observer_open(const void *object, size_t size, size_t ring_bytes,
                         wq_key_observer **out, char *reason, size_t reason_size);

/* The descriptor to wait on for EPOLLIN (libbpf's epoll descriptor over the ring). */
int wq_key_observer_fd(const wq_key_observer *observer);

/* Calls `fn` for every event in the ring without waiting. Returns the events handed
 * to `fn`, or a negative errno. */
int wq_key_observer_consume(wq_key_observer *observer, wq_key_event_fn fn, void *context);

/* The program's counters: events sent, events dropped (ring full), exits without their
 * entry. Returns 0 or a negative errno. */
int wq_key_observer_counters(const wq_key_observer *observer, uint64_t *sent, uint64_t *dropped,
                             uint64_t *unmatched);

/* Detaches everything and frees the observer. NULL is allowed. */
void wq_key_observer_close(wq_key_observer *observer);

/* The serial of `uid`'s user keyring (special = -4) or user-session keyring (-5),
 * created if missing, as that user would see it. Runs keyctl(KEYCTL_GET_KEYRING_ID) on
 * a short-lived thread that takes the uid with the raw setresuid system call, which
 * changes only that thread's credentials (glibc's setresuid would change every thread
 * of the process). Needs CAP_SETUID unless `uid` is the caller's. Returns 0 and the
 * serial in *serial, or an errno. */
int wq_key_resolve_user_keyring(uint32_t uid, int32_t special, int32_t *serial);

/* KEYCTL_DESCRIBE of `serial` into buffer as a user would: on a thread of its own
 * whose file-system uid and gid and supplementary groups are the given ones (the
 * ones the kernel checks a key's permissions against), so a server running as root
 * can read the description of a key that user may view and root may not (another
 * user's session or user keyring). Possession is still this process's. Returns what
 * the call returns, and the errno in *error. */
long wq_keyctl_describe_as(int32_t serial, uint32_t uid, uint32_t gid, const uint32_t *groups,
                           size_t group_count, char *buffer, size_t size, int *error);

/* keyctl(2) with five arguments, for tests and benchmarks (syscall(2) is variadic).
 * Returns what the call returns, errno as it leaves it. */
long wq_keyctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4,
               unsigned long arg5);

#endif
