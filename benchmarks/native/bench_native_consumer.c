/*
 * bench_native_consumer: the C ceiling for the consumer benchmarks.
 *
 * A plain librdkafka high-level consumer (the system's librdkafka, the same
 * library aiokafka_c links) reading a pre-filled topic, printing one line
 * "RESULT {json}" in the schema of benchmarks/consumer.py.
 *
 *   iter    rd_kafka_consumer_poll() one message at a time
 *   batch   rd_kafka_consume_batch_queue() on the consumer queue, up to
 *           --batch messages per call
 *
 * Fresh group id, auto.offset.reset=earliest; timed from the first message
 * to the --count-th (or --seconds after the first, whichever comes first).
 * Every message's value length is summed, so each one is touched.
 *
 * Built by the harness:  gcc -O2 bench_native_consumer.c $(pkg-config
 * --cflags --libs rdkafka) -o benchmarks/build/bench_native_consumer
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static struct {
    const char *bootstrap, *topic, *group, *variant;
    long count, batch;
    double seconds, join_timeout;
} opt = {
    .bootstrap = "127.0.0.1:9092",
    .topic = "bench",
    .group = "bench-native-consumer",
    .variant = "iter",
    .count = 1000000,
    .batch = 1000,
    .seconds = 5.0,
    .join_timeout = 60.0,
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
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

static void fail(const char *what, const char *detail) {
    printf("RESULT {\"ok\":false,\"error\":\"%s: %s\"}\n", what, detail);
    fflush(stdout);
    exit(1);
}

/* 1 = a message to count, 0 = skip (EOF), exits on a real error. */
static int check(const rd_kafka_message_t *m) {
    if (!m->err)
        return 1;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return 0;
    fail("consume", rd_kafka_message_errstr(m));
    return 0;
}

static void usage(void) {
    fputs("usage: bench_native_consumer --bootstrap H:P --topic T --group G\n"
          "  [--variant iter|batch] [--count N] [--batch N] [--seconds S]\n"
          "  [--join-timeout S]\n",
          stderr);
    exit(64);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--bootstrap")) opt.bootstrap = v;
        else if (!strcmp(a, "--topic")) opt.topic = v;
        else if (!strcmp(a, "--group")) opt.group = v;
        else if (!strcmp(a, "--variant")) opt.variant = v;
        else if (!strcmp(a, "--count")) opt.count = atol(v);
        else if (!strcmp(a, "--batch")) opt.batch = atol(v);
        else if (!strcmp(a, "--seconds")) opt.seconds = atof(v);
        else if (!strcmp(a, "--join-timeout")) opt.join_timeout = atof(v);
        else usage();
    }
    int batch = !strcmp(opt.variant, "batch");
    if (!batch && strcmp(opt.variant, "iter"))
        usage();
    if (opt.batch < 1)
        opt.batch = 1;

    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", opt.bootstrap, err,
                          sizeof err) ||
        rd_kafka_conf_set(conf, "group.id", opt.group, err, sizeof err) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err,
                          sizeof err) ||
        rd_kafka_conf_set(conf, "client.id", "bench-native-consumer", err,
                          sizeof err))
        fail("config", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk)
        fail("rd_kafka_new", err);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *topics =
        rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, opt.topic,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e)
        fail("subscribe", rd_kafka_err2str(e));
    rd_kafka_queue_t *rkqu = rd_kafka_queue_get_consumer(rk);
    rd_kafka_message_t **msgs = calloc((size_t)opt.batch, sizeof *msgs);

    /* Join the group, get the first message: untimed. */
    double join_end = now_s() + opt.join_timeout;
    long n = 0, bytes = 0;
    while (!n) {
        if (now_s() > join_end)
            fail("join", "no first message before the join timeout");
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (check(m)) {
            n = 1;
            bytes += (long)m->len;
        }
        rd_kafka_message_destroy(m);
    }

    double t0 = now_s(), p0 = proc_cpu_s(), l0 = thread_cpu_s();
    double end = t0 + opt.seconds;
    if (batch) {
        while (n < opt.count) {
            long want = opt.count - n < opt.batch ? opt.count - n : opt.batch;
            ssize_t got = rd_kafka_consume_batch_queue(rkqu, 1000, msgs,
                                                       (size_t)want);
            if (got < 0)
                fail("consume_batch_queue",
                     rd_kafka_err2str(rd_kafka_last_error()));
            for (ssize_t j = 0; j < got; j++) {
                if (check(msgs[j])) {
                    n++;
                    bytes += (long)msgs[j]->len;
                }
                rd_kafka_message_destroy(msgs[j]);
            }
            if (now_s() > end)
                break;
        }
    } else {
        while (n < opt.count) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
            if (!m) {
                if (now_s() > end)
                    break;
                continue;
            }
            if (check(m)) {
                n++;
                bytes += (long)m->len;
            }
            rd_kafka_message_destroy(m);
            if (!(n & 1023) && now_s() > end)
                break;
        }
    }
    double secs = now_s() - t0;
    double cp = proc_cpu_s() - p0, cl = thread_cpu_s() - l0;
    long timed = n - 1;

    printf("RESULT {\"ok\":true,\"versions\":{\"librdkafka\":\"%s "
           "(system)\"},\"measurements\":[{\"name\":\"consume_%s\","
           "\"kind\":\"consume\",\"msgs\":%ld,\"seconds\":%.6f,"
           "\"rate\":%.3f,\"cpu_proc_us\":%.4f,\"cpu_loop_us\":%.4f,"
           "\"bytes\":%ld,\"received\":%ld,\"capped_by\":\"%s\"}]}\n",
           rd_kafka_version_str(), opt.variant, timed, secs,
           secs > 0 ? timed / secs : 0.0,
           timed ? cp * 1e6 / timed : 0.0, timed ? cl * 1e6 / timed : 0.0,
           bytes, n, n >= opt.count ? "count" : "seconds");
    fflush(stdout);
    free(msgs);
    rd_kafka_queue_destroy(rkqu);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}
