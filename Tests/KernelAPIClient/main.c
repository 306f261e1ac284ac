/* wqfs-kernel-api-client: a program written for the kernel's watch queues and key
 * notifications, as LTP's watch-queue tests and the kernel's sample use them
 * (COMPAT.md "The kernel sample and LTP"). It is compiled against
 * <linux/watch_queue.h> and <linux/keyctl.h> and makes only kernel calls: pipe2
 * with O_NOTIFICATION_PIPE, the watch-queue ioctls, FIONREAD, read, and the key
 * system calls through syscall(2). So it works only where watch queues exist: on
 * this kernel, under LD_PRELOAD=libwqfs-compat.so with WQFS_MOUNT set. The one
 * exception is `rawwatch`, the hostile caller that skips the shim.
 *
 * The mount tests run it under `keyctl session -`, so @s is a fresh session
 * keyring. Every blocking read is bounded by alarm(): a hang prints "timeout"
 * instead of blocking the test.
 *
 * Usage: wqfs-kernel-api-client COMMAND [ARG]
 *   op OPERATION  update|unlink|revoke|link|invalidate|clear|setperm: queue of 256,
 *                 filter {type 0, all} and {type 1, all}, a user key added to @s,
 *                 the key watched with ID 1 and @s with ID 2, the operation, one
 *                 blocking 433-byte read. Prints "key=K session=S", "read HEX",
 *                 then for an operation that destroys the key the next blocking
 *                 read (its removal record), else "fionread=N" 300 ms later.
 *   loss          queue of 1 (capacity 32), the key watched, 64 updates, then
 *                 433-byte reads until the loss record, one "read HEX" each.
 *   remove        a watched key's watch removed (ID -1): "key=K", "read HEX".
 *   errors        the error paths, one "LABEL errno=NAME" (or "LABEL ok") each.
 *   watch SERIAL  a queue of 256 watching SERIAL with ID 1: "ok" or the errno.
 *   rawwatch SERIAL  the same, but sent as WQFS_IOC_WATCH_KEY straight to the
 *                 server, as a program that bypasses the shim's checks would.
 *   quiet FILE    @s watched with ID 2; prints "ready", waits for FILE to exist,
 *                 adds a key to @s itself, then prints "key=K session=S", one
 *                 "read HEX" and "fionread=N" 300 ms later. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
/* <linux/watch_queue.h> pulls in <linux/fcntl.h>, which redefines glibc's struct
 * flock: glibc's <fcntl.h> already gave O_EXCL, which is O_NOTIFICATION_PIPE. */
#define _LINUX_FCNTL_H
#include <linux/keyctl.h>
#include <linux/watch_queue.h>
#include "wqfs/compat.h"

/* A hang in any read is a failure, not a stuck test. */
#define READ_TIMEOUT_SECONDS 10
/* The buffer LTP and the kernel sample read with. */
#define READ_SIZE 433

static const char *errname(int e) {
    switch (e) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(EINTR) E(EIO) E(EBADF) E(EAGAIN) E(EACCES) E(EBUSY) E(EEXIST)
    E(EXDEV) E(EINVAL) E(ENOTTY) E(ENOSPC) E(ENOBUFS) E(ENOPKG) E(ENOSYS) E(EOPNOTSUPP)
    E(ENOKEY) E(EKEYREVOKED) E(EKEYEXPIRED) E(EBADSLT) E(ENOTDIR)
#undef E
    default: return "EUNKNOWN";
    }
}

/* A failure the test did not ask about: say which call, exit non-zero. */
static void die(const char *what) {
    printf("fatal %s errno=%s\n", what, errname(errno));
    fflush(stdout);
    exit(1);
}

static long keyctl4(int command, unsigned long a, unsigned long b, unsigned long c) {
    return syscall(__NR_keyctl, command, a, b, c, 0UL);
}

static int32_t add_key(const char *description, const char *payload, int32_t keyring) {
    long serial = syscall(__NR_add_key, "user", description, payload, strlen(payload), keyring);
    if (serial < 0) die("add_key");
    return (int32_t)serial;
}

static int32_t resolve(int32_t special) {
    long serial = keyctl4(KEYCTL_GET_KEYRING_ID, (unsigned long)special, 0, 0);
    if (serial < 0) die("KEYCTL_GET_KEYRING_ID");
    return (int32_t)serial;
}

static long watch_key(int32_t key, int fd, int watch_id) {
    return keyctl4(KEYCTL_WATCH_KEY, (unsigned long)key, (unsigned long)fd, (unsigned long)watch_id);
}

