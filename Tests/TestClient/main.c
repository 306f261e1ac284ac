/* wqtestclient: the small C client the integration tests drive a real wqfs mount
 * with. It is compiled against <linux/watch_queue.h>, so the bytes it checks are
 * the kernel ABI's, not wqfs's own idea of them.
 *
 * Every subcommand prints one result line per operation to stdout:
 *   hex of the bytes read (lowercase, no spaces), "eof" for a 0-byte read,
 *   "ok" for a successful ioctl/write, or "errno=NAME" on failure. The exit
 * status is 0 when the client ran (whatever the errno), 2 on bad usage. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
/* <linux/watch_queue.h> pulls in <linux/fcntl.h>, which clashes with glibc's. */
#define _LINUX_FCNTL_H
#include <linux/watch_queue.h>
#include <linux/netlink.h>
#include <sys/socket.h>
/* The system sources' layouts, as a C reader of a wqfs mount includes them. */
#include "wqfs/records.h"

static const char *errname(int e) {
    switch (e) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(EINTR) E(EIO) E(EBADF) E(EAGAIN) E(EACCES) E(EBUSY) E(EEXIST)
    E(EXDEV) E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENOTTY) E(ENOSPC) E(ESPIPE) E(EMSGSIZE)
    E(ENOBUFS) E(ENOTCONN) E(ENOSYS) E(EOPNOTSUPP) E(ENAMETOOLONG) E(ENOTEMPTY)
#undef E
    default: return "EUNKNOWN";
    }
}

static void print_errno(int e) { printf("errno=%s\n", errname(e)); fflush(stdout); }

static void print_hex(const uint8_t *p, ssize_t n) {
    if (n == 0) { printf("eof\n"); fflush(stdout); return; }
    for (ssize_t i = 0; i < n; i++) printf("%02x", p[i]);
    printf("\n");
    fflush(stdout);
}

static int open_or_report(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) { print_errno(errno); exit(0); }
    return fd;
}

static long number(const char *s) { return strtol(s, NULL, 0); }

static void on_alarm(int sig) { (void)sig; }

/* Signals blocked by whoever started us (a test thread blocks SIGTERM and friends)
 * would make `timeout` and `kill` useless on our children: clear the mask. */
static void unblock_all(void) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
}

static int usage(void) {
    fprintf(stderr,
        "usage: wqtestclient exec [-C DIR] PROGRAM [ARG...]  (signals unblocked)\n"
        "       wqtestclient read PATH BUFSIZE [nonblock] [COUNT]\n"
        "       wqtestclient readint PATH BUFSIZE SECONDS\n"
        "       wqtestclient poll PATH TIMEOUT_MS\n"
        "       wqtestclient pollhup PATH        (open, unlink, poll 0)\n"
        "       wqtestclient fionread PATH\n"
        "       wqtestclient setsize PATH N\n"
        "       wqtestclient ioctl PATH CMD\n"
        "       wqtestclient write PATH\n"
        "       wqtestclient put PATH [append]   (stdin in one write)\n"
        "       wqtestclient split PATH BYTES    (stdin in BYTES-sized writes, then close)\n"
        "       wqtestclient records PATH        (drain; one line per record, by records.h)\n"
        "       wqtestclient fake-uevent         (a uevent sent from user space)\n"
        "       wqtestclient expect-removal PATH WATCHID OBJID\n"
        "       wqtestclient post-seq POSTBIN TYPE FIRST COUNT BATCH\n"
        "       wqtestclient reader PATH BUFSIZE STOPFILE\n");
    return 2;
}

/* read PATH BUFSIZE [nonblock] [COUNT]: COUNT reads (default 1) on one open file. */
static int cmd_read(int argc, char **argv) {
    if (argc < 4) return usage();
    int nonblock = argc > 4 && strcmp(argv[4], "nonblock") == 0;
    long count = argc > 5 ? number(argv[5]) : 1;
    size_t size = (size_t)number(argv[3]);
    int fd = open_or_report(argv[2], O_RDONLY | (nonblock ? O_NONBLOCK : 0));
    uint8_t *buf = malloc(size ? size : 1);
    for (long i = 0; i < count; i++) {
        ssize_t n = read(fd, buf, size);
        if (n < 0) print_errno(errno); else print_hex(buf, n);
    }
    close(fd);
    return 0;
}

