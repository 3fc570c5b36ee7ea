/*
 * futex_pingpong.c: the minimal C futex ping-pong across two processes, a reference row of `shmc bench`.
 *
 *   futex_pingpong MESSAGES MAX_SECONDS   one-way latency (round trip / 2) with sleeping readers,
 *                                         median and p99, in ns
 *
 * Prints one line of JSON on stdout; exit 0 on success. Plain C11 and libc, built with -O2.
 *
 * Two 32-bit sequence words on separate 128-byte blocks of a MAP_SHARED mapping: the parent bumps
 * `ping` and wakes, the child sleeps in FUTEX_WAIT until `ping` changes, bumps `pong` and wakes, and the
 * parent sleeps on `pong`. No spinning before sleeping and a wake after every store: the floor of a
 * kernel-mediated hand-off (two futex wakes and two wake-ups per round trip). The futex calls are
 * made without FUTEX_PRIVATE_FLAG, which would lose the wakes of the other process.
 *
 * Every loop is bounded by a count and by MAX_SECONDS (each FUTEX_WAIT has a 50 ms timeout), the child
 * dies with its parent (PR_SET_PDEATHSIG), and the parent waits for the child with a timeout and kills
 * it. The shared object is /shmc-bench-<pid>-futex, unlinked before it is made, as soon as it is
 * mapped, and at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"

#define LINE 128

typedef struct
{
    _Alignas(LINE) _Atomic uint32_t ping;  /* written by the parent only */
    _Alignas(LINE) _Atomic uint32_t pong;  /* written by the child only */
    _Alignas(LINE) _Atomic uint32_t ready; /* the child has started */
    _Alignas(LINE) _Atomic uint32_t stop;  /* the parent is done (or gave up): the child leaves */
} shared_t;

static char shm_name[64];

static long futex(_Atomic uint32_t *word, int op, uint32_t value, const struct timespec *timeout)
{
    return syscall(SYS_futex, (uint32_t *)word, op, value, timeout, NULL, 0);
}

static void store_and_wake(_Atomic uint32_t *word, uint32_t value)
{
    atomic_store_explicit(word, value, memory_order_release);
    futex(word, FUTEX_WAKE, 1, NULL);
}

/*
 * Sleeps until *word is no longer `seen`. FUTEX_WAIT returns at once (EAGAIN) when the word already
 * changed, so a store between our check and our sleep is never missed. 0 on deadline or stop.
 */
static int wait_change(_Atomic uint32_t *word, uint32_t seen, shared_t *s, uint64_t deadline)
{
    for (;;)
    {
        if (atomic_load_explicit(word, memory_order_acquire) != seen)
        {
            return 1;
        }

        if (atomic_load_explicit(&s->stop, memory_order_relaxed) || now_ns() > deadline)
        {
            return 0;
        }

        struct timespec timeout = {0, 50000000};
        futex(word, FUTEX_WAIT, seen, &timeout);
    }
}

static void fail(const char *what)
{
    shm_unlink(shm_name);
    printf("{\"impl\":\"c-futex-pingpong\",\"mode\":\"latency\",\"error\":\"%s\"}\n", what);
    exit(1);
}

