/* The floor for wqfs's system sources (wqfs-bench --only sources): the same
 * kernel mechanism each source uses, opened directly, and one thread blocked in
 * read/recv on it. Nothing between the kernel and the reader, so the time from a
 * triggering call to this read returning is what any reader of the mechanism
 * pays; wqfs adds its event thread, the engine and a FUSE reply to that.
 *
 *   floor mounts|mounts-rescan|processes|devices PARENT_TGID
 *   floor queue PARENT_TGID PATH
 *   floor forker
 *
 * Prints "ready\n" once subscribed, then one line per event the benchmark
 * triggers, stamped (CLOCK_MONOTONIC, the benchmark's clock) as soon as the
 * read that carried it returned:
 *   mounts:    "A MNT_ID NS" (attach), "D MNT_ID NS" (detach)
 *   mounts-rescan: the same, but after each read, before the stamp, the mount
 *              table is read twice as wqfs's mounts mechanism does per event
 *              (/proc/self/mountinfo, listmount, statmount of every mount): not a
 *              floor but a measure of that work's kernel side
 *   processes: "F PID NS" (fork), "X PID NS" (exit), only for children of
 *              PARENT_TGID (everything else on the machine forks too)
 *   devices:   "C SEQNUM NS" for a "change" of /devices/virtual/mem/null
 *   queue:     not a floor: a wqfs queue file at PATH, read by this small process
 *              the same way (blocking read), printing the same lines for the
 *              records of mounts, processes and devices; so wqfs can be timed with
 *              its reader where the floor's is, outside the triggering process
 *   forker:    not a floor: the processes trigger. For each byte read from
 *              stdin it stamps, forks a child that exits at once, prints
 *              "S CHILD_PID NS" and reaps it; a small process forking, as shells
 *              do, rather than the large benchmark process (whose child would
 *              tear down a copied address space on one of the two vCPUs while
 *              the event is being delivered)
 * stdout is a pipe to the benchmark; each line is one write, so the benchmark
 * reads whole lines. Runs until killed.
 *
 * Blocking descriptors and no epoll on purpose: the benchmark waits until this
 * thread sleeps in the read before it triggers, exactly as for the wqfs reader.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
/* The record layouts a wqfs queue holds (the queue mode); <fcntl.h> is in already. */
#define _LINUX_FCNTL_H
#include "wqfs/records.h"

/* Mount events (Linux 6.15) are newer than Debian 12's headers. */
#ifndef FAN_REPORT_MNT
#define FAN_REPORT_MNT 0x00004000
#endif
#ifndef FAN_MARK_MNTNS
#define FAN_MARK_MNTNS 0x00000110
#endif
#ifndef FAN_MNT_ATTACH
#define FAN_MNT_ATTACH 0x01000000ULL
#define FAN_MNT_DETACH 0x02000000ULL
#endif
#define INFO_TYPE_MNT 7
/* listmount/statmount (Linux 6.8) are newer than the headers too. */
#define NR_STATMOUNT 457
#define NR_LISTMOUNT 458
#define LSMT_ROOT 0xffffffffffffffffULL
#define STATMOUNT_MNT_BASIC 0x2ULL
struct mount_id_request { uint32_t size, spare; uint64_t mount_id, param; };

#define PROGRAM "sources-floor"
#include "../common/stamp.h"
#include "../common/mechanisms.h"

/* One line, one write(2): the pipe keeps lines whole (PIPE_BUF). */
static void emit(char kind, unsigned long long id, uint64_t ns) {
    char line[64];
    int n = snprintf(line, sizeof line, "%c %llu %llu\n", kind, id, (unsigned long long)ns);
    if (write(1, line, (size_t)n) != n) exit(0); /* the benchmark went away */
}

static void ready(void) {
    if (write(1, "ready\n", 6) != 6) exit(0);
}

/* One reading of the table as MountsMechanism.scan does it: mountinfo whole, then
 * every mount's unique id (listmount) and basic statmount. */
