/* What the benchmarks' small C programs share: the clock every stamp is taken
 * with (CLOCK_MONOTONIC, as the benchmark's own) and how they give up.
 * Include after <stdio.h>, <stdlib.h>, <string.h>, <errno.h> and <time.h>;
 * define PROGRAM (its name in messages) first. */
#ifndef WQFS_BENCH_STAMP_H
#define WQFS_BENCH_STAMP_H

#include <stdint.h>

__attribute__((unused)) static uint64_t now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, PROGRAM ": %s: %s\n", what, strerror(errno));
    exit(1);
}

#endif
