/*
 * bench_native: the C ceiling for the aiokafka_c benchmarks.
 *
 * A plain librdkafka producer (the system's librdkafka, the same library
 * aiokafka_c links) running the same scenarios as benchmarks/worker.py,
 * printing one line "RESULT {json}" in the same schema.
 *
 *   ff       fire-and-forget: produce in a loop, poll(0) every 1000
 *            messages, timed to the end of the final flush
 *   gather   produce N, then serve delivery reports until all N arrived
 *   tasks    keep K messages in flight (the C shape of K awaiting tasks)
 *   window   the same loop for the sliding-window sizes N
 *   latency  one message at a time, produce -> delivery report
 *   latency_waiter  the same, but a second thread serves rd_kafka_poll()
 *            and wakes the producing thread (a condition variable) from
 *            the delivery report: the shape of a binding with a poll
 *            thread, in C; also reports produce -> report on that thread
 *
 * Built by the harness:  gcc -O2 bench_native.c $(pkg-config --cflags
 * --libs rdkafka) -o benchmarks/build/bench_native
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#define MAX_LIST 16

static struct {
    const char *bootstrap, *topic, *acks, *groups;
    int value_size, linger_ms;
    long count, latency_count;
    double seconds, warmup_seconds, latency_seconds;
    long gather_ns[MAX_LIST];
    int n_gather;
    long task_ks[MAX_LIST];
    int n_tasks;
    long window_ns[MAX_LIST];
    int n_window;
} opt = {
    .bootstrap = "127.0.0.1:9092",
    .topic = "bench",
    .acks = "1",
    .groups = "ff,gather,tasks,window,latency",
    .value_size = 100,
    .linger_ms = 5,
    .count = 200000,
    .latency_count = 2000,
    .seconds = 3.0,
    .warmup_seconds = 0.3,
    .latency_seconds = 3.0,
};

static rd_kafka_t *rk;
static rd_kafka_topic_t *rkt;
static char *value;
static volatile long delivered, failed;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double proc_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* latency_waiter: the poll thread's side.  While it runs, delivered and
 * failed change under waiter.lock only. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int on, stop;
    int64_t dr_ns;
} waiter = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

static void dr_cb(rd_kafka_t *k, const rd_kafka_message_t *m, void *o) {
    (void)k;
    (void)o;
    if (!waiter.on) {
        delivered++;
        if (m->err)
            failed++;
        return;
    }
    pthread_mutex_lock(&waiter.lock);
    waiter.dr_ns = now_ns();
    delivered++;
    if (m->err)
        failed++;
    pthread_cond_signal(&waiter.cond);
    pthread_mutex_unlock(&waiter.lock);
}

/* Enqueue one message; on a full local queue serve delivery reports and
 * retry. */
static void produce_one(void) {
    while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, 0, value,
                            (size_t)opt.value_size, NULL, 0, NULL) == -1) {
        rd_kafka_resp_err_t err = rd_kafka_last_error();
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "produce failed: %s\n", rd_kafka_err2str(err));
            exit(2);
        }
        rd_kafka_poll(rk, 1);
    }
}

static void wait_delivered(long target) {
    while (delivered < target)
        rd_kafka_poll(rk, 100);
}

/* ---- measurements ------------------------------------------------------ */

typedef struct {
    double t0, p0, l0;
} meter_t;

static void meter_start(meter_t *m) {
    m->t0 = now_s();
    m->p0 = proc_cpu_s();
    m->l0 = thread_cpu_s();
}

static int first_result = 1;

static void emit_sep(void) {
    if (!first_result)
        fputs(",", stdout);
    first_result = 0;
}