/* readint PATH BUFSIZE SECONDS: a read that SIGALRM interrupts (no SA_RESTART). */
static int cmd_readint(int argc, char **argv) {
    if (argc < 5) return usage();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the read must fail with EINTR */
    sigaction(SIGALRM, &sa, NULL);
    size_t size = (size_t)number(argv[3]);
    int fd = open_or_report(argv[2], O_RDONLY);
    uint8_t *buf = malloc(size ? size : 1);
    alarm((unsigned)number(argv[4]));
    ssize_t n = read(fd, buf, size);
    alarm(0);
    if (n < 0) print_errno(errno); else print_hex(buf, n);
    close(fd);
    return 0;
}

static void print_revents(short r) {
    if (r == 0) { printf("timeout\n"); fflush(stdout); return; }
    const char *sep = "";
    if (r & POLLIN) { printf("%sPOLLIN", sep); sep = " "; }
    if (r & POLLOUT) { printf("%sPOLLOUT", sep); sep = " "; }
    if (r & POLLERR) { printf("%sPOLLERR", sep); sep = " "; }
    if (r & POLLHUP) { printf("%sPOLLHUP", sep); sep = " "; }
    if (r & POLLNVAL) { printf("%sPOLLNVAL", sep); sep = " "; }
    printf("\n");
    fflush(stdout);
}

static int cmd_poll(int argc, char **argv) {
    if (argc < 4) return usage();
    int fd = open_or_report(argv[2], O_RDONLY | O_NONBLOCK);
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r = poll(&p, 1, (int)number(argv[3]));
    if (r < 0) print_errno(errno); else print_revents(r == 0 ? 0 : p.revents);
    close(fd);
    return 0;
}

static int cmd_pollhup(int argc, char **argv) {
    if (argc < 3) return usage();
    int fd = open_or_report(argv[2], O_RDONLY | O_NONBLOCK);
    if (unlink(argv[2]) < 0) { print_errno(errno); return 0; }
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r = poll(&p, 1, 2000);
    if (r < 0) print_errno(errno); else print_revents(r == 0 ? 0 : p.revents);
    uint8_t buf[128];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) print_errno(errno); else print_hex(buf, n);
    close(fd);
    return 0;
}

/* fionread PATH: FIONREAD is answered by the kernel from the cached i_size of a
 * regular FUSE file, so refresh the attributes with fstat first. */
static int cmd_fionread(int argc, char **argv) {
    if (argc < 3) return usage();
    int fd = open_or_report(argv[2], O_RDONLY | O_NONBLOCK);
    struct stat st;
    if (fstat(fd, &st) < 0) { print_errno(errno); return 0; }
    int n = -1;
    if (ioctl(fd, FIONREAD, &n) < 0) { print_errno(errno); return 0; }
    printf("fionread=%d size=%lld\n", n, (long long)st.st_size);
    close(fd);
    return 0;
}

static int cmd_setsize(int argc, char **argv) {
    if (argc < 4) return usage();
    int fd = open_or_report(argv[2], O_RDONLY | O_NONBLOCK);
    if (ioctl(fd, IOC_WATCH_QUEUE_SET_SIZE, (unsigned long)number(argv[3])) < 0) print_errno(errno);
    else { printf("ok\n"); fflush(stdout); }
    close(fd);
    return 0;
}

static int cmd_ioctl(int argc, char **argv) {
    if (argc < 4) return usage();
    int fd = open_or_report(argv[2], O_RDONLY | O_NONBLOCK);
    if (ioctl(fd, (unsigned long)strtoul(argv[3], NULL, 0), 0UL) < 0) print_errno(errno);
    else { printf("ok\n"); fflush(stdout); }
    close(fd);
    return 0;
}

static int cmd_write(int argc, char **argv) {
    if (argc < 3) return usage();
    int fd = open_or_report(argv[2], O_RDWR | O_NONBLOCK);
    uint8_t rec[16] = {0};
    ssize_t n = write(fd, rec, sizeof rec);
    if (n < 0) print_errno(errno); else { printf("wrote=%zd\n", n); fflush(stdout); }
    close(fd);
    return 0;
}

/* put PATH [append]: standard input, written with one write(2) (O_TRUNC unless
 * append). Prints "ok" or the errno. */
static int cmd_put(int argc, char **argv) {
    if (argc < 3) return usage();
    int append = argc > 3 && strcmp(argv[3], "append") == 0;
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    ssize_t n;
    while ((n = read(0, text + len, cap - len)) > 0) {
        len += (size_t)n;
        if (len == cap) text = realloc(text, cap *= 2);
    }
    int fd = open_or_report(argv[2], O_WRONLY | (append ? O_APPEND : O_TRUNC));
    n = write(fd, text, len);
    if (n < 0) print_errno(errno);
    else if ((size_t)n != len) { printf("short=%zd\n", n); fflush(stdout); }
    else { printf("ok\n"); fflush(stdout); }
    close(fd);
    return 0;
}

