/* Latency probe: timestamps along one delivery's way from librdkafka to
 * the loop, for benchmarks/latency_probe.py.  Compiled in only with
 * -DAKC_LATENCY_PROBE (never in a release build), where the module gains
 * _latency_probe() -> the last stamp of each point, in CLOCK_MONOTONIC
 * nanoseconds (time.perf_counter_ns's clock on Linux).  The benchmark
 * reads them one message at a time, after the delivery; a log or error
 * event in between moves the stamps (it discards samples out of order). */
#ifndef AKC_PROBE_H
#define AKC_PROBE_H

enum {
    AKC_PROBE_EVENT,     /* poll thread: rd_kafka_queue_poll returned one */
    AKC_PROBE_GIL,       /* poll thread: holds the GIL for the batch */
    AKC_PROBE_WAKING,    /* poll thread: calls call_soon_threadsafe */
    AKC_PROBE_DISPATCH,  /* loop thread: the dispatcher starts its run */
    AKC_PROBE_POINTS
};

#ifdef AKC_LATENCY_PROBE
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* Atomic: the poll thread stamps AKC_PROBE_EVENT without the GIL. */
extern _Atomic int64_t akc_probe_ns[AKC_PROBE_POINTS];

static inline void
akc_probe(int point)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    atomic_store_explicit(&akc_probe_ns[point],
                          (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec,
                          memory_order_relaxed);
}
#else
#define akc_probe(point) ((void)0)
#endif

#endif