static void meter_emit(meter_t *m, const char *name, long msgs,
                       double enqueue_s) {
    double secs = now_s() - m->t0;
    double cp = proc_cpu_s() - m->p0, cl = thread_cpu_s() - m->l0;
    emit_sep();
    printf("{\"name\":\"%s\",\"kind\":\"throughput\",\"msgs\":%ld,"
           "\"seconds\":%.6f,\"rate\":%.3f,\"cpu_proc_us\":%.4f,"
           "\"cpu_loop_us\":%.4f",
           name, msgs, secs, msgs / secs, msgs ? cp * 1e6 / msgs : 0.0,
           msgs ? cl * 1e6 / msgs : 0.0);
    if (enqueue_s > 0)
        printf(",\"enqueue_rate\":%.3f", msgs / enqueue_s);
    fputs("}", stdout);
}

static double ff_enqueue_s;

static long run_ff(long count, double seconds) {
    double start = now_s(), end = start + seconds;
    long i = 0;
    while (i < count && now_s() < end) {
        for (int j = 0; j < 1000; j++)
            produce_one();
        i += 1000;
        rd_kafka_poll(rk, 0);
    }
    ff_enqueue_s = now_s() - start;
    rd_kafka_flush(rk, 60000);
    return i;
}

static long run_gather(long n, long count, double seconds) {
    double end = now_s() + seconds;
    long done = 0;
    while (done < count && now_s() < end) {
        long target = delivered + n;
        for (long j = 0; j < n; j++)
            produce_one();
        wait_delivered(target);
        done += n;
    }
    return done;
}

static long run_window(long k, long count, double seconds) {
    double end = now_s() + seconds;
    long base = delivered, sent = 0;
    while (sent < count && now_s() < end) {
        while (sent - (delivered - base) < k && sent < count) {
            produce_one();
            sent++;
        }
        rd_kafka_poll(rk, 100);
    }
    wait_delivered(base + sent);
    return sent;
}

/* One measurement "<prefix>_<k>" of run_window per size, each after its
 * warm-up. */