/* split PATH BYTES: standard input written through one open file (O_WRONLY|O_TRUNC)
 * in writes of BYTES each, then closed. Prints "writes=N" (how many succeeded), the
 * errno of the first failed write and of the one after it, and "close=ok" or the
 * errno close(2) returned: what a tool writing in blocks sees. */
static int cmd_split(int argc, char **argv) {
    if (argc < 4) return usage();
    size_t chunk = (size_t)number(argv[3]);
    if (chunk == 0) return usage();
    char *buf = malloc(chunk);
    int fd = open_or_report(argv[2], O_WRONLY | O_TRUNC);
    long writes = 0;
    int failures = 0;
    ssize_t n;
    size_t len;
    for (;;) {
        len = 0;
        while (len < chunk && (n = read(0, buf + len, chunk - len)) > 0) len += (size_t)n;
        if (len == 0) break;
        if (write(fd, buf, len) == (ssize_t)len) {
            if (failures == 0) writes++;
        } else {
            if (failures == 0) printf("writes=%ld\n", writes);
            printf("write: ");
            print_errno(errno);
            if (++failures == 2) break;
        }
    }
    if (failures == 0) printf("writes=%ld\n", writes);
    if (close(fd) == 0) printf("close=ok\n"); else { printf("close: "); print_errno(errno); }
    fflush(stdout);
    free(buf);
    return 0;
}

/* records PATH: reads everything queued (O_NONBLOCK until EAGAIN) and prints one
 * line per record, read through <linux/watch_queue.h> and "wqfs/records.h":
 *   loss | removal ID | mount SUBTYPE FLAGS TRIGGERED_ON AUX
 *   process SUBTYPE FLAGS PID TGID [fields of the subtype]
 *   device SUBTYPE FLAGS SEQNUM MAJOR MINOR SUBSYSTEM DEVPATH | other TYPE SUBTYPE LEN
 * A record whose length is not its layout's prints "badlength TYPE SUBTYPE LEN". */
static int cmd_records(int argc, char **argv) {
    if (argc < 3) return usage();
    int fd = open_or_report(argv[2], O_RDONLY | O_NONBLOCK);
    static unsigned char buf[1 << 16];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t at = 0; at + (ssize_t)sizeof(struct watch_notification) <= n;) {
            const struct watch_notification *w = (const void *)(buf + at);
            unsigned len = w->info & WATCH_INFO_LENGTH, type = w->type, sub = w->subtype;
            unsigned flags = w->info & WATCH_INFO_TYPE_INFO;
            if (len < sizeof *w || at + len > (size_t)n) { printf("truncated\n"); break; }
            const void *r = buf + at;
            at += len;
            if (type == WATCH_TYPE_META && sub == WATCH_META_LOSS_NOTIFICATION) { printf("loss\n"); continue; }
            if (type == WATCH_TYPE_META && sub == WATCH_META_REMOVAL_NOTIFICATION) {
                const struct watch_notification_removal *m = r;
                printf("removal %llu\n", len >= sizeof *m ? (unsigned long long)m->id : 0ULL);
                continue;
            }
            if (type == WQFS_WATCH_TYPE_MOUNT_NOTIFY) {
                const struct wqfs_mount_notification *m = r;
                if (len != sizeof *m) { printf("badlength %u %u %u\n", type, sub, len); continue; }
                printf("mount %u 0x%x %llu %llu\n", sub, flags, (unsigned long long)m->triggered_on,
                       (unsigned long long)m->auxiliary_mount);
                continue;
            }
            if (type == WQFS_WATCH_TYPE_PROCESS) {
                static const unsigned lengths[] = { 32, 24, 32, 32, 24, 32, 40, 32, 40 };
                const struct wqfs_process_notification *p = r;
                if (sub > WQFS_PROCESS_EXIT || len != lengths[sub]) { printf("badlength %u %u %u\n", type, sub, len); continue; }
                printf("process %u 0x%x %u %u", sub, flags, p->pid, p->tgid);
                switch (sub) {
                case WQFS_PROCESS_FORK: { const struct wqfs_process_notification_fork *f = r; printf(" %u %u", f->parent_pid, f->parent_tgid); break; }
                case WQFS_PROCESS_UID: case WQFS_PROCESS_GID: { const struct wqfs_process_notification_id *i = r; printf(" %u %u", i->real, i->effective); break; }
                case WQFS_PROCESS_PTRACE: { const struct wqfs_process_notification_ptrace *t = r; printf(" %u %u", t->tracer_pid, t->tracer_tgid); break; }
                case WQFS_PROCESS_COMM: { const struct wqfs_process_notification_comm *c = r; printf(" %.16s", c->comm); break; }
                case WQFS_PROCESS_COREDUMP: { const struct wqfs_process_notification_coredump *c = r; printf(" %u %u", c->parent_pid, c->parent_tgid); break; }
                case WQFS_PROCESS_EXIT: { const struct wqfs_process_notification_exit *e = r; printf(" %u %u %u %u", e->exit_code, e->exit_signal, e->parent_pid, e->parent_tgid); break; }
                }
                printf("\n");
                continue;
            }
            if (type == WQFS_WATCH_TYPE_DEVICE) {
                const struct wqfs_device_notification *d = r;
                if (len < sizeof *d || len > WQFS_DEVICE_MAX_LEN || len % 8) { printf("badlength %u %u %u\n", type, sub, len); continue; }
                printf("device %u 0x%x %llu %u %u %.16s %.*s\n", sub, flags, (unsigned long long)d->seqnum, d->major, d->minor,
                       d->subsystem, (int)strnlen(d->devpath, len - sizeof *d), d->devpath);
                continue;
            }
            printf("other %u %u %u\n", type, sub, len);
        }
    }
    if (n < 0 && errno != EAGAIN) print_errno(errno);
    fflush(stdout);
    close(fd);
    return 0;
}

