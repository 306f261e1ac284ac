/* The key observer's loader (CKeyObserver.h). */
#define _GNU_SOURCE
#include "CKeyObserver.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/keyctl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The six programs of keys.bpf.c and the tracepoints they go on. */
static const char *const programs[6][2] = {
    {"enter_keyctl", "sys_enter_keyctl"},       {"exit_keyctl", "sys_exit_keyctl"},
    {"enter_add_key", "sys_enter_add_key"},     {"exit_add_key", "sys_exit_add_key"},
    {"enter_request_key", "sys_enter_request_key"}, {"exit_request_key", "sys_exit_request_key"},
};

struct wq_key_observer {
    struct bpf_object *object;
    struct bpf_link *links[6];
    struct ring_buffer *ring;
    int counters_fd;
    /* The callback of the consume under way: libbpf takes one callback when the ring
     * is made, so it goes through here. */
    wq_key_event_fn fn;
    void *context;
    int stopped;
};

static void say(char *reason, size_t size, const char *format, ...)
{
    if (!reason || size == 0)
        return;
    va_list list;
    va_start(list, format);
    vsnprintf(reason, size, format, list);
    va_end(list);
}

/* libbpf writes its warnings to stderr by default; the observer reports its own
 * reasons (and the verifier's log) instead, so libbpf is quiet. */
static int quiet(enum libbpf_print_level level, const char *format, va_list list)
{
    (void)level, (void)format, (void)list;
    return 0;
}

static int has_tracefs(void)
{
    struct stat st;
    return stat("/sys/kernel/tracing/events/syscalls", &st) == 0 ||
           stat("/sys/kernel/debug/tracing/events/syscalls", &st) == 0;
}

static int sample(void *ctx, void *data, size_t size)
{
    struct wq_key_observer *observer = ctx;
    if (observer->stopped || !observer->fn)
        return 0;
    if (observer->fn(observer->context, data, size) != 0) {
        /* A non-zero return stops libbpf's consume; remember it for the return value. */
        observer->stopped = 1;
        return 1;
    }
    return 0;
}

