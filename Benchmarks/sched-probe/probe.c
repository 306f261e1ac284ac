/* A latency driver small enough to trace: where does the time between a kernel
 * event and its record go, wqfs against the mechanism read directly?
 *
 *   probe FLOOR devices|processes ROUNDS [QUEUE]
 *
 * The reader is the sources floor (FLOOR: Benchmarks/sources-floor/floor.c
 * compiled), blocked on QUEUE (a wqfs queue watching the source; `floor queue`)
 * or, without QUEUE, on the mechanism itself. Per round, after 1 ms of settling
 * and once the reader sleeps, this process stamps CLOCK_MONOTONIC and writes
 * "change" to /sys/class/mem/null/uevent (devices) or forks a child that exits at
 * once (processes); the floor stamps when its read returns with that event. Prints
 * the median and p90. Run it under `perf sched record` and give the result to
 * decompose.py (see run.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
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

/* Starts `FLOOR MODE THIS_PID [QUEUE]` with its stdout on a pipe, read as lines. */
static FILE *start_floor(const char *floor, const char *mode, const char *queue, pid_t *pid) {
    int fds[2];
    if (pipe(fds) != 0) die("pipe");
    char parent[16];
    snprintf(parent, sizeof parent, "%d", (int)getpid());
    if ((*pid = fork()) == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(floor, floor, mode, parent, queue, (char *)NULL);
        die("exec floor");
    }
    close(fds[1]);
    FILE *lines = fdopen(fds[0], "r");
    char line[64];
    if (!lines || !fgets(line, sizeof line, lines) || strcmp(line, "ready\n") != 0) die("floor did not start");
    return lines;
}

static int order(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 4 || (strcmp(argv[2], "devices") != 0 && strcmp(argv[2], "processes") != 0)) {
        fprintf(stderr, "usage: probe FLOOR devices|processes ROUNDS [QUEUE]\n");
        return 2;
    }
    int devices = strcmp(argv[2], "devices") == 0;
    int rounds = atoi(argv[3]);
    const char *queue = argc > 4 ? argv[4] : NULL;
    pid_t reader;
    FILE *lines = start_floor(argv[1], queue ? "queue" : argv[2], queue, &reader);
    /* The floor's line for this round's event: C SEQNUM NS (devices), F PID NS (fork). */
    char want = devices ? 'C' : 'F';
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
        char line[64], kind;
        unsigned long long id, ns;
        do {
            if (!fgets(line, sizeof line, lines)) die("floor ended");
        } while (sscanf(line, "%c %llu %llu", &kind, &id, &ns) != 3 || kind != want || (!devices && id != (unsigned long long)child));
        samples[round] = ns - start;
        if (devices) close(fd);
        else waitpid(child, NULL, 0);
    }
    kill(reader, SIGKILL);
    qsort(samples, (size_t)rounds, sizeof *samples, order);
    printf("median %.1f µs p90 %.1f µs\n", samples[rounds / 2] / 1e3, samples[rounds * 9 / 10] / 1e3);
    return 0;
}