/* fake-uevent: sends a well-formed uevent to the kernel's uevent multicast group
 * from user space, as any root process can: a source that trusts only the kernel
 * must ignore it. Prints "sent" or the errno. */
static int cmd_fake_uevent(void) {
    int fd = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT);
    if (fd < 0) { print_errno(errno); return 0; }
    static const char message[] = "add@/devices/wqfs-fake\0ACTION=add\0DEVPATH=/devices/wqfs-fake\0"
                                  "SUBSYSTEM=wqfsfake\0SEQNUM=4242\0";
    struct sockaddr_nl group = { .nl_family = AF_NETLINK, .nl_groups = 1 };
    if (sendto(fd, message, sizeof message, 0, (struct sockaddr *)&group, sizeof group) < 0) print_errno(errno);
    else { printf("sent\n"); fflush(stdout); }
    close(fd);
    return 0;
}

/* expect-removal PATH WATCHID OBJID: one nonblocking read must give exactly the
 * removal record the kernel's struct describes. */
static int cmd_expect_removal(int argc, char **argv) {
    if (argc < 5) return usage();
    struct watch_notification_removal want;
    memset(&want, 0, sizeof want);
    want.watch.type = WATCH_TYPE_META;
    want.watch.subtype = WATCH_META_REMOVAL_NOTIFICATION;
    want.watch.info = (uint32_t)(sizeof want) | ((uint32_t)number(argv[3]) << WATCH_INFO_ID__SHIFT);
    want.id = (uint64_t)strtoull(argv[4], NULL, 0);
    int fd = open_or_report(argv[2], O_RDONLY | O_NONBLOCK);
    uint8_t buf[128];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) { print_errno(errno); return 0; }
    if (n == (ssize_t)sizeof want && memcmp(buf, &want, sizeof want) == 0) {
        printf("match\n");
    } else {
        printf("mismatch got=");
        for (ssize_t i = 0; i < n; i++) printf("%02x", buf[i]);
        printf(" want=");
        for (size_t i = 0; i < sizeof want; i++) printf("%02x", ((uint8_t *)&want)[i]);
        printf("\n");
    }
    close(fd);
    return 0;
}

/* post-seq POSTBIN TYPE FIRST COUNT BATCH: posts COUNT records of TYPE whose u64
 * payload is FIRST, FIRST+1, …; subtype is the sequence's low bit; BATCH records
 * per write(2). Prints "posted=N". */
static int cmd_post_seq(int argc, char **argv) {
    if (argc < 7) return usage();
    uint32_t type = (uint32_t)number(argv[3]);
    uint64_t first = strtoull(argv[4], NULL, 0);
    long count = number(argv[5]), batch = number(argv[6]);
    if (batch < 1) batch = 1;
    int fd = open_or_report(argv[2], O_WRONLY);
    struct rec { struct watch_notification n; uint64_t seq; } *buf = calloc((size_t)batch, sizeof *buf);
    long posted = 0;
    while (posted < count) {
        long k = count - posted < batch ? count - posted : batch;
        for (long i = 0; i < k; i++) {
            uint64_t seq = first + (uint64_t)(posted + i);
            buf[i].n.type = type;
            buf[i].n.subtype = (uint32_t)(seq & 1);
            buf[i].n.info = sizeof buf[i];
            buf[i].seq = seq;
        }
        ssize_t n = write(fd, buf, (size_t)k * sizeof *buf);
        if (n < 0) { print_errno(errno); return 1; }
        posted += k;
    }
    printf("posted=%ld\n", posted);
    close(fd);
    return 0;
}