static void scan_table(void) {
    static char text[65536], stat[4096] __attribute__((aligned(8)));
    static uint64_t ids[512];
    int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open /proc/self/mountinfo");
    while (read(fd, text, sizeof text) > 0) {}
    close(fd);
    struct mount_id_request list = { .size = sizeof list, .mount_id = LSMT_ROOT, .param = 0 };
    long n = syscall(NR_LISTMOUNT, &list, ids, 512, 0);
    for (long i = 0; i < n; i++) {
        struct mount_id_request one = { .size = sizeof one, .mount_id = ids[i], .param = STATMOUNT_MNT_BASIC };
        (void)syscall(NR_STATMOUNT, &one, stat, sizeof stat, 0);
    }
}

static void mounts(int rescans) {
    int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_REPORT_MNT, O_RDONLY);
    if (fd < 0) die("fanotify_init(FAN_REPORT_MNT)");
    int ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (ns < 0) die("open /proc/self/ns/mnt");
    if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_MNTNS, FAN_MNT_ATTACH | FAN_MNT_DETACH, ns, NULL) != 0)
        die("fanotify_mark(FAN_MARK_MNTNS)");
    close(ns);
    ready();
    static char buffer[16384] __attribute__((aligned(8)));
    for (;;) {
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("read fanotify");
        }
        for (int i = 0; i < rescans; i++) scan_table();
        uint64_t t = now();
        for (ssize_t at = 0; at + (ssize_t)sizeof(struct fanotify_event_metadata) <= n;) {
            struct fanotify_event_metadata *m = (void *)(buffer + at);
            if (m->event_len < sizeof *m || at + (ssize_t)m->event_len > n) break;
            unsigned long long id = 0;
            /* The info record after the metadata: {u8 type, u8 pad, u16 len}, pad, u64 mnt_id. */
            for (uint32_t info = m->metadata_len; info + 16 <= m->event_len;) {
                unsigned char *record = (unsigned char *)m + info;
                uint16_t length;
                memcpy(&length, record + 2, 2);
                if (record[0] == INFO_TYPE_MNT) memcpy(&id, record + 8, 8);
                if (length == 0) break;
                info += length;
            }
            int attach = (m->mask & FAN_MNT_ATTACH) != 0, detach = (m->mask & FAN_MNT_DETACH) != 0;
            if (attach && !detach) emit('A', id, t);
            else if (detach && !attach) emit('D', id, t);
            at += m->event_len;
        }
    }
}

static void processes(long parent) {
    int fd = open_proc_connector();
    ready();
    static char buffer[4096] __attribute__((aligned(8)));
    for (;;) {
        ssize_t n = receive_from_kernel(fd, buffer, sizeof buffer);
        uint64_t t = now();
        if (n < 0) continue;
        /* One proc_event per message: nlmsghdr, cn_msg, proc_event. */
        const struct proc_event *event = proc_event_in(buffer, n);
        if (!event) continue;
        /* New threads of the parent are forks too: only processes (pid = tgid) count. */
        if (event->what == PROC_EVENT_FORK && event->event_data.fork.parent_tgid == parent &&
            event->event_data.fork.child_pid == event->event_data.fork.child_tgid)
            emit('F', (unsigned long long)event->event_data.fork.child_pid, t);
        else if (event->what == PROC_EVENT_EXIT && event->event_data.exit.parent_tgid == parent &&
                 event->event_data.exit.process_pid == event->event_data.exit.process_tgid)
            emit('X', (unsigned long long)event->event_data.exit.process_pid, t);
    }
}

static void devices(void) {
    int fd = open_uevents();
    ready();
    static char buffer[8192];
    for (;;) {
        ssize_t n = receive_from_kernel(fd, buffer, sizeof buffer);
        uint64_t t = now();
        if (n < 0) continue; /* user-space senders (udev) are not the kernel */
        /* "ACTION@DEVPATH\0KEY=VALUE\0...": the header says enough; SEQNUM follows. */
        if (strcmp(buffer, "change@/devices/virtual/mem/null") != 0) continue;
        unsigned long long seqnum = 0;
        for (const char *field = uevent_field(buffer, n, NULL); field; field = uevent_field(buffer, n, field))
            if (strncmp(field, "SEQNUM=", 7) == 0) seqnum = strtoull(field + 7, NULL, 10);
        emit('C', seqnum, t);
    }
}