/* Room for a struct watch_notification_filter with N entries (its flexible array). */
#define FILTER_STORAGE(n) union { \
        struct watch_notification_filter f; \
        char bytes[sizeof(struct watch_notification_filter) + (n) * sizeof(struct watch_notification_type_filter)]; \
    }

/* The queue as LTP makes it: blocking, sized, filtered to the META records (type 0)
 * and every key record (type 1). */
static int make_queue(unsigned size) {
    int fds[2];
    if (pipe2(fds, O_NOTIFICATION_PIPE) < 0) die("pipe2");
    if (ioctl(fds[0], IOC_WATCH_QUEUE_SET_SIZE, size) < 0) die("IOC_WATCH_QUEUE_SET_SIZE");
    FILTER_STORAGE(2) filter;
    memset(&filter, 0, sizeof filter);
    filter.f.nr_filters = 2;
    filter.f.filters[0].type = WATCH_TYPE_META;
    filter.f.filters[0].subtype_filter[0] = UINT32_MAX;
    filter.f.filters[1].type = WATCH_TYPE_KEY_NOTIFY;
    filter.f.filters[1].subtype_filter[0] = UINT32_MAX;
    if (ioctl(fds[0], IOC_WATCH_QUEUE_SET_FILTER, &filter.f) < 0) die("IOC_WATCH_QUEUE_SET_FILTER");
    return fds[0];
}

static void on_alarm(int signal) { (void)signal; }

/* One read(2) of READ_SIZE bytes, bounded by the alarm; prints "read HEX", "eof",
 * "timeout" or the errno, and returns the byte count. */
static ssize_t read_once(int fd) {
    uint8_t buffer[READ_SIZE];
    alarm(READ_TIMEOUT_SECONDS);
    ssize_t n = read(fd, buffer, sizeof buffer);
    int failure = errno;
    alarm(0);
    if (n < 0 && failure == EINTR) printf("timeout\n");
    else if (n < 0) printf("read errno=%s\n", errname(failure));
    else if (n == 0) printf("eof\n");
    else {
        printf("read ");
        for (ssize_t i = 0; i < n; i++) printf("%02x", buffer[i]);
        printf("\n");
    }
    fflush(stdout);
    return n;
}

/* Bytes queued after a pause: a record that was not due shows here. */
static void fionread_later(int fd) {
    usleep(300 * 1000);
    int n = -1;
    if (ioctl(fd, FIONREAD, &n) < 0) die("FIONREAD");
    printf("fionread=%d\n", n);
    fflush(stdout);
}

static int command_op(const char *operation) {
    int fd = make_queue(256);
    int32_t session = resolve(KEY_SPEC_SESSION_KEYRING);
    int32_t key = add_key("wqfs-ltp", "payload", session);
    if (watch_key(key, fd, 1) < 0) die("KEYCTL_WATCH_KEY key");
    if (watch_key(session, fd, 2) < 0) die("KEYCTL_WATCH_KEY @s");
    printf("key=%d session=%d\n", key, session);
    fflush(stdout);
    long rc;
    int destroys = 0;
    if (strcmp(operation, "update") == 0) {
        rc = keyctl4(KEYCTL_UPDATE, (unsigned long)key, (unsigned long)"changed", 7);
    } else if (strcmp(operation, "unlink") == 0) {
        rc = keyctl4(KEYCTL_UNLINK, (unsigned long)key, (unsigned long)session, 0);
        destroys = 1;
    } else if (strcmp(operation, "revoke") == 0) {
        rc = keyctl4(KEYCTL_REVOKE, (unsigned long)key, 0, 0);
    } else if (strcmp(operation, "link") == 0) {
        rc = keyctl4(KEYCTL_LINK, (unsigned long)key, (unsigned long)session, 0);
    } else if (strcmp(operation, "invalidate") == 0) {
        rc = keyctl4(KEYCTL_INVALIDATE, (unsigned long)key, 0, 0);
        destroys = 1;
    } else if (strcmp(operation, "clear") == 0) {
        rc = keyctl4(KEYCTL_CLEAR, (unsigned long)session, 0, 0);
        destroys = 1;
    } else if (strcmp(operation, "setperm") == 0) {
        /* Possessor and user keep everything: the key stays viewable. */
        rc = keyctl4(KEYCTL_SETPERM, (unsigned long)key, 0x3f3f0000UL, 0);
    } else {
        fprintf(stderr, "unknown operation %s\n", operation);
        return 2;
    }
    if (rc < 0) die(operation);
    read_once(fd);
    /* The destroyed key's removal record comes later, as the kernel's garbage
     * collector sends it: it must come, and come alone. */
    if (destroys) read_once(fd);
    fionread_later(fd);
    return 0;
}