/* reader PATH BUFSIZE STOPFILE: reads until STOPFILE exists and the queue is
 * empty, printing one line per record: "rec WATCHID SEQ", "loss", "removal
 * WATCHID ID" or "other HEX". A malformed stream prints "bad" and exits 1. */
static int cmd_reader(int argc, char **argv) {
    if (argc < 5) return usage();
    size_t size = (size_t)number(argv[3]);
    int fd = open_or_report(argv[2], O_RDONLY | O_NONBLOCK);
    uint8_t *buf = malloc(size);
    int stopping = 0;
    for (;;) {
        ssize_t n = read(fd, buf, size);
        if (n < 0 && errno == EAGAIN) {
            if (stopping) break;
            if (access(argv[4], F_OK) == 0) { stopping = 1; continue; }
            struct pollfd p = { .fd = fd, .events = POLLIN };
            poll(&p, 1, 50);
            continue;
        }
        if (n < 0) { print_errno(errno); return 1; }
        if (n == 0) { printf("eof\n"); break; }
        ssize_t off = 0;
        while (off < n) {
            if (n - off < (ssize_t)sizeof(struct watch_notification)) { printf("bad short\n"); return 1; }
            struct watch_notification h;
            memcpy(&h, buf + off, sizeof h);
            size_t len = h.info & WATCH_INFO_LENGTH;
            unsigned id = (h.info & WATCH_INFO_ID) >> WATCH_INFO_ID__SHIFT;
            if (len < sizeof h || off + (ssize_t)len > n) { printf("bad length %zu\n", len); return 1; }
            if (h.type == WATCH_TYPE_META && h.subtype == WATCH_META_LOSS_NOTIFICATION && len == 8) {
                printf("loss\n");
            } else if (h.type == WATCH_TYPE_META && h.subtype == WATCH_META_REMOVAL_NOTIFICATION && len == 16) {
                uint64_t obj; memcpy(&obj, buf + off + 8, 8);
                printf("removal %u %llu\n", id, (unsigned long long)obj);
            } else if (len == 16) {
                uint64_t seq; memcpy(&seq, buf + off + 8, 8);
                printf("rec %u %llu\n", id, (unsigned long long)seq);
            } else {
                printf("other ");
                for (size_t i = 0; i < len; i++) printf("%02x", buf[off + i]);
                printf("\n");
            }
            off += (ssize_t)len;
        }
    }
    fflush(stdout);
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "exec") == 0) {
        int first = 2;
        if (argc > 3 && strcmp(argv[2], "-C") == 0) {
            if (chdir(argv[3]) < 0) { perror(argv[3]); return 127; }
            first = 4;
        }
        if (argc <= first) return usage();
        unblock_all();
        execvp(argv[first], argv + first);
        perror("exec");
        return 127;
    }
    unblock_all();
    if (strcmp(cmd, "read") == 0) return cmd_read(argc, argv);
    if (strcmp(cmd, "readint") == 0) return cmd_readint(argc, argv);
    if (strcmp(cmd, "poll") == 0) return cmd_poll(argc, argv);
    if (strcmp(cmd, "pollhup") == 0) return cmd_pollhup(argc, argv);
    if (strcmp(cmd, "fionread") == 0) return cmd_fionread(argc, argv);
    if (strcmp(cmd, "setsize") == 0) return cmd_setsize(argc, argv);
    if (strcmp(cmd, "ioctl") == 0) return cmd_ioctl(argc, argv);
    if (strcmp(cmd, "write") == 0) return cmd_write(argc, argv);
    if (strcmp(cmd, "put") == 0) return cmd_put(argc, argv);
    if (strcmp(cmd, "split") == 0) return cmd_split(argc, argv);
    if (strcmp(cmd, "records") == 0) return cmd_records(argc, argv);
    if (strcmp(cmd, "fake-uevent") == 0) return cmd_fake_uevent();
    if (strcmp(cmd, "expect-removal") == 0) return cmd_expect_removal(argc, argv);
    if (strcmp(cmd, "post-seq") == 0) return cmd_post_seq(argc, argv);
    if (strcmp(cmd, "reader") == 0) return cmd_reader(argc, argv);
    return usage();
}