/* A wqfs queue: each record of types 2, 64 and 65 (include/wqfs/records.h) that
 * the benchmark triggers, as the line the mechanism's own floor would print. */
static void queue(long parent, const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) die("open queue");
    static unsigned char buffer[65536];
    static const char null[] = "/devices/virtual/mem/null";
    ready();
    for (;;) {
        ssize_t n = read(fd, buffer, sizeof buffer);
        uint64_t t = now();
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("read queue");
        for (ssize_t at = 0; at + (ssize_t)sizeof(struct watch_notification) <= n;) {
            const unsigned char *record = buffer + at;
            const struct watch_notification *watch = (const void *)record;
            size_t length = watch->info & WATCH_INFO_LENGTH;
            if (length < sizeof *watch || at + (ssize_t)length > n) break;
            at += (ssize_t)length;
            const struct wqfs_mount_notification *mount = (const void *)record;
            const struct wqfs_process_notification_fork *fork = (const void *)record;
            const struct wqfs_process_notification_exit *exit = (const void *)record;
            const struct wqfs_device_notification *device = (const void *)record;
            if (watch->type == WQFS_WATCH_TYPE_MOUNT_NOTIFY && length >= sizeof *mount) {
                if (watch->subtype == WQFS_MOUNT_NEW_MOUNT) emit('A', mount->auxiliary_mount, t);
                if (watch->subtype == WQFS_MOUNT_UNMOUNT) emit('D', mount->auxiliary_mount, t);
            } else if (watch->type == WQFS_WATCH_TYPE_PROCESS) {
                /* Processes only (pid = tgid), and not this one: its own fork is
                 * queued before it reads. */
                if (watch->subtype == WQFS_PROCESS_FORK && length >= sizeof *fork && fork->pid == fork->tgid &&
                    fork->parent_tgid == (uint32_t)parent && fork->pid != (uint32_t)getpid())
                    emit('F', fork->pid, t);
                if (watch->subtype == WQFS_PROCESS_EXIT && length >= sizeof *exit && exit->pid == exit->tgid &&
                    exit->parent_tgid == (uint32_t)parent)
                    emit('X', exit->pid, t);
            } else if (watch->type == WQFS_WATCH_TYPE_DEVICE && watch->subtype == WQFS_DEVICE_CHANGE &&
                       length >= sizeof *device + sizeof null && strncmp(device->subsystem, "mem", sizeof device->subsystem) == 0 &&
                       memcmp(device->devpath, null, sizeof null) == 0) {
                emit('C', device->seqnum, t);
            }
        }
    }
}

static void forker(void) {
    ready();
    for (;;) {
        char command;
        ssize_t n = read(0, &command, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) exit(0);
        uint64_t t = now();
        pid_t child = fork();
        if (child == 0) _exit(0);
        if (child < 0) die("fork");
        emit('S', (unsigned long long)child, t);
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {}
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: floor mounts|mounts-rescan|processes|devices [PARENT_TGID] | queue PARENT_TGID PATH | forker\n");
        return 2;
    }
    if (strcmp(argv[1], "mounts") == 0) mounts(0);
    else if (strcmp(argv[1], "mounts-rescan") == 0) mounts(2);
    else if (strcmp(argv[1], "processes") == 0) processes(argc > 2 ? atol(argv[2]) : (long)getppid());
    else if (strcmp(argv[1], "devices") == 0) devices();
    else if (strcmp(argv[1], "queue") == 0 && argc > 3) queue(atol(argv[2]), argv[3]);
    else if (strcmp(argv[1], "forker") == 0) forker();
    fprintf(stderr, "sources-floor: unknown mechanism %s\n", argv[1]);
    return 2;
}
