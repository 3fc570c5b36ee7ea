/*
 * spsc_ring.c: the minimal C SPSC ring across two processes, a reference row of `shmc bench`.
 *
 *   spsc_ring latency MESSAGES MAX_SECONDS   ping-pong with spinning readers: one-way latency
 *                                            (round trip / 2), median and p99, in ns
 *   spsc_ring stream  MESSAGES MAX_SECONDS   one writer, one reader: messages per second
 *
 * Prints one line of JSON on stdout; exit 0 on success. Plain C11 and libc, built with -O2.
 *
 * The ring is what a careful C programmer writes first: 64-byte messages stored inline, a power-of-two
 * slot count, the producer-written tail and the consumer-written head on separate 128-byte blocks
 * (128 covers adjacent-line prefetch on x64 and the 128-byte lines of some arm64 parts), each side
 * caching the other side's index and re-reading it only when the cache says "full" or "empty", a
 * release store to publish and an acquire load to observe, one PAUSE per failed poll.
 *
 * Every loop is bounded by a count and by MAX_SECONDS (checked every 1024 polls), the child dies with
 * its parent (PR_SET_PDEATHSIG), and the parent waits for the child with a timeout and kills it. The
 * shared object is named /shmc-bench-<pid>-ring, unlinked before it is made and again at the end; it is
 * unlinked as soon as it is mapped (the mapping survives), so even a killed run leaves nothing behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"

#define LINE 128
#define SLOTS 1024u /* a power of two */

typedef struct
{
    uint64_t seq;
    uint64_t stamp;
    uint64_t payload[6];
} msg_t;
_Static_assert(sizeof(msg_t) == 64, "messages are 64 bytes");

typedef struct
{
    _Alignas(LINE) _Atomic uint64_t tail; /* written by the producer only */
    _Alignas(LINE) _Atomic uint64_t head; /* written by the consumer only */
    _Alignas(LINE) msg_t slots[SLOTS];
} ring_t;

typedef struct
{
    _Alignas(LINE) _Atomic uint32_t ready; /* the child has started */
    _Alignas(LINE) _Atomic uint32_t stop;  /* the parent is done (or gave up): the child leaves */
    ring_t ping;                           /* parent -> child */
    ring_t pong;                           /* child -> parent (latency mode) */
} shared_t;

/* One end of a ring, private to its process: its own position and its cache of the other side's. */
typedef struct
{
    ring_t *ring;
    uint64_t pos;
    uint64_t cached;
} end_t;

static char shm_name[64];

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static int try_send(end_t *p, const msg_t *m)
{
    if (p->pos - p->cached == SLOTS)
    {
        p->cached = atomic_load_explicit(&p->ring->head, memory_order_acquire);
        if (p->pos - p->cached == SLOTS)
        {
            return 0;
        }
    }

    p->ring->slots[p->pos & (SLOTS - 1)] = *m;
    p->pos++;
    /* Release: the slot's bytes are visible before the new tail is. */
    atomic_store_explicit(&p->ring->tail, p->pos, memory_order_release);
    return 1;
}

static int try_recv(end_t *c, msg_t *m)
{
    if (c->pos == c->cached)
    {
        /* Acquire: pairs with the producer's release of tail, so the slot is read after it was written. */
        c->cached = atomic_load_explicit(&c->ring->tail, memory_order_acquire);
        if (c->pos == c->cached)
        {
            return 0;
        }
    }

    *m = c->ring->slots[c->pos & (SLOTS - 1)];
    c->pos++;
    /* Release: the slot is read out before the producer may overwrite it. */
    atomic_store_explicit(&c->ring->head, c->pos, memory_order_release);
    return 1;
}

/* Spins until a message arrives; 0 when the deadline passes or the parent said stop. */
static int recv_spin(end_t *c, msg_t *m, shared_t *s, uint64_t deadline)
{
    unsigned polls = 0;
    while (!try_recv(c, m))
    {
        cpu_relax();
        if ((++polls & 1023u) == 0 && (now_ns() > deadline || atomic_load_explicit(&s->stop, memory_order_relaxed)))
        {
            return 0;
        }
    }

    return 1;
}