/* LTP wqueue09: a queue of 1 holds 32 records; 64 updates overflow it. */
static int command_loss(void) {
    int fd = make_queue(1);
    int32_t key = add_key("wqfs-ltp-loss", "payload", KEY_SPEC_SESSION_KEYRING);
    if (watch_key(key, fd, 1) < 0) die("KEYCTL_WATCH_KEY");
    for (int i = 0; i < 64; i++) {
        if (keyctl4(KEYCTL_UPDATE, (unsigned long)key, (unsigned long)"changed", 7) < 0) die("KEYCTL_UPDATE");
    }
    /* Until the loss record, or a read that is no record at all. */
    for (int reads = 0; reads < 8; reads++) {
        uint8_t buffer[READ_SIZE];
        alarm(READ_TIMEOUT_SECONDS);
        ssize_t n = read(fd, buffer, sizeof buffer);
        int failure = errno;
        alarm(0);
        if (n <= 0) {
            printf(n == 0 ? "eof\n" : failure == EINTR ? "timeout\n" : "read errno=%s\n", errname(failure));
            return 1;
        }
        printf("read ");
        for (ssize_t i = 0; i < n; i++) printf("%02x", buffer[i]);
        printf("\n");
        fflush(stdout);
        struct watch_notification first;
        memcpy(&first, buffer, sizeof first);
        if (first.type == WATCH_TYPE_META && first.subtype == WATCH_META_LOSS_NOTIFICATION) return 0;
    }
    return 1;
}

/* LTP wqueue08: removing a watch posts the removal record. */
static int command_remove(void) {
    int fd = make_queue(256);
    int32_t key = add_key("wqfs-ltp-remove", "payload", KEY_SPEC_SESSION_KEYRING);
    if (watch_key(key, fd, 1) < 0) die("KEYCTL_WATCH_KEY");
    printf("key=%d\n", key);
    fflush(stdout);
    if (watch_key(key, fd, -1) < 0) die("KEYCTL_WATCH_KEY -1");
    read_once(fd);
    return 0;
}

static void check(const char *label, long rc) {
    if (rc < 0) printf("%s errno=%s\n", label, errname(errno));
    else printf("%s ok\n", label);
    fflush(stdout);
}

static int command_errors(void) {
    /* The ioctls first, on a fresh queue: sizing once, in range. */
    int fds[2];
    if (pipe2(fds, O_NOTIFICATION_PIPE) < 0) die("pipe2");
    int fd = fds[0];
    check("setsize-0", ioctl(fd, IOC_WATCH_QUEUE_SET_SIZE, 0));
    check("setsize-513", ioctl(fd, IOC_WATCH_QUEUE_SET_SIZE, 513));
    check("setsize-256", ioctl(fd, IOC_WATCH_QUEUE_SET_SIZE, 256));
    check("setsize-again", ioctl(fd, IOC_WATCH_QUEUE_SET_SIZE, 128));
    /* Every entry filled alike, so a count the kernel reads past is still sane. */
    FILTER_STORAGE(17) filter;
#define FILTER(label, nr, reserved, entry_type, entry_filter, entry_mask) do { \
        memset(&filter, 0, sizeof filter);                                  \
        filter.f.nr_filters = (nr);                                         \
        filter.f.__reserved = (reserved);                                   \
        for (int e = 0; e < 17; e++) {                                      \
            filter.f.filters[e].type = (entry_type);                        \
            filter.f.filters[e].info_filter = (entry_filter);               \
            filter.f.filters[e].info_mask = (entry_mask);                   \
            filter.f.filters[e].subtype_filter[0] = UINT32_MAX;             \
        }                                                                   \
        check(label, ioctl(fd, IOC_WATCH_QUEUE_SET_FILTER, &filter.f));     \
    } while (0)
    FILTER("filter-nr-0", 0, 0, WATCH_TYPE_KEY_NOTIFY, 0, 0);
    FILTER("filter-nr-17", 17, 0, WATCH_TYPE_KEY_NOTIFY, 0, 0);
    FILTER("filter-reserved", 1, 1, WATCH_TYPE_KEY_NOTIFY, 0, 0);
    FILTER("filter-outside-mask", 1, 0, WATCH_TYPE_KEY_NOTIFY, 0x10000, 0x20000);
    FILTER("filter-mask-length", 1, 0, WATCH_TYPE_KEY_NOTIFY, 0, 0x7f);
    FILTER("filter-type-2", 1, 0, 2, 0, 0);
    FILTER("filter-16", 16, 0, WATCH_TYPE_KEY_NOTIFY, 0, 0);
