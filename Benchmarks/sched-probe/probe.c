/* A latency driver small enough to trace: where does the time between a kernel
 * event and its record go, wqfs against the mechanism read directly?
 *
 *   probe devices|processes ROUNDS [QUEUE]
 *
 * A reader process blocks on QUEUE (a wqfs queue watching the source) or, without
 * QUEUE, on the mechanism itself (uevent netlink, proc connector), as the sources
 * floor does. Per round, after 1 ms of settling and once the reader sleeps, this
 * process stamps CLOCK_MONOTONIC and writes "change" to /sys/class/mem/null/uevent
 * (devices) or forks a child that exits at once (processes); the reader stamps
 * when its read returns with that event. Prints the median and p90. Run it under
 * `perf sched record` and give the result to decompose.py (see run.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#define _LINUX_FCNTL_H
#include "wqfs/records.h"

#define PROGRAM "probe"
#include "../common/stamp.h"

static int sleeping(pid_t pid) {
    char path[64], text[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    text[n > 0 ? n : 0] = 0;
    char *end = strrchr(text, ')');
    return end && end[1] == ' ' && end[2] == 'S';
}

static int devices;     /* else processes */
static pid_t trigger;   /* the process whose children count */
static int stamps;      /* the reader's end of the stamp pipe */

static void stamp(void) {
    uint64_t t = now();
    if (write(stamps, &t, sizeof t) != sizeof t) _exit(0);
}

/* Does one wqfs record say what this round triggered? */
static int ours(const unsigned char *record, size_t length) {
    const struct watch_notification *watch = (const void *)record;
    if (devices) {
        static const char null[] = "/devices/virtual/mem/null";
        const struct wqfs_device_notification *device = (const void *)record;
        return watch->type == WQFS_WATCH_TYPE_DEVICE && watch->subtype == WQFS_DEVICE_CHANGE &&
               length >= sizeof *device + sizeof null && memcmp(device->devpath, null, sizeof null) == 0;
    }
    const struct wqfs_process_notification_fork *fork = (const void *)record;
    return watch->type == WQFS_WATCH_TYPE_PROCESS && watch->subtype == WQFS_PROCESS_FORK && length >= sizeof *fork &&
           fork->parent_tgid == (uint32_t)trigger && fork->pid == fork->tgid && fork->pid != (uint32_t)getpid();
}

static void read_queue(const char *path) {
    static unsigned char buffer[65536];
    /* What earlier runs left queued is not ours. */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) die("open queue");
    while (read(fd, buffer, sizeof buffer) > 0) {}
    close(fd);
    if ((fd = open(path, O_RDONLY)) < 0) die("open queue");
    for (;;) {
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("read queue");
        int found = 0;
        for (ssize_t at = 0; at + 8 <= n;) {
            size_t length = ((const struct watch_notification *)(buffer + at))->info & WATCH_INFO_LENGTH;
            if (length < 8 || at + (ssize_t)length > n) break;
            found |= ours(buffer + at, length);
            at += (ssize_t)length;
        }
        if (found) stamp();
    }
}

static void read_mechanism(void) {
    static char buffer[8192] __attribute__((aligned(8)));
    int fd = socket(AF_NETLINK, SOCK_DGRAM, devices ? NETLINK_KOBJECT_UEVENT : NETLINK_CONNECTOR);
    if (fd < 0) die("socket");
    struct sockaddr_nl address = { .nl_family = AF_NETLINK, .nl_groups = devices ? 1 : CN_IDX_PROC };
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) die("bind");
    if (!devices) {
        struct {
            struct nlmsghdr header;
            struct cn_msg message;
            enum proc_cn_mcast_op op;
        } __attribute__((packed)) listen = {
            .header = { .nlmsg_len = sizeof listen, .nlmsg_type = NLMSG_DONE },
            .message = { .id = { .idx = CN_IDX_PROC, .val = CN_VAL_PROC }, .len = sizeof(enum proc_cn_mcast_op) },
            .op = PROC_CN_MCAST_LISTEN,
        };
        if (send(fd, &listen, sizeof listen, 0) != (ssize_t)sizeof listen) die("PROC_CN_MCAST_LISTEN");
    }
    for (;;) {
        ssize_t n = recv(fd, buffer, sizeof buffer - 1, 0);
        if (n <= 0) continue;
        if (devices) {
            buffer[n] = 0;
            if (strcmp(buffer, "change@/devices/virtual/mem/null") == 0) stamp();
        } else {
            struct proc_event *event = (void *)((struct cn_msg *)NLMSG_DATA((struct nlmsghdr *)buffer))->data;
            if (event->what == PROC_EVENT_FORK && event->event_data.fork.parent_tgid == trigger &&
                event->event_data.fork.child_pid == event->event_data.fork.child_tgid)
                stamp();
        }
    }
}

static int order(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 3 || (strcmp(argv[1], "devices") != 0 && strcmp(argv[1], "processes") != 0)) {
        fprintf(stderr, "usage: probe devices|processes ROUNDS [QUEUE]\n");
        return 2;
    }
    devices = strcmp(argv[1], "devices") == 0;
    int rounds = atoi(argv[2]);
    trigger = getpid();
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) die("pipe");
    pid_t reader = fork();
    if (reader == 0) {
        stamps = pipe_fds[1];
        if (argc > 3) read_queue(argv[3]);
        read_mechanism();
    }
    usleep(300000); /* subscribed by then */
    uint64_t *samples = calloc((size_t)rounds, sizeof *samples);
    for (int round = 0; round < rounds; round++) {
        usleep(1000);
        int fd = devices ? open("/sys/class/mem/null/uevent", O_WRONLY) : -1;
        while (!sleeping(reader)) sched_yield();
        uint64_t start = now();
        pid_t child = 0;
        if (devices) {
            if (write(fd, "change", 6) != 6) die("write uevent");
        } else if ((child = fork()) == 0) {
            _exit(0);
        }
        uint64_t end;
        if (read(pipe_fds[0], &end, sizeof end) != sizeof end) die("read stamp");
        samples[round] = end - start;
        if (devices) close(fd);
        else waitpid(child, NULL, 0);
    }
    kill(reader, SIGKILL);
    qsort(samples, (size_t)rounds, sizeof *samples, order);
    printf("median %.1f µs p90 %.1f µs\n", samples[rounds / 2] / 1e3, samples[rounds * 9 / 10] / 1e3);
    return 0;
}
