/* What the C references of `shmc bench` share: the clock, the percentile of sorted round trips, and
   waiting for the child with a time limit. Included by each program; built by shmc at run time. */
#ifndef SHMC_BENCH_COMMON_H
#define SHMC_BENCH_COMMON_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted round trips, halved: one-way ns. */
static double one_way(const uint64_t *sorted, uint64_t n, double p)
{
    uint64_t rank = (uint64_t)(p * (double)n + 0.999999);
    if (rank < 1)
    {
        rank = 1;
    }

    return (double)sorted[(rank > n ? n : rank) - 1] / 2.0;
}

/* Waits for the child at most `seconds`, then kills it. Returns its exit code, or -1 when it was killed. */
static int reap(pid_t child, double seconds)
{
    uint64_t deadline = now_ns() + (uint64_t)(seconds * 1e9);
    for (;;)
    {
        int status;
        pid_t r = waitpid(child, &status, WNOHANG);
        if (r == child)
        {
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }

        if (r < 0 && errno != EINTR)
        {
            return -1;
        }

        if (now_ns() > deadline)
        {
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            return -1;
        }

        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
}

#endif