static void emit_windows(const char *prefix, const long *ks, int n) {
    meter_t m;
    for (int i = 0; i < n; i++) {
        char name[64];
        run_window(ks[i], 1L << 40, opt.warmup_seconds);
        meter_start(&m);
        long done = run_window(ks[i], opt.count, opt.seconds);
        snprintf(name, sizeof name, "%s_%ld", prefix, ks[i]);
        meter_emit(&m, name, done, 0);
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct(const int64_t *s, long n, double q) {
    if (n == 0)
        return 0;
    long rank = (long)(q / 100.0 * n + 0.999999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return s[rank - 1] / 1e6;
}

static void run_latency(void) {
    for (int i = 0; i < 20; i++) {
        long target = delivered + 1;
        produce_one();
        wait_delivered(target);
    }
    int64_t *s = calloc((size_t)opt.latency_count + 1, sizeof *s);
    long n = 0;
    double end = now_s() + opt.latency_seconds;
    while (n < opt.latency_count && now_s() < end) {
        int64_t t0 = now_ns();
        long target = delivered + 1;
        produce_one();
        while (delivered < target)
            rd_kafka_poll(rk, 1000);
        s[n++] = now_ns() - t0;
    }
    qsort(s, (size_t)n, sizeof *s, cmp_i64);
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += s[i] / 1e6;
    emit_sep();
    printf("{\"name\":\"latency\",\"kind\":\"latency\",\"msgs\":%ld,"
           "\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"p999_ms\":%.4f,"
           "\"mean_ms\":%.4f,\"max_ms\":%.4f}",
           n, pct(s, n, 50), pct(s, n, 99), pct(s, n, 99.9),
           n ? sum / n : 0.0, n ? s[n - 1] / 1e6 : 0.0);
    free(s);
}

static void *waiter_main(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&waiter.lock);
        int stop = waiter.stop;
        pthread_mutex_unlock(&waiter.lock);
        if (stop)
            return NULL;
        rd_kafka_poll(rk, 100);
    }
}

static void run_latency_waiter(void) {
    pthread_t t;
    waiter.on = 1;
    if (pthread_create(&t, NULL, waiter_main, NULL) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        exit(2);
    }
    int64_t *s = calloc((size_t)opt.latency_count + 1, sizeof *s);
    int64_t *dr = calloc((size_t)opt.latency_count + 1, sizeof *dr);
    long n = 0;
    double end = now_s() + opt.latency_seconds;
    for (long i = 0; n < opt.latency_count && now_s() < end; i++) {
        pthread_mutex_lock(&waiter.lock);
        long target = delivered + 1;
        pthread_mutex_unlock(&waiter.lock);
        int64_t t0 = now_ns();
        produce_one();
        struct timespec limit;
        clock_gettime(CLOCK_REALTIME, &limit);
        limit.tv_sec += 60;
        pthread_mutex_lock(&waiter.lock);
        while (delivered < target)
            if (pthread_cond_timedwait(&waiter.cond, &waiter.lock, &limit)) {
                fprintf(stderr, "latency_waiter: no delivery report in 60 s\n");
                exit(2);
            }
        int64_t t_dr = waiter.dr_ns;
        pthread_mutex_unlock(&waiter.lock);
        if (i >= 20) {
            dr[n] = t_dr - t0;
            s[n++] = now_ns() - t0;
        }
    }
    pthread_mutex_lock(&waiter.lock);
    waiter.stop = 1;
    pthread_mutex_unlock(&waiter.lock);
    pthread_join(t, NULL);
    waiter.on = 0;
    qsort(s, (size_t)n, sizeof *s, cmp_i64);
    qsort(dr, (size_t)n, sizeof *dr, cmp_i64);
    emit_sep();
    printf("{\"name\":\"latency_waiter\",\"kind\":\"latency\","
           "\"msgs\":%ld,\"p50_ms\":%.4f,\"p99_ms\":%.4f,"
           "\"dr_p50_ms\":%.4f}",
           n, pct(s, n, 50), pct(s, n, 99), pct(dr, n, 50));
    free(s);
    free(dr);
}

/* ---- command line ------------------------------------------------------ */

static int parse_list(const char *arg, long *out) {
    int n = 0;
    char *copy = strdup(arg), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && n < MAX_LIST;
         t = strtok_r(NULL, ",", &save))
        out[n++] = atol(t);
    free(copy);
    return n;
}

static int has_group(const char *g) {
    size_t len = strlen(g);
    const char *p = opt.groups;
    while ((p = strstr(p, g)) != NULL) {
        if ((p == opt.groups || p[-1] == ',') && (p[len] == ',' || !p[len]))
            return 1;
        p += len;
    }
    return 0;
}

static void usage(void) {
    fputs("usage: bench_native --bootstrap H:P --topic T [--value-size B]\n"
          "  [--acks 1|all] [--linger MS]\n"
          "  [--groups ff,gather,tasks,window,latency,latency_waiter]\n"
          "  [--count N] [--seconds S] [--warmup S] [--gather 1,10,...]\n"
          "  [--tasks 100,1000] [--window 10000]\n"
          "  [--latency-count N] [--latency-seconds S]\n"
          "  [--conf name=value ...]  (e.g. test.mock.num.brokers=1)\n",
          stderr);
    exit(64);
}

#define MAX_CONF 16