static int send_spin(end_t *p, const msg_t *m, shared_t *s, uint64_t deadline)
{
    unsigned polls = 0;
    while (!try_send(p, m))
    {
        cpu_relax();
        if ((++polls & 1023u) == 0 && (now_ns() > deadline || atomic_load_explicit(&s->stop, memory_order_relaxed)))
        {
            return 0;
        }
    }

    return 1;
}

static void fail(const char *mode, const char *what)
{
    shm_unlink(shm_name);
    printf("{\"impl\":\"c-spsc-ring\",\"mode\":\"%s\",\"error\":\"%s\"}\n", mode, what);
    exit(1);
}

static int child_main(shared_t *s, int latency, uint64_t total, uint64_t deadline)
{
    end_t in = {&s->ping, 0, 0};
    end_t out = {&s->pong, 0, 0};
    atomic_store_explicit(&s->ready, 1, memory_order_release);
    msg_t m;
    for (uint64_t i = 0; i < total; i++)
    {
        if (!recv_spin(&in, &m, s, deadline))
        {
            return atomic_load(&s->stop) ? 0 : 3;
        }

        if (m.seq != i)
        {
            return 4; /* a lost, repeated or torn message */
        }

        if (latency && !send_spin(&out, &m, s, deadline))
        {
            return atomic_load(&s->stop) ? 0 : 3;
        }
    }

    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "latency") != 0 && strcmp(argv[1], "stream") != 0))
    {
        fprintf(stderr, "usage: spsc_ring latency|stream MESSAGES MAX_SECONDS\n");
        return 2;
    }

    const char *mode = argv[1];
    int latency = strcmp(mode, "latency") == 0;
    char *end;
    unsigned long long messages = strtoull(argv[2], &end, 10);
    double seconds = strtod(argv[3], NULL);
    if (*end != '\0' || messages < 1 || messages > 1000000000ull || !(seconds > 0 && seconds <= 3600))
    {
        fprintf(stderr, "spsc_ring: MESSAGES must be 1..1e9 and MAX_SECONDS 0..3600\n");
        return 2;
    }

    /* Warm-up traffic goes first and is not measured: a fifth of the count, between 100 and 20000
       messages, and at most a fifth of MAX_SECONDS. */
    uint64_t warmup = messages / 5;
    warmup = warmup < 100 ? 100 : warmup > 20000 ? 20000 : warmup;
    uint64_t total = warmup + messages;

    snprintf(shm_name, sizeof shm_name, "/shmc-bench-%ld-ring", (long)getpid());
    shm_unlink(shm_name);
    int fd = shm_open(shm_name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0)
    {
        fail(mode, "shm_open failed");
    }

    if (ftruncate(fd, sizeof(shared_t)) != 0)
    {
        close(fd);
        fail(mode, "ftruncate failed");
    }

    shared_t *s = mmap(NULL, sizeof(shared_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    /* The mapping (inherited by the child) keeps the object alive; the name is no longer needed. */
    shm_unlink(shm_name);
    if (s == MAP_FAILED)
    {
        fail(mode, "mmap failed");
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
        fail(mode, "fork failed");
    }

    if (child == 0)
    {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
        {
            _exit(3);
        }

        _exit(child_main(s, latency, total, child_hard));
    }

    unsigned polls = 0;
    while (!atomic_load_explicit(&s->ready, memory_order_acquire))
    {
        cpu_relax();
        if ((++polls & 1023u) == 0 && now_ns() > hard)
        {
            kill(child, SIGKILL);
            reap(child, 1);
            fail(mode, "the child did not start");
        }
    }

    uint64_t warm_end = now_ns() + nanos / 5;
    uint64_t deadline = warm_end + nanos;
    hard = deadline + 2000000000u;
    end_t out = {&s->ping, 0, 0};
    end_t in = {&s->pong, 0, 0};
    msg_t m;
    memset(&m, 0, sizeof m);
    int ok = 1;
    uint64_t i = 0;
    if (latency)
    {
        uint64_t *samples = malloc(messages * sizeof(uint64_t));
        if (samples == NULL)
        {
            kill(child, SIGKILL);
            reap(child, 1);
            fail(mode, "out of memory");
        }

        for (; i < warmup && ok && now_ns() < warm_end; i++)
        {
            m.seq = i;
            msg_t back;
            ok = send_spin(&out, &m, s, hard) && recv_spin(&in, &back, s, hard) && back.seq == i;
        }

        deadline = now_ns() + nanos;
        hard = deadline + 2000000000u;
        uint64_t count = 0;
        while (count < messages && ok)
        {
            uint64_t t0 = now_ns();
            m.seq = i;
            m.stamp = t0;
            msg_t back;
            ok = send_spin(&out, &m, s, hard) && recv_spin(&in, &back, s, hard) && back.seq == i;
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
        int code = reap(child, 5);
        if (!ok || code != 0 || count == 0)
        {
            fail(mode, !ok ? "no reply from the child" : code != 0 ? "the child failed" : "no sample within the time cap");
        }

        qsort(samples, count, sizeof(uint64_t), compare_u64);
        double sum = 0;
        for (uint64_t k = 0; k < count; k++)
        {
            sum += (double)samples[k];
        }

        printf("{\"impl\":\"c-spsc-ring\",\"mode\":\"latency\",\"messages\":%llu,\"median_ns\":%.1f,\"p99_ns\":%.1f,\"mean_ns\":%.1f,\"complete\":%s}\n",
               (unsigned long long)count, one_way(samples, count, 0.50), one_way(samples, count, 0.99), sum / (double)count / 2.0,
               count == messages ? "true" : "false");
        free(samples);
    }
    else
    {
        for (; i < warmup && ok && ((i & 255u) != 0 || now_ns() < warm_end); i++)
        {
            m.seq = i;
            ok = send_spin(&out, &m, s, hard);
        }

        /* Drain the warm-up so that the timed part starts from an empty ring. */
        while (ok && atomic_load_explicit(&s->ping.head, memory_order_acquire) != i)
        {
            cpu_relax();
            ok = (++polls & 1023u) != 0 || now_ns() <= hard;
        }

        uint64_t t0 = now_ns();
        deadline = t0 + nanos;
        hard = deadline + 2000000000u;
        uint64_t sent = 0;
        while (sent < messages && ok)
        {
            m.seq = i;
            ok = send_spin(&out, &m, s, hard);
            i++;
            sent++;
            if ((sent & 4095u) == 0 && now_ns() > deadline)
            {
                break; /* the time cap: report what was sent */
            }
        }

        /* Done when the reader has taken the last message. */
        while (ok && atomic_load_explicit(&s->ping.head, memory_order_acquire) != i)
        {
            cpu_relax();
            ok = (++polls & 1023u) != 0 || now_ns() <= hard;
        }

        uint64_t t1 = now_ns();
        atomic_store(&s->stop, 1);
        int code = reap(child, 5);
        if (!ok || code != 0)
        {
            fail(mode, !ok ? "the reader stopped taking messages" : "the child failed");
        }

        printf("{\"impl\":\"c-spsc-ring\",\"mode\":\"stream\",\"messages\":%llu,\"seconds\":%.6f,\"msgs_per_sec\":%.1f,\"complete\":%s}\n",
               (unsigned long long)sent, (double)(t1 - t0) / 1e9, (double)sent * 1e9 / (double)(t1 - t0),
               sent == messages ? "true" : "false");
    }

    munmap(s, sizeof(shared_t));
    shm_unlink(shm_name);
    return 0;
}
