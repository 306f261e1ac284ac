// SPDX-License-Identifier: GPL-2.0
/* The key observer: syscall tracepoint programs that report every successful
 * key-changing call of every process (SOURCES.md, "Keys": this kernel posts no key
 * notifications, and BPF on these tracepoints is the one complete view).
 *
 * Enter: the arguments, kept per thread. Exit: if the call succeeded, one
 * struct wq_key_event (key_event.h) into the ring buffer. Read-only keyctl
 * operations (describe, read, search…) leave on entry before touching any map, so
 * they cost the tracepoint's call and one comparison.
 *
 * Compiled by Plugins/KeyObserverBPFPlugin during the normal build; no vmlinux.h: the
 * few kernel struct fields read are declared below with preserve_access_index, and
 * libbpf relocates their offsets against this kernel's BTF at load time (CO-RE). */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "key_event.h"

/* GPL: bpf_probe_read_user_str and bpf_get_current_task_btf are GPL-only helpers. */
char LICENSE[] SEC("license") = "GPL";

/* Only the fields read; libbpf matches them by name to the kernel's types. */
struct key {
    __s32 serial;
} __attribute__((preserve_access_index));

struct cred {
    struct key *session_keyring;
    struct key *process_keyring;
    struct key *thread_keyring;
} __attribute__((preserve_access_index));

struct task_struct {
    const struct cred *cred;
} __attribute__((preserve_access_index));

/* The tracepoints' own records (/sys/kernel/tracing/events/syscalls/…/format):
 * an 8-byte common header, the syscall number, then each argument in 8 bytes. */
struct syscall_enter {
    __u64 common;
    __s32 nr;
    __s32 pad;
    __u64 args[5];
};

struct syscall_exit {
    __u64 common;
    __s32 nr;
    __s32 pad;
    __s64 ret;
};

/* The keyctl operations that change a key or keyring (<linux/keyctl.h>): UPDATE 2,
 * REVOKE 3, CHOWN 4, SETPERM 5, CLEAR 7, LINK 8, UNLINK 9, INSTANTIATE 12, NEGATE 13,
 * SET_TIMEOUT 15, REJECT 19, INSTANTIATE_IOV 20, INVALIDATE 21, RESTRICT_KEYRING 29,
 * MOVE 30. One bit each, so the filter is a shift and a test. */
#define TRACKED_OPS ((1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 7) | \
                     (1u << 8) | (1u << 9) | (1u << 12) | (1u << 13) | (1u << 15) | \
                     (1u << 19) | (1u << 20) | (1u << 21) | (1u << 29) | (1u << 30))

struct pending {
    __u64 args[5];
    __u32 syscall;
    __u32 pad;
};

/* Arguments between enter and exit, per thread. LRU: a thread that never reaches
 * its exit tracepoint cannot leak an entry for good, and a full map evicts the oldest
 * rather than refusing. 8192 threads inside a key call at once is far beyond need. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 8192);
    __type(key, __u64);
    __type(value, struct pending);
} pending SEC(".maps");

/* The events. The loader sets the size (a power of two of pages) before loading. */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Counters user space reads: 0 events sent, 1 events dropped because the ring was
 * full, 2 exits whose entry was missing (evicted, or the observer attached mid-call). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 3);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 index)
{
    __u64 *value = bpf_map_lookup_elem(&counters, &index);
    if (value)
        __sync_fetch_and_add(value, 1);
}

/* `five`: whether the call has a fifth argument. request_key has four, and its
 * tracepoint record ends after them: the kernel refuses to attach a program that
 * reads past a tracepoint's record (EACCES). */
static __always_inline int remember(const struct syscall_enter *ctx, __u32 syscall, int five)
{
    __u64 id = bpf_get_current_pid_tgid();
    /* One load per argument at a constant offset: the verifier refuses a context
     * pointer moved by a loop. */
    struct pending entry = {
        .args = {ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3], five ? ctx->args[4] : 0},
        .syscall = syscall,
    };
    bpf_map_update_elem(&pending, &id, &entry, BPF_ANY);
    return 0;
}