#undef FILTER
    check("filter-null", ioctl(fd, IOC_WATCH_QUEUE_SET_FILTER, NULL));

    /* Then KEYCTL_WATCH_KEY, each check failing where the kernel's would. */
    int32_t key = add_key("wqfs-ltp-errors", "payload", KEY_SPEC_SESSION_KEYRING);
    int32_t revoked = add_key("wqfs-ltp-revoked", "payload", KEY_SPEC_SESSION_KEYRING);
    if (keyctl4(KEYCTL_REVOKE, (unsigned long)revoked, 0, 0) < 0) die("KEYCTL_REVOKE");
    int null = open("/dev/null", O_RDONLY);
    if (null < 0) die("open /dev/null");
    check("id-256", watch_key(key, fd, 256));
    check("id-minus-2", watch_key(key, fd, -2));
    check("key-0", watch_key(0, fd, 1));
    /* Serials are random 31-bit numbers: this one is as good as missing. */
    check("key-missing", watch_key(0x7ffffff1, fd, 1));
    check("key-revoked", watch_key(revoked, fd, 1));
    check("fd-dev-null", watch_key(key, null, 1));
    check("fd-closed", watch_key(key, 1000, 1));
    /* The id is checked before the key, the key before the descriptor. */
    check("id-256-key-missing", watch_key(0x7ffffff1, fd, 256));
    check("key-missing-fd-dev-null", watch_key(0x7ffffff1, null, 1));
    check("remove-unwatched", watch_key(key, fd, -1));
    check("watch", watch_key(key, fd, 1));
    check("watch-same-id", watch_key(key, fd, 1));
    check("watch-other-id", watch_key(key, fd, 2));
    check("watch-session", watch_key(KEY_SPEC_SESSION_KEYRING, fd, 1));
    check("remove", watch_key(key, fd, -1));
    check("remove-again", watch_key(key, fd, -1));
    return 0;
}

static int command_watch(int32_t serial, int raw) {
    int fd = make_queue(256);
    if (raw) {
        struct wqfs_watch_key_request request = { .serial = serial, .watch_id = 1 };
        check("rawwatch", ioctl(fd, WQFS_IOC_WATCH_KEY, &request));
    } else {
        check("watch", watch_key(serial, fd, 1));
    }
    return 0;
}

static int command_quiet(const char *go) {
    int fd = make_queue(256);
    int32_t session = resolve(KEY_SPEC_SESSION_KEYRING);
    if (watch_key(session, fd, 2) < 0) die("KEYCTL_WATCH_KEY @s");
    printf("ready\n");
    fflush(stdout);
    struct stat st;
    for (int waited = 0; stat(go, &st) != 0; waited++) {
        if (waited > 1000) die("waiting for the go file");
        usleep(10 * 1000);
    }
    /* Our own change, after everything the other user did: the one record due. */
    int32_t key = add_key("wqfs-quiet", "payload", session);
    printf("key=%d session=%d\n", key, session);
    fflush(stdout);
    read_once(fd);
    fionread_later(fd);
    return 0;
}

int main(int argc, char **argv) {
    /* SIGALRM interrupts a blocked read (EINTR) instead of killing us. */
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_alarm;
    sigaction(SIGALRM, &action, NULL);
    if (argc >= 3 && strcmp(argv[1], "op") == 0) return command_op(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "loss") == 0) return command_loss();
    if (argc >= 2 && strcmp(argv[1], "remove") == 0) return command_remove();
    if (argc >= 2 && strcmp(argv[1], "errors") == 0) return command_errors();
    if (argc >= 3 && strcmp(argv[1], "watch") == 0) return command_watch((int32_t)strtol(argv[2], NULL, 0), 0);
    if (argc >= 3 && strcmp(argv[1], "rawwatch") == 0) return command_watch((int32_t)strtol(argv[2], NULL, 0), 1);
    if (argc >= 3 && strcmp(argv[1], "quiet") == 0) return command_quiet(argv[2]);
    fprintf(stderr, "usage: wqfs-kernel-api-client op OPERATION|loss|remove|errors|watch SERIAL|rawwatch SERIAL|quiet FILE\n");
    return 2;
}
