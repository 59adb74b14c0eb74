"""What a run measures: clients, producer settings, scenario sizes per mode.

Modes (``python -m benchmarks [--smoke|--quick|--full]``):

* ``smoke``   -- seconds; every client once, every scenario, tiny caps; what
  the test suite runs so the harness cannot rot.  No web load test.
* ``quick``   -- 100 B, acks=1: every scenario at linger.ms=5, and
  fire-and-forget, gather and latency at linger.ms=0; 3 repeats; short
  web test.
* default     -- as quick plus tasks and window at linger.ms=0 and every
  scenario for 1 KiB values at linger.ms=5; longer measurements; 3
  repeats.
* ``full``    -- the whole matrix: {100 B, 1 KiB} x {acks=1, acks=all} x
  {linger.ms 0, 5} for every scenario; 3 repeats; long web test.

Every mode also runs the consumer scenarios (``consume``): one topic per run
(``consumer_partitions`` partitions, ``consumer_messages`` values of
``consumer_value_size`` bytes) pre-filled before them, then every consumer
(client x API shape, ``CONSUMERS``) reads it in its own process with a fresh
group id, up to ``consumer_count`` messages or ``consumer_seconds`` after
the first message.
"""

from __future__ import annotations

import dataclasses
from typing import Any

# Display order; also the base order that repeats rotate/alternate.
CLIENTS = [
    "aiokafka_c",
    "blog",
    "confluent_aio",
    "confluent_sync",
    "aiokafka",
    "native",
    "asyncio_floor",
]

CLIENT_LABELS = {
    "aiokafka_c": "aiokafka_c",
    "blog": "blog bridge",
    "confluent_aio": "confluent aio",
    "confluent_sync": "confluent sync",
    "aiokafka": "aiokafka",
    "native": "C librdkafka",
    "asyncio_floor": "asyncio floor",
}

CLIENT_NOTES = {
    "aiokafka_c": "this project: produce() future / produce_nowait(); "
    "system librdkafka",
    "blog": "confluent_kafka.Producer + Python poll thread + one "
    "call_soon_threadsafe per message (the blog post's AIOProducer)",
    "confluent_aio": "confluent_kafka.aio.AIOProducer, default batch_size=1000"
    ", buffer_timeout=1 s; `await produce()` then await the future",
    "confluent_sync": "confluent_kafka.Producer.produce() + poll(0), no "
    "event loop: the Python floor (gather/tasks/window/latency: produce then "
    "flush()/poll())",
    "aiokafka": "aiokafka.AIOKafkaProducer: send() / send_and_wait(), "
    "pure Python, default max_batch_size",
    "native": "benchmarks/native/bench_native.c over the system librdkafka: "
    "the ceiling",
    "asyncio_floor": "no Kafka: futures resolved in batches by one loop "
    "callback -- what asyncio itself costs per awaited message (gather, "
    "tasks and window only); the floor under every asyncio client",
}

GROUPS = ["ff", "gather", "tasks", "window", "latency", "lag"]

# Consumer scenarios: (client, variant) in display order.  ``iter`` is one
# message per call, ``batch`` a list per call; the label names the API.
CONSUMERS: list[tuple[str, str]] = [
    ("aiokafka_c", "iter"),
    ("aiokafka_c", "batch"),
    ("confluent_aio", "iter"),
    ("confluent_aio", "batch"),
    ("confluent_aio", "batch_tuned"),
    ("confluent_sync", "iter"),
    ("confluent_sync", "batch"),
    ("confluent_sync", "batch_tuned"),
    ("aiokafka", "iter"),
    ("aiokafka", "batch"),
    ("native", "iter"),
    ("native", "batch"),
]

CONSUMER_LABELS = {
    ("aiokafka_c", "iter"): "aiokafka_c `async for`",
    ("aiokafka_c", "batch"): "aiokafka_c `consume(500)`",
    ("confluent_aio", "iter"): "confluent aio `poll()`",
    ("confluent_aio", "batch"): "confluent aio `consume(1000)`",
    ("confluent_aio", "batch_tuned"): "confluent aio `consume(1000)`, "
    "fetch.queue.backoff.ms=10",
    ("confluent_sync", "iter"): "confluent sync `poll()`",
    ("confluent_sync", "batch"): "confluent sync `consume(1000)`",
    ("confluent_sync", "batch_tuned"): "confluent sync `consume(1000)`, "
    "fetch.queue.backoff.ms=10",
    ("aiokafka", "iter"): "aiokafka `async for`",
    ("aiokafka", "batch"): "aiokafka `getmany()`",
    ("native", "iter"): "C `rd_kafka_consumer_poll()`",
    ("native", "batch"): "C `rd_kafka_consume_batch_queue(1000)`",
}

