"""What a run measures: clients, producer settings, scenario sizes per mode.

Modes (``python -m benchmarks [--smoke|--quick|--full]``):

* ``smoke``   -- seconds; every client once, every scenario, tiny caps; what
  the test suite runs so the harness cannot rot.  No web load test.
* ``quick``   -- 100 B, acks=1: every scenario at linger.ms=5, and
  fire-and-forget, gather and latency at linger.ms=0; 3 repeats; short
  web test.
* default     -- as quick plus tasks at linger.ms=0 and every scenario for
  1 KiB values at linger.ms=5; longer measurements; 3 repeats.
* ``full``    -- the whole matrix: {100 B, 1 KiB} x {acks=1, acks=all} x
  {linger.ms 0, 5} for every scenario; 3 repeats; long web test.
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
    "event loop: the Python floor (gather/tasks/latency: produce then "
    "flush()/poll())",
    "aiokafka": "aiokafka.AIOKafkaProducer: send() / send_and_wait(), "
    "pure Python, default max_batch_size",
    "native": "benchmarks/native/bench_native.c over the system librdkafka: "
    "the ceiling",
    "asyncio_floor": "no Kafka: futures resolved in batches by one loop "
    "callback -- what asyncio itself costs per awaited message (gather and "
    "tasks only); the floor under every asyncio client",
}

GROUPS = ["ff", "gather", "tasks", "latency", "lag"]

# Scenario groups a client can run (the sync floor and C have no loop).
CLIENT_GROUPS = {
    "confluent_sync": ["ff", "gather", "tasks", "latency"],
    "native": ["ff", "gather", "tasks", "latency"],
    "asyncio_floor": ["gather", "tasks"],
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
    one_process_per_client: bool = False  # smoke: all groups in one process
    web_concurrency: tuple[int, ...] = (1, 10, 100, 400)
    web_seconds: float = 0.0  # 0 = no web scenario
    web_warmup_seconds: float = 1.0
    web_repeats: int = 1

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

THROUGHPUT = ["ff", "gather", "tasks", "lag"]


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
            one_process_per_client=True,
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
        )
    if mode == "default":
        return Plan(
            mode=mode,
            matrix=[
                (B100_A1_L5, THROUGHPUT + ["latency"]),
                (B100_A1_L0, ["ff", "gather", "tasks", "latency"]),
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
        )
    raise ValueError(f"unknown mode {mode!r}")


def client_groups(client: str, groups: list[str]) -> list[str]:
    allowed = CLIENT_GROUPS.get(client, GROUPS)
    return [g for g in groups if g in allowed]


def alternate(items: list[str], index: int) -> list[str]:
    """Order for run number ``index``: rotate by index, reverse every other
    one, so no client always runs first or right after the same peer."""
    if not items:
        return []
    k = index % len(items)
    rotated = items[k:] + items[:k]
    return rotated[::-1] if index % 2 else rotated