static int child_main(shared_t *s, uint64_t total, uint64_t deadline)
{
    store_and_wake(&s->ready, 1);
    for (uint64_t i = 0; i < total; i++)
    {
        if (!wait_change(&s->ping, (uint32_t)i, s, deadline))
        {
            return atomic_load(&s->stop) ? 0 : 3;
        }

        store_and_wake(&s->pong, (uint32_t)(i + 1));
    }

    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3)
    {
        fprintf(stderr, "usage: futex_pingpong MESSAGES MAX_SECONDS\n");
        return 2;
    }

    char *end;
    unsigned long long messages = strtoull(argv[1], &end, 10);
    double seconds = strtod(argv[2], NULL);
    if (*end != '\0' || messages < 1 || messages > 1000000000ull || !(seconds > 0 && seconds <= 3600))
    {
        fprintf(stderr, "futex_pingpong: MESSAGES must be 1..1e9 and MAX_SECONDS 0..3600\n");
        return 2;
    }

    /* Warm-up round trips go first and are not measured: a fifth of the count, between 100 and 20000,
       and at most a fifth of MAX_SECONDS. */
    uint64_t warmup = messages / 5;
    warmup = warmup < 100 ? 100 : warmup > 20000 ? 20000 : warmup;
    uint64_t total = warmup + messages;

    snprintf(shm_name, sizeof shm_name, "/shmc-bench-%ld-futex", (long)getpid());
    shm_unlink(shm_name);
    int fd = shm_open(shm_name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0)
    {
        fail("shm_open failed");
    }

    if (ftruncate(fd, sizeof(shared_t)) != 0)
    {
        close(fd);
        fail("ftruncate failed");
    }

    shared_t *s = mmap(NULL, sizeof(shared_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    /* The mapping (inherited by the child) keeps the object alive; the name is no longer needed. */
    shm_unlink(shm_name);
    if (s == MAP_FAILED)
    {
        fail("mmap failed");
    }

    uint64_t *samples = malloc(messages * sizeof(uint64_t));
    if (samples == NULL)
    {
        fail("out of memory");
    }

    /*
     * Time bounds. The child must start within 10 s. Warm-up then takes at most a fifth of MAX_SECONDS,
     * the measurement at most MAX_SECONDS (`deadline`), and `hard`, two seconds after the deadline,
     * bounds every wait of the parent. The child's own bound is later than any bound of the parent, so
     * it never gives up before the parent has said stop.
     */
    uint64_t nanos = (uint64_t)(seconds * 1e9);
    uint64_t hard = now_ns() + 10000000000u;
    uint64_t child_hard = hard + 2 * nanos + 5000000000u;
    pid_t parent = getpid();
    fflush(stdout);
    pid_t child = fork();
    if (child < 0)
    {
        fail("fork failed");
    }

    if (child == 0)
    {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
        {
            _exit(3);
        }

        _exit(child_main(s, total, child_hard));
    }

    if (!wait_change(&s->ready, 0, s, hard))
    {
        kill(child, SIGKILL);
        reap(child, 1);
        fail("the child did not start");
    }

    uint64_t warm_end = now_ns() + nanos / 5;
    hard = warm_end + 2000000000u;
    int ok = 1;
    uint64_t i = 0;
    for (; i < warmup && ok && now_ns() < warm_end; i++)
    {
        store_and_wake(&s->ping, (uint32_t)(i + 1));
        ok = wait_change(&s->pong, (uint32_t)i, s, hard);
    }

    uint64_t deadline = now_ns() + nanos;
    hard = deadline + 2000000000u;
    uint64_t count = 0;
    while (count < messages && ok)
    {
        uint64_t t0 = now_ns();
        store_and_wake(&s->ping, (uint32_t)(i + 1));
        ok = wait_change(&s->pong, (uint32_t)i, s, hard);
        uint64_t t1 = now_ns();
        i++;
        if (ok)
        {
            samples[count++] = t1 - t0;
        }

        if (t1 > deadline)
        {
            break; /* the time cap: report what was measured */
        }
    }

    atomic_store(&s->stop, 1);
    futex(&s->ping, FUTEX_WAKE, 1, NULL);
    int code = reap(child, 5);
    if (!ok || code != 0 || count == 0)
    {
        fail(!ok ? "no reply from the child" : code != 0 ? "the child failed" : "no sample within the time cap");
    }

    qsort(samples, count, sizeof(uint64_t), compare_u64);
    double sum = 0;
    for (uint64_t k = 0; k < count; k++)
    {
        sum += (double)samples[k];
    }

    printf("{\"impl\":\"c-futex-pingpong\",\"mode\":\"latency\",\"messages\":%llu,\"median_ns\":%.1f,\"p99_ns\":%.1f,\"mean_ns\":%.1f,\"complete\":%s}\n",
           (unsigned long long)count, one_way(samples, count, 0.50), one_way(samples, count, 0.99), sum / (double)count / 2.0,
           count == messages ? "true" : "false");
    free(samples);
    munmap(s, sizeof(shared_t));
    shm_unlink(shm_name);
    return 0;
}