# Extra client configuration of a variant ``<shape>_<suffix>``.
# confluent-kafka's bundled librdkafka (>= 2.1) has fetch.queue.backoff.ms,
# default 1000: once a partition's prefetch queue passes queued.min.messages
# it stops fetching for up to a second, which caps a consumer catching up on
# a backlog (this scenario) far below what its client can do.  The system
# librdkafka 2.0.2 (aiokafka_c, the C ceiling) predates the setting.  The
# "_tuned" rows show confluent-kafka without that cap.
CONSUMER_EXTRA_CONF: dict[str, dict[str, object]] = {
    "tuned": {"fetch.queue.backoff.ms": 10},
}

CONSUMER_NOTES = {
    "aiokafka_c": "aiokafka_c.AIOConsumer, default config "
    "(max_buffer_messages=10000); `async for msg in c` / "
    "`await c.consume(500, 1.0)`",
    "confluent_aio": "confluent_kafka.aio.AIOConsumer (every call runs in "
    "its ThreadPoolExecutor, max_workers=100): `await c.poll(1.0)` / "
    "`await c.consume(1000, 1.0)`",
    "confluent_sync": "confluent_kafka.Consumer, no event loop: `poll(1.0)` "
    "/ `consume(1000, 1.0)`",
    "aiokafka": "aiokafka.AIOKafkaConsumer, pure Python, defaults: "
    "`async for msg in c` / `await c.getmany(timeout_ms=1000)` (default "
    "max_records: everything fetched)",
    "native": "benchmarks/native/bench_native_consumer.c over the system "
    "librdkafka: the ceiling",
}

# Scenario groups a client can run (the sync floor and C have no loop).
CLIENT_GROUPS = {
    "confluent_sync": ["ff", "gather", "tasks", "window", "latency"],
    "native": ["ff", "gather", "tasks", "window", "latency"],
    "asyncio_floor": ["gather", "tasks", "window"],
}


@dataclasses.dataclass(frozen=True)
class Setting:
    value_size: int
    acks: str
    linger_ms: int

    @property
    def id(self) -> str:
        size = "1KiB" if self.value_size == 1024 else f"{self.value_size}B"
        return f"{size}-acks{self.acks}-linger{self.linger_ms}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "value_size": self.value_size,
            "acks": self.acks,
            "linger_ms": self.linger_ms,
        }


@dataclasses.dataclass
class Plan:
    mode: str
    # (setting, groups) pairs: which scenario groups run at which setting
    matrix: list[tuple[Setting, list[str]]]
    repeats: int
    count: int  # message cap per throughput measurement
    seconds: float  # time cap per throughput measurement
    warmup_seconds: float
    latency_count: int
    latency_seconds: float
    lag_seconds: float
    lag_tasks: int = 1000
    gather_ns: tuple[int, ...] = (1, 10, 100, 1000)
    task_ks: tuple[int, ...] = (100, 1000)
    window_ns: tuple[int, ...] = (10_000,)  # sliding window: N in flight
    one_process_per_client: bool = False  # smoke: all groups in one process
    web_concurrency: tuple[int, ...] = (1, 10, 100, 400)
    web_seconds: float = 0.0  # 0 = no web scenario
    web_warmup_seconds: float = 1.0
    web_repeats: int = 1
    web_linger_ms: int = 5  # the web apps' producers' linger.ms
    # consumer scenarios (0 messages = none)
    consumer_messages: int = 0  # pre-filled into the run's topic
    consumer_partitions: int = 8
    consumer_value_size: int = 100
    consumer_count: int = 0  # cap per consumer (<= consumer_messages)
    consumer_seconds: float = 0.0  # cap per consumer, after the 1st message
    consumer_join_timeout: float = 60.0

    def consumer_spec_fields(self) -> dict[str, Any]:
        return {
            "count": self.consumer_count,
            "seconds": self.consumer_seconds,
            "join_timeout": self.consumer_join_timeout,
        }

    def spec_fields(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "seconds": self.seconds,
            "warmup_seconds": self.warmup_seconds,
            "latency_count": self.latency_count,
            "latency_seconds": self.latency_seconds,
            "lag_seconds": self.lag_seconds,
            "lag_tasks": self.lag_tasks,
            "gather_ns": list(self.gather_ns),
            "task_ks": list(self.task_ks),
            "window_ns": list(self.window_ns),
        }

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["matrix"] = [
            {"setting": s.as_dict(), "groups": g} for s, g in self.matrix
        ]
        return d


