"""Batches of awaited messages: aiokafka_c's produce_batch() against the
same batch as produce() futures gathered, confluent-kafka's synchronous
produce_batch() + poll(), and the C ceiling (benchmarks/native, its
gather mode: produce N, then serve reports until all N arrived), in one
run against one broker.

    python -m benchmarks.produce_batch --bootstrap HOST:PORT [--seconds 3]
        [--repeats 3] [--out benchmarks/results/<name>.md]
    python -m benchmarks.produce_batch --mock ...

``--mock`` gives every process librdkafka's in-process mock cluster
(``test.mock.num.brokers=1``) instead of a broker: no network, no broker
process, so it measures the clients with the broker's cost taken out
(confluent-kafka's mock is its bundled librdkafka's).

Each client sends batches of 1000 and 10000 messages of 100 B back to
back for ``--seconds`` (acks=1, linger.ms=5, one partition) and reports
msg/s and the CPU time of the calling (loop) thread per message.  Each
client and size runs in its own process, in alternating order, after a
warm-up; medians of ``--repeats``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from statistics import median
from typing import Any

from benchmarks import standalone

MODULE = "benchmarks.produce_batch"
SIZES = (1000, 10000)
VALUE = b"x" * 100
CLIENTS = ("aiokafka_c batch", "aiokafka_c gather", "confluent batch",
           "C ceiling")


def conf(bootstrap: str | None) -> dict[str, Any]:
    """bootstrap None: the in-process mock cluster."""
    where = ({"bootstrap.servers": bootstrap} if bootstrap else
             {"test.mock.num.brokers": 1})
    return {**where, "linger.ms": 5, "acks": "1"}


def timed(step: Any, size: int, seconds: float) -> dict[str, Any]:
    """Runs step() (one batch) for seconds; msg/s and thread CPU/msg."""
    n, t0, c0 = 0, time.perf_counter(), time.thread_time()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
    return {"msg_s": n * size / wall, "cpu_us_msg": cpu / (n * size) * 1e6}


async def run_aiokafka_c(bootstrap: str | None, topic: str, size: int,
                         seconds: float, gather: bool) -> dict[str, Any]:
    from aiokafka_c import AIOProducer

    batch = [VALUE] * size
    async with AIOProducer(conf(bootstrap)) as p:

        async def one() -> None:
            if gather:
                out = await asyncio.gather(
                    *[p.produce(topic, v, partition=0) for v in batch])
            else:
                out = await p.produce_batch(topic, batch, partition=0)
                bad = [m.error() for m in out if m.error() is not None]
                if bad:
                    raise RuntimeError(f"{len(bad)} failed: {bad[0]}")

        await one()
        n, t0, c0 = 0, time.perf_counter(), time.thread_time()
        while time.perf_counter() - t0 < seconds:
            await one()
            n += 1
        wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
    return {"msg_s": n * size / wall, "cpu_us_msg": cpu / (n * size) * 1e6}


def run_confluent(bootstrap: str | None, topic: str, size: int,
                  seconds: float) -> dict[str, Any]:
    from confluent_kafka import Producer

    p = Producer(conf(bootstrap))
    batch = [{"value": VALUE} for _ in range(size)]
    left = [0]
    failed: list[Any] = []

    def report(err: Any, _msg: Any) -> None:
        left[0] -= 1
        if err is not None:
            failed.append(err)

    def one() -> None:
        left[0] = size
        queued = p.produce_batch(topic, batch, partition=0,
                                 on_delivery=report)
        if queued != size:
            raise RuntimeError(f"confluent queued {queued} of {size}")
        while left[0] > 0:
            p.poll(0.1)
        if failed:
            raise RuntimeError(f"{len(failed)} failed: {failed[0]}")

    one()
    return timed(one, size, seconds)


def run_native(bootstrap: str | None, topic: str, size: int,
               seconds: float) -> dict[str, Any]:
    from benchmarks.harness import NATIVE_BIN, build_native

    ok, detail = build_native()
    if not ok:
        raise RuntimeError(detail)
    # With the mock cluster librdkafka replaces bootstrap.servers by its own.
    where = (["--bootstrap", bootstrap] if bootstrap else
             ["--bootstrap", "mock:0", "--conf", "test.mock.num.brokers=1"])
    out = subprocess.run(
        [str(NATIVE_BIN), *where, "--topic", topic,
         "--groups", "gather", "--gather", str(size), "--linger", "5",
         "--acks", "1", "--seconds", str(seconds), "--warmup", "1"],
        capture_output=True, text=True, timeout=300, check=True).stdout
    line = [x for x in out.splitlines() if x.startswith("RESULT ")][-1]
    [m] = json.loads(line.split(" ", 1)[1])["measurements"]
    return {"msg_s": m["rate"], "cpu_us_msg": m["cpu_loop_us"]}


def child(spec: dict[str, Any]) -> None:
    client = spec.pop("client")
    args = (spec["bootstrap"], spec["topic"], spec["size"], spec["seconds"])
    if client.startswith("aiokafka_c"):
        res = asyncio.run(run_aiokafka_c(*args, gather="gather" in client))
    elif client == "confluent batch":
        res = run_confluent(*args)
    else:
        res = run_native(*args)
    standalone.print_result(res)


def report(runs: dict[tuple[str, int], list[dict[str, Any]]],
           a: argparse.Namespace) -> str:
    mock = " --mock" if a.mock else ""
    where = ("librdkafka's in-process mock cluster in every process"
             if a.mock else "real broker on loopback")
    lines = [
        "# Batches of awaited messages: produce_batch()",
        "",
        f"Command: `python -m benchmarks.produce_batch{mock} --seconds "
        f"{a.seconds} --repeats {a.repeats}`; "
        f"{time.strftime('%Y-%m-%d %H:%M')}; "
        f"load average at end {os.getloadavg()[0]:.1f}. 100 B values, "
        f"acks=1, linger.ms=5, one partition, {where}; "
        "medians of the repeats, each client and size in its own process.",
        "",
        "| batch | client | msg/s | calling-thread CPU µs/msg | "
        "÷ C ceiling msg/s | ÷ confluent msg/s |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for size in SIZES:
        med = {c: (median(x["msg_s"] for x in runs[(c, size)]),
                   median(x["cpu_us_msg"] for x in runs[(c, size)]))
               for c in CLIENTS}
        for c in CLIENTS:
            msg, cpu = med[c]
            lines.append(
                f"| {size} | {c} | {msg:.0f} | {cpu:.2f} | "
                f"{msg / med['C ceiling'][0]:.2f}× | "
                f"{msg / med['confluent batch'][0]:.2f}× |")
    return "\n".join(lines) + "\n"


def main() -> int:
    a = standalone.parse_args(MODULE, 3, child, mock=True)
    if a is None:
        return 0
    if a.mock:
        a.bootstrap = None  # every mock cluster creates the topic itself
        topic = "bench-batch-mock"
    else:
        topic = standalone.make_topic(a.bootstrap, "bench-batch")
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for rep in range(a.repeats):
        for size in SIZES:
            order = CLIENTS if (rep + size // 1000) % 2 == 0 else CLIENTS[::-1]
            for client in order:
                res = standalone.run_child(MODULE, {
                    "client": client, "bootstrap": a.bootstrap,
                    "topic": topic, "size": size, "seconds": a.seconds})
                runs.setdefault((client, size), []).append(res)
                print(f"rep {rep + 1} batch {size} {client}: "
                      f"{res['msg_s']:.0f} msg/s, "
                      f"{res['cpu_us_msg']:.2f} µs/msg", file=sys.stderr)
    standalone.write_report(report(runs, a), a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
