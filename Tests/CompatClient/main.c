/* wqfs-compat-client: a program written for the kernel's watch queues, which the
 * compat mount tests run under LD_PRELOAD=libwqfs-compat.so. It makes only kernel
 * calls on its queue (pipe2, read, write, poll, the watch-queue ioctls, FIONREAD);
 * the one wqfs call is `adopt`, which stands in for a key watch until key sources
 * exist: a named queue that a test source already watches, turned anonymous.
 *
 * Usage: wqfs-compat-client STEP [ARG]... [STEP [ARG]...]...
 * Each step prints one line: "ok", "errno=NAME", or what it measured.
 *   pipe2 FLAGS          pipe2(fds, FLAGS) (numeric): "ok" or the errno
 *   adopt PATH [nonblock]  open PATH read-only and write-only, WQFS_IOC_ANONYMOUS
 *   setsize N            IOC_WATCH_QUEUE_SET_SIZE on the read end
 *   filter NR RESERVED [TYPE FILTER MASK]...  IOC_WATCH_QUEUE_SET_FILTER, all
 *                        subtypes in each entry; "filter null" removes it
 *   fionread             "fionread=N"
 *   read N               one read(2) of N bytes: hex, "eof" or the errno
 *   block                clears O_NONBLOCK on the read end
 *   poll MS              poll(POLLIN) on the read end: revents names or "timeout"
 *   write                a 16-byte write(2) to the write end
 *   closew               closes the write end
 *   sh COMMAND           runs COMMAND with /bin/sh, prints "sh=STATUS"
 *   fork                 the rest runs in a child, after the parent closed both ends
 *                        (the parent waits and exits with the child's status)
 *   plain                pipe2(fds, O_CLOEXEC), a write and a read through it */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "wqfs/compat.h"

/* The kernel's command numbers, as <linux/watch_queue.h> defines them (kept here:
 * that header clashes with <fcntl.h>). */
#define SET_SIZE 0x5760UL
#define SET_FILTER 0x5761UL

static int reader = -1, writer = -1;

static const char *errname(int e) {
    switch (e) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(EINTR) E(EIO) E(EBADF) E(EAGAIN) E(EACCES) E(EBUSY) E(EEXIST)
    E(EXDEV) E(EINVAL) E(ENOTTY) E(ENOSPC) E(ENOBUFS) E(ENOPKG) E(ENOSYS) E(EOPNOTSUPP)
#undef E
    default: return "EUNKNOWN";
    }
}

static void say(const char *text) { printf("%s\n", text); fflush(stdout); }
static void result(int rc) { if (rc < 0) printf("errno=%s\n", errname(errno)); else printf("ok\n"); fflush(stdout); }

static void step_read(size_t size) {
    uint8_t *buffer = malloc(size ? size : 1);
    ssize_t n = read(reader, buffer, size);
    if (n < 0) printf("errno=%s\n", errname(errno));
    else if (n == 0) printf("eof\n");
    else { for (ssize_t i = 0; i < n; i++) printf("%02x", buffer[i]); printf("\n"); }
    fflush(stdout);
    free(buffer);
}

static void step_poll(int ms) {
    struct pollfd p = { .fd = reader, .events = POLLIN };
    int r = poll(&p, 1, ms);
    if (r < 0) { printf("errno=%s\n", errname(errno)); fflush(stdout); return; }
    if (r == 0) { say("timeout"); return; }
    const char *sep = "";
    if (p.revents & POLLIN) { printf("%sPOLLIN", sep); sep = " "; }
    if (p.revents & POLLHUP) { printf("%sPOLLHUP", sep); sep = " "; }
    if (p.revents & POLLERR) { printf("%sPOLLERR", sep); sep = " "; }
    printf("\n");
    fflush(stdout);
}