static __always_inline int report(const struct syscall_exit *ctx, __u32 syscall)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct pending *entry = bpf_map_lookup_elem(&pending, &id);
    if (!entry) {
        /* A keyctl without an entry is most often a filtered read-only op: not counted. */
        if (syscall != WQ_KEY_SYSCALL_KEYCTL)
            count(2);
        return 0;
    }
    struct pending saved = *entry;
    bpf_map_delete_elem(&pending, &id);
    if (saved.syscall != syscall || ctx->ret < 0)
        return 0;

    int strings = syscall != WQ_KEY_SYSCALL_KEYCTL;
    struct wq_key_event *event;
    /* Two constant sizes: the verifier needs a known size per reservation. */
    if (strings)
        event = bpf_ringbuf_reserve(&events, WQ_KEY_EVENT_FULL_SIZE, 0);
    else
        event = bpf_ringbuf_reserve(&events, WQ_KEY_EVENT_SHORT_SIZE, 0);
    if (!event) {
        count(1);
        return 0;
    }
    event->time = bpf_ktime_get_ns();
    for (int i = 0; i < 5; i++)
        event->args[i] = saved.args[i];
    event->result = ctx->ret;
    event->size = strings ? WQ_KEY_EVENT_FULL_SIZE : WQ_KEY_EVENT_SHORT_SIZE;
    event->syscall = syscall;
    event->reserved = 0;
    event->pid = (__s32)id;
    event->tgid = (__s32)(id >> 32);
    __u64 ids = bpf_get_current_uid_gid();
    event->uid = (__u32)ids;
    event->gid = (__u32)(ids >> 32);
    /* Read at exit, not entry: a call naming @t, @p or @s may have just created that
     * keyring, and the caller's credentials then point at the new one. A missing
     * keyring is a NULL pointer, which the checked read turns into 0. */
    struct task_struct *task = bpf_get_current_task_btf();
    event->thread_keyring = BPF_CORE_READ(task, cred, thread_keyring, serial);
    event->process_keyring = BPF_CORE_READ(task, cred, process_keyring, serial);
    event->session_keyring = BPF_CORE_READ(task, cred, session_keyring, serial);
    event->type_length = 0;
    event->description_length = 0;
    if (strings) {
        /* At exit the kernel has just copied both strings, so their pages are
         * resident (this non-sleeping read cannot fault them in); only another
         * thread rewriting them in between could make them differ. */
        event->type_length = bpf_probe_read_user_str(event->type, sizeof event->type,
                                                     (const void *)saved.args[0]);
        event->description_length = bpf_probe_read_user_str(event->description, sizeof event->description,
                                                            (const void *)saved.args[1]);
    }
    bpf_ringbuf_submit(event, 0);
    count(0);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_keyctl")
int enter_keyctl(struct syscall_enter *ctx)
{
    __u32 op = (__u32)ctx->args[0];
    /* Everything that changes nothing leaves here, before any map is touched. */
    if (op >= 32 || !((TRACKED_OPS >> op) & 1))
        return 0;
    return remember(ctx, WQ_KEY_SYSCALL_KEYCTL, 1);
}

SEC("tracepoint/syscalls/sys_exit_keyctl")
int exit_keyctl(struct syscall_exit *ctx) { return report(ctx, WQ_KEY_SYSCALL_KEYCTL); }

SEC("tracepoint/syscalls/sys_enter_add_key")
int enter_add_key(struct syscall_enter *ctx) { return remember(ctx, WQ_KEY_SYSCALL_ADD_KEY, 1); }

SEC("tracepoint/syscalls/sys_exit_add_key")
int exit_add_key(struct syscall_exit *ctx) { return report(ctx, WQ_KEY_SYSCALL_ADD_KEY); }

SEC("tracepoint/syscalls/sys_enter_request_key")
int enter_request_key(struct syscall_enter *ctx) { return remember(ctx, WQ_KEY_SYSCALL_REQUEST_KEY, 0); }

SEC("tracepoint/syscalls/sys_exit_request_key")
int exit_request_key(struct syscall_exit *ctx) { return report(ctx, WQ_KEY_SYSCALL_REQUEST_KEY); }