int main(int argc, char **argv) {
    const char *extra[MAX_CONF];
    int n_extra = 0;
    opt.n_gather = parse_list("1,10,100,1000", opt.gather_ns);
    opt.n_tasks = parse_list("100,1000", opt.task_ks);
    opt.n_window = parse_list("10000", opt.window_ns);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--bootstrap")) opt.bootstrap = v;
        else if (!strcmp(a, "--topic")) opt.topic = v;
        else if (!strcmp(a, "--acks")) opt.acks = v;
        else if (!strcmp(a, "--groups")) opt.groups = v;
        else if (!strcmp(a, "--value-size")) opt.value_size = atoi(v);
        else if (!strcmp(a, "--linger")) opt.linger_ms = atoi(v);
        else if (!strcmp(a, "--count")) opt.count = atol(v);
        else if (!strcmp(a, "--seconds")) opt.seconds = atof(v);
        else if (!strcmp(a, "--warmup")) opt.warmup_seconds = atof(v);
        else if (!strcmp(a, "--latency-count")) opt.latency_count = atol(v);
        else if (!strcmp(a, "--latency-seconds")) opt.latency_seconds = atof(v);
        else if (!strcmp(a, "--gather")) opt.n_gather = parse_list(v, opt.gather_ns);
        else if (!strcmp(a, "--tasks")) opt.n_tasks = parse_list(v, opt.task_ks);
        else if (!strcmp(a, "--window")) opt.n_window = parse_list(v, opt.window_ns);
        else if (!strcmp(a, "--conf") && n_extra < MAX_CONF) extra[n_extra++] = v;
        else usage();
    }

    char err[512], buf[32];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(buf, sizeof buf, "%d", opt.linger_ms);
    if (rd_kafka_conf_set(conf, "bootstrap.servers", opt.bootstrap, err,
                          sizeof err) ||
        rd_kafka_conf_set(conf, "acks", opt.acks, err, sizeof err) ||
        rd_kafka_conf_set(conf, "linger.ms", buf, err, sizeof err) ||
        rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000",
                          err, sizeof err) ||
        rd_kafka_conf_set(conf, "client.id", "bench-native", err,
                          sizeof err)) {
        fprintf(stderr, "config: %s\n", err);
        return 2;
    }
    for (int i = 0; i < n_extra; i++) {
        char name[256];
        const char *eq = strchr(extra[i], '=');
        if (!eq || (size_t)(eq - extra[i]) >= sizeof name) {
            fprintf(stderr, "--conf %s: expected name=value\n", extra[i]);
            return 2;
        }
        memcpy(name, extra[i], eq - extra[i]);
        name[eq - extra[i]] = '\0';
        if (rd_kafka_conf_set(conf, name, eq + 1, err, sizeof err)) {
            fprintf(stderr, "config %s: %s\n", name, err);
            return 2;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", err);
        return 2;
    }
    rkt = rd_kafka_topic_new(rk, opt.topic, NULL);
    value = malloc((size_t)opt.value_size + 1);
    memset(value, 'x', (size_t)opt.value_size);

    /* Warm-up: connection and topic metadata, untimed. */
    run_gather(10, 10, 60.0);

    printf("RESULT {\"ok\":true,\"versions\":{\"librdkafka\":\"%s "
           "(system)\"},\"measurements\":[",
           rd_kafka_version_str());
    meter_t m;
    if (has_group("ff")) {
        run_ff(1L << 40, opt.warmup_seconds);
        meter_start(&m);
        long n = run_ff(opt.count, opt.seconds);
        meter_emit(&m, "ff", n, ff_enqueue_s);
    }
    if (has_group("gather")) {
        for (int i = 0; i < opt.n_gather; i++) {
            char name[64];
            long n = opt.gather_ns[i];
            run_gather(n, 1L << 40, opt.warmup_seconds);
            meter_start(&m);
            long done = run_gather(n, opt.count, opt.seconds);
            snprintf(name, sizeof name, "gather_%ld", n);
            meter_emit(&m, name, done, 0);
        }
    }
    if (has_group("tasks"))
        emit_windows("tasks", opt.task_ks, opt.n_tasks);
    if (has_group("window"))
        emit_windows("window", opt.window_ns, opt.n_window);
    if (has_group("latency"))
        run_latency();
    if (has_group("latency_waiter"))
        run_latency_waiter();
    rd_kafka_flush(rk, 60000);
    printf("],\"delivery_errors\":%ld}\n", failed);
    fflush(stdout);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(value);
    return 0;
}