int wq_key_observer_open(const void *object, size_t size, size_t ring_bytes,
                         wq_key_observer **out, char *reason, size_t reason_size)
{
    *out = NULL;
    if (geteuid() != 0) {
        say(reason, reason_size, "loading BPF programs needs root (euid %u)", (unsigned)geteuid());
        return EPERM;
    }
    /* libbpf finds a tracepoint's id under tracefs; this kernel boots without it mounted. */
    if (!has_tracefs() && mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) != 0) {
        int error = errno;
        say(reason, reason_size, "no tracefs, and mounting it on /sys/kernel/tracing failed: %s", strerror(error));
        return error;
    }
    libbpf_set_print(quiet);

    struct wq_key_observer *observer = calloc(1, sizeof *observer);
    if (!observer) {
        say(reason, reason_size, "out of memory");
        return ENOMEM;
    }
    observer->counters_fd = -1;
    /* The verifier's log, kept for the reason when loading fails. */
    size_t log_size = 64 * 1024;
    char *log = calloc(1, log_size);
    LIBBPF_OPTS(bpf_object_open_opts, options, .object_name = "wqfs_keys",
                .kernel_log_buf = log, .kernel_log_size = log ? log_size : 0);
    int error = 0;
    observer->object = bpf_object__open_mem(object, size, &options);
    if (!observer->object) {
        error = errno ? errno : EINVAL;
        say(reason, reason_size, "the embedded BPF object does not open: %s", strerror(error));
        goto fail;
    }
    if (ring_bytes == 0)
        ring_bytes = 256 * 1024;
    size_t pages = (size_t)sysconf(_SC_PAGESIZE), ring = pages;
    while (ring < ring_bytes && ring < ((size_t)1 << 30))
        ring <<= 1;
    struct bpf_map *events = bpf_object__find_map_by_name(observer->object, "events");
    struct bpf_map *counters = bpf_object__find_map_by_name(observer->object, "counters");
    if (!events || !counters) {
        error = EINVAL;
        say(reason, reason_size, "the embedded BPF object lacks its maps");
        goto fail;
    }
    bpf_map__set_max_entries(events, (__u32)ring);
    if (bpf_object__load(observer->object) != 0) {
        error = errno ? errno : EINVAL;
        /* The last lines of the verifier's log say why, when it was the verifier. */
        const char *tail = "";
        if (log && log[0]) {
            size_t length = strlen(log);
            tail = length > 300 ? log + length - 300 : log;
        }
        say(reason, reason_size, "the kernel refused the BPF program: %s%s%s", strerror(error),
            tail[0] ? "; verifier: " : "", tail);
        goto fail;
    }
    for (int i = 0; i < 6; i++) {
        struct bpf_program *program = bpf_object__find_program_by_name(observer->object, programs[i][0]);
        if (!program) {
            error = EINVAL;
            say(reason, reason_size, "the embedded BPF object lacks %s", programs[i][0]);
            goto fail;
        }
        observer->links[i] = bpf_program__attach_tracepoint(program, "syscalls", programs[i][1]);
        if (!observer->links[i]) {
            error = errno ? errno : EINVAL;
            say(reason, reason_size, "attaching to the tracepoint syscalls/%s failed: %s", programs[i][1],
                strerror(error));
            goto fail;
        }
    }
    observer->ring = ring_buffer__new(bpf_map__fd(events), sample, observer, NULL);
    if (!observer->ring) {
        error = errno ? errno : ENOMEM;
        say(reason, reason_size, "the ring buffer does not map: %s", strerror(error));
        goto fail;
    }
    observer->counters_fd = bpf_map__fd(counters);
    free(log);
    *out = observer;
    return 0;
fail:
    free(log);
    wq_key_observer_close(observer);
    return error;
}

int wq_key_observer_fd(const wq_key_observer *observer) { return ring_buffer__epoll_fd(observer->ring); }

int wq_key_observer_consume(wq_key_observer *observer, wq_key_event_fn fn, void *context)
{
    observer->fn = fn;
    observer->context = context;
    observer->stopped = 0;
    int n = ring_buffer__consume(observer->ring);
    observer->fn = NULL;
    observer->context = NULL;
    /* libbpf returns the callback's value when it stopped early; the events are
     * counted in that case too, by the caller, who knows which it kept. */
    if (observer->stopped)
        return 0;
    return n;
}

int wq_key_observer_counters(const wq_key_observer *observer, uint64_t *sent, uint64_t *dropped,
                             uint64_t *unmatched)
{
    uint64_t *targets[3] = {sent, dropped, unmatched};
    for (uint32_t i = 0; i < 3; i++) {
        uint64_t value = 0;
        if (bpf_map_lookup_elem(observer->counters_fd, &i, &value) != 0)
            return -errno;
        if (targets[i])
            *targets[i] = value;
    }
    return 0;
}

void wq_key_observer_close(wq_key_observer *observer)
{
    if (!observer)
        return;
    ring_buffer__free(observer->ring);
    for (int i = 0; i < 6; i++)
        bpf_link__destroy(observer->links[i]);
    bpf_object__close(observer->object);
    free(observer);
}

struct resolution {
    uid_t uid;
    int32_t special;
    int32_t serial;
    int error;
};