B100_A1_L5 = Setting(100, "1", 5)
B100_A1_L0 = Setting(100, "1", 0)
KIB_A1_L5 = Setting(1024, "1", 5)

THROUGHPUT = ["ff", "gather", "tasks", "window", "lag"]


def make_plan(mode: str) -> Plan:
    if mode == "smoke":
        return Plan(
            mode=mode,
            matrix=[(B100_A1_L5, list(GROUPS))],
            repeats=1,
            count=3000,
            seconds=0.5,
            warmup_seconds=0.0,
            latency_count=50,
            latency_seconds=0.5,
            lag_seconds=0.3,
            lag_tasks=100,
            # confluent_aio needs ~2 s per awaited round (its buffer timer):
            # keep the smoke run to two gather sizes and one task count.
            gather_ns=(1, 1000),
            task_ks=(100,),
            window_ns=(100,),
            one_process_per_client=True,
            consumer_messages=20_000,
            consumer_count=20_000,
            consumer_seconds=2.0,
            consumer_join_timeout=30.0,
        )
    if mode == "quick":
        return Plan(
            mode=mode,
            matrix=[
                (B100_A1_L5, THROUGHPUT + ["latency"]),
                (B100_A1_L0, ["ff", "gather", "latency"]),
            ],
            repeats=3,
            count=2_000_000,
            seconds=1.5,
            warmup_seconds=0.3,
            latency_count=2000,
            latency_seconds=2.0,
            lag_seconds=2.0,
            web_seconds=3.0,
            consumer_messages=1_000_000,
            consumer_count=1_000_000,
            consumer_seconds=2.0,
        )
    if mode == "default":
        return Plan(
            mode=mode,
            matrix=[
                (B100_A1_L5, THROUGHPUT + ["latency"]),
                (B100_A1_L0, ["ff", "gather", "tasks", "window",
                              "latency"]),
                (KIB_A1_L5, THROUGHPUT),
            ],
            repeats=3,
            count=5_000_000,
            seconds=3.0,
            warmup_seconds=0.5,
            latency_count=5000,
            latency_seconds=4.0,
            lag_seconds=3.0,
            web_seconds=5.0,
            web_repeats=2,
            consumer_messages=3_000_000,
            consumer_count=3_000_000,
            consumer_seconds=5.0,
        )
    if mode == "full":
        matrix = []
        for size in (100, 1024):
            for acks in ("1", "all"):
                for linger in (0, 5):
                    matrix.append(
                        (Setting(size, acks, linger), THROUGHPUT + ["latency"])
                    )
        return Plan(
            mode=mode,
            matrix=matrix,
            repeats=3,
            count=10_000_000,
            seconds=3.0,
            warmup_seconds=0.5,
            latency_count=10000,
            latency_seconds=6.0,
            lag_seconds=3.0,
            web_seconds=10.0,
            web_repeats=3,
            consumer_messages=5_000_000,
            consumer_count=5_000_000,
            consumer_seconds=8.0,
        )
    raise ValueError(f"unknown mode {mode!r}")


def client_groups(client: str, groups: list[str]) -> list[str]:
    allowed = CLIENT_GROUPS.get(client, GROUPS)
    return [g for g in groups if g in allowed]


def consumer_key(client: str, variant: str) -> str:
    return f"{client}:{variant}"


def consumer_shape(variant: str) -> str:
    """``iter`` or ``batch``: the hot loop a variant runs."""
    return variant.split("_", 1)[0]


def consumer_extra_conf(variant: str) -> dict[str, object]:
    _, _, suffix = variant.partition("_")
    return dict(CONSUMER_EXTRA_CONF.get(suffix, {}))


def alternate(items: list[str], index: int) -> list[str]:
    """Order for run number ``index``: rotate by index, reverse every other
    one, so no client always runs first or right after the same peer."""
    if not items:
        return []
    k = index % len(items)
    rotated = items[k:] + items[:k]
    return rotated[::-1] if index % 2 else rotated