/* The kernel's struct watch_notification_filter with up to 4 entries. */
struct filter4 {
    uint32_t nr_filters, reserved;
    struct { uint32_t type, info_filter, info_mask, subtype_filter[8]; } filters[4];
};

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *step = argv[i];
        if (strcmp(step, "pipe2") == 0 && i + 1 < argc) {
            int fds[2];
            int rc = pipe2(fds, (int)strtol(argv[++i], NULL, 0));
            if (rc == 0) { reader = fds[0]; writer = fds[1]; }
            result(rc);
        } else if (strcmp(step, "adopt") == 0 && i + 1 < argc) {
            const char *path = argv[++i];
            int nonblock = i + 1 < argc && strcmp(argv[i + 1], "nonblock") == 0 ? (i++, O_NONBLOCK) : 0;
            reader = open(path, O_RDONLY | nonblock);
            writer = open(path, O_WRONLY | nonblock);
            result(reader < 0 || writer < 0 ? -1 : ioctl(reader, WQFS_IOC_ANONYMOUS));
        } else if (strcmp(step, "setsize") == 0 && i + 1 < argc) {
            result(ioctl(reader, SET_SIZE, strtoul(argv[++i], NULL, 0)));
        } else if (strcmp(step, "filter") == 0 && i + 1 < argc) {
            if (strcmp(argv[i + 1], "null") == 0) { i++; result(ioctl(reader, SET_FILTER, NULL)); continue; }
            if (i + 2 >= argc) return 2;
            struct filter4 f;
            memset(&f, 0, sizeof f);
            f.nr_filters = (uint32_t)strtoul(argv[++i], NULL, 0);
            f.reserved = (uint32_t)strtoul(argv[++i], NULL, 0);
            for (int e = 0; e < 4 && i + 3 < argc && strchr("0123456789", argv[i + 1][0]); e++) {
                f.filters[e].type = (uint32_t)strtoul(argv[++i], NULL, 0);
                f.filters[e].info_filter = (uint32_t)strtoul(argv[++i], NULL, 0);
                f.filters[e].info_mask = (uint32_t)strtoul(argv[++i], NULL, 0);
                memset(f.filters[e].subtype_filter, 0xff, sizeof f.filters[e].subtype_filter);
            }
            /* More entries claimed than built stay within the struct only up to 4:
             * the error cases claim 0 or 17 and are refused before any is read. */
            result(ioctl(reader, SET_FILTER, &f));
        } else if (strcmp(step, "fionread") == 0) {
            int n = -1;
            if (ioctl(reader, FIONREAD, &n) < 0) printf("errno=%s\n", errname(errno)); else printf("fionread=%d\n", n);
            fflush(stdout);
        } else if (strcmp(step, "read") == 0 && i + 1 < argc) {
            step_read((size_t)strtoul(argv[++i], NULL, 0));
        } else if (strcmp(step, "block") == 0) {
            result(fcntl(reader, F_SETFL, fcntl(reader, F_GETFL) & ~O_NONBLOCK));
        } else if (strcmp(step, "poll") == 0 && i + 1 < argc) {
            step_poll(atoi(argv[++i]));
        } else if (strcmp(step, "write") == 0) {
            uint8_t record[16] = { 0, 1, 0, 0, 16 };
            result((int)write(writer, record, sizeof record));
        } else if (strcmp(step, "closew") == 0) {
            result(close(writer));
            writer = -1;
        } else if (strcmp(step, "sh") == 0 && i + 1 < argc) {
            int status = system(argv[++i]);
            printf("sh=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            fflush(stdout);
        } else if (strcmp(step, "fork") == 0) {
            int sync[2];
            if (pipe(sync) < 0) return 1;
            pid_t child = fork();
            if (child < 0) return 1;
            if (child > 0) {
                close(reader);
                close(writer);
                /* Only now may the child go on: the queue is the child's alone. */
                if (write(sync[1], "x", 1) != 1) return 1;
                int status = 0;
                waitpid(child, &status, 0);
                return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
            }
            char token;
            if (read(sync[0], &token, 1) != 1) return 1;
            say("forked");
        } else if (strcmp(step, "plain") == 0) {
            int fds[2];
            char byte = 0;
            int ok = pipe2(fds, O_CLOEXEC) == 0 && write(fds[1], "p", 1) == 1 && read(fds[0], &byte, 1) == 1 && byte == 'p';
            say(ok ? "plain ok" : "plain failed");
        } else {
            fprintf(stderr, "wqfs-compat-client: bad step '%s'\n", step);
            return 2;
        }
    }
    return 0;
}