static void *resolve(void *argument)
{
    struct resolution *r = argument;
    uid_t real, effective, saved;
    if (syscall(SYS_getresuid, &real, &effective, &saved) != 0) {
        r->error = errno;
        return NULL;
    }
    /* Real and effective to the uid: the keyring register is indexed by the real
     * uid, and the keyring's permissions are checked against the effective one. The
     * saved uid stays, so the thread may switch back. Raw syscall: only this thread. */
    if (syscall(SYS_setresuid, r->uid, r->uid, -1) != 0) {
        r->error = errno;
        return NULL;
    }
    long serial = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, (long)r->special, 0L, 0L, 0L);
    r->error = serial < 0 ? errno : 0;
    r->serial = serial < 0 ? 0 : (int32_t)serial;
    /* The thread ends at once, but switching back keeps the rule simple: no thread of
     * the process ever runs with a borrowed uid past this function. */
    if (syscall(SYS_setresuid, real, effective, saved) != 0 && r->error == 0)
        r->error = errno;
    return NULL;
}

int wq_key_resolve_user_keyring(uint32_t uid, int32_t special, int32_t *serial)
{
    if (special != KEY_SPEC_USER_KEYRING && special != KEY_SPEC_USER_SESSION_KEYRING)
        return EINVAL;
    struct resolution r = {.uid = uid, .special = special};
    pthread_t thread;
    int error = pthread_create(&thread, NULL, resolve, &r);
    if (error != 0)
        return error;
    pthread_join(thread, NULL);
    if (r.error == 0)
        *serial = r.serial;
    return r.error;
}

struct described {
    int32_t serial;
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    size_t group_count;
    char *buffer;
    size_t size;
    long result;
    int error;
};

static void *describe_as(void *argument)
{
    struct described *d = argument;
    /* Raw system calls: glibc's setgroups changes every thread, these only this
     * one, which ends right after (and never gets back to the pool of any caller). */
    int old_groups = (int)syscall(SYS_getgroups, 0, NULL);
    gid_t *saved = old_groups > 0 ? calloc((size_t)old_groups, sizeof *saved) : NULL;
    if (old_groups > 0 && (!saved || syscall(SYS_getgroups, old_groups, saved) != old_groups)) {
        d->result = -1;
        d->error = saved ? errno : ENOMEM;
        free(saved);
        return NULL;
    }
    if (syscall(SYS_setgroups, d->group_count, d->groups) != 0) {
        d->result = -1;
        d->error = errno;
        free(saved);
        return NULL;
    }
    /* setfsuid and setfsgid return the old value and cannot fail visibly: check by
     * asking again (-1 is never a valid id and changes nothing). */
    uid_t old_fsgid = (uid_t)syscall(SYS_setfsgid, d->gid);
    uid_t old_fsuid = (uid_t)syscall(SYS_setfsuid, d->uid);
    if ((uid_t)syscall(SYS_setfsuid, -1) != d->uid || (gid_t)syscall(SYS_setfsgid, -1) != d->gid) {
        d->result = -1;
        d->error = EPERM;
    } else {
        d->result = syscall(SYS_keyctl, KEYCTL_DESCRIBE, (long)d->serial, (long)d->buffer, (long)d->size, 0L);
        d->error = d->result < 0 ? errno : 0;
    }
    /* As wq_key_resolve_user_keyring: no thread runs on with borrowed ids. */
    syscall(SYS_setfsuid, old_fsuid);
    syscall(SYS_setfsgid, old_fsgid);
    syscall(SYS_setgroups, old_groups > 0 ? (size_t)old_groups : 0, saved);
    free(saved);
    return NULL;
}

long wq_keyctl_describe_as(int32_t serial, uint32_t uid, uint32_t gid, const uint32_t *groups,
                           size_t group_count, char *buffer, size_t size, int *error)
{
    struct described d = {.serial = serial, .uid = uid, .gid = gid, .groups = groups,
                          .group_count = group_count, .buffer = buffer, .size = size};
    pthread_t thread;
    int failed = pthread_create(&thread, NULL, describe_as, &d);
    if (failed != 0) {
        *error = failed;
        return -1;
    }
    pthread_join(thread, NULL);
    *error = d.error;
    return d.result;
}

long wq_keyctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)
{
    return syscall(SYS_keyctl, option, arg2, arg3, arg4, arg5);
}
