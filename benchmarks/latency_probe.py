"""Where a single awaited produce's latency goes, next to the C ceiling's
whole round trip, in one run against one broker.

    python -m benchmarks.latency_probe --bootstrap HOST:PORT [--seconds 3]
        [--repeats 3] [--out benchmarks/results/<name>.md]

It builds aiokafka_c with ``-DAKC_LATENCY_PROBE`` into
benchmarks/build/probe (release flags otherwise; see src/probe.h), then
sends one 100 B message at a time (acks=1, linger.ms=0, one partition),
awaiting each, on asyncio and on uvloop.  The probe build stamps four
points of each delivery's way, so every latency splits into:

- produce() -> the delivery report taken off librdkafka's queue by the
  poll thread: librdkafka's round trip, the part the C ceiling also has;
- -> the poll thread holds the GIL;
- -> call_soon_threadsafe() called: the result built and queued;
- -> the loop runs the dispatcher: call_soon_threadsafe's wake-up of the
  loop thread (a write to its self-pipe), the loop's epoll returning;
- -> the await returns: set_result and the task's next step.

The hand-off's floor is measured in pure Python too: a thread blocked in
``SimpleQueue.get()`` is handed a future, stamps the time and calls
``loop.call_soon_threadsafe(fut.set_result, None)``; the coroutine
awaiting it stamps again (the "hop floor", on each loop).

The C ceiling (benchmarks/native) runs the same loop in C twice: on one
thread (``latency``: produce, then rd_kafka_poll() until the report), and
in the shape of a binding with a poll thread (``latency_waiter``: a
second thread serves rd_kafka_poll() and wakes the producing thread from
the report through a condition variable).  Each client runs in its own process, in alternating order;
medians of the per-run p50s over ``--repeats``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from statistics import median
from typing import Any

from benchmarks import standalone

MODULE = "benchmarks.latency_probe"
VALUE = b"x" * 100
CLIENTS = ("C ceiling", "aiokafka_c asyncio", "aiokafka_c uvloop",
           "hop floor asyncio", "hop floor uvloop")
SEGMENTS = (
    ("rdkafka", "produce() → report taken by the poll thread"),
    ("gil", "→ poll thread holds the GIL"),
    ("handoff", "→ poll thread calls call_soon_threadsafe()"),
    ("wake", "→ loop runs the dispatcher"),
    ("resume", "→ await returns"),
)
WARMUP = 20
MAX_SAMPLES = 5000


def _p50(xs: list[int]) -> float:
    """Median of nanosecond samples, in µs."""
    return median(xs) / 1e3 if xs else float("nan")


async def _measure(bootstrap: str, topic: str,
                   seconds: float) -> dict[str, Any]:
    from aiokafka_c import AIOProducer, _core

    probe = getattr(_core, "_latency_probe", None)
    if probe is None:
        raise RuntimeError(f"{_core.__file__} is not a probe build")
    now = time.perf_counter_ns
    parts: dict[str, list[int]] = {name: [] for name, _ in SEGMENTS}
    total: list[int] = []
    skipped = 0
    conf = {"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "1"}
    async with AIOProducer(conf) as p:
        end = time.monotonic() + seconds
        i = 0
        while len(total) < MAX_SAMPLES and time.monotonic() < end:
            t0 = now()
            await p.produce(topic, VALUE, partition=0)
            t5 = now()
            stamps = (t0, *probe(), t5)
            i += 1
            if i <= WARMUP:
                continue
            total.append(t5 - t0)
            # Another event (a log line, a timer tick) may have moved a
            # stamp past this delivery's: such a sample is not split.
            if any(b < a for a, b in zip(stamps, stamps[1:])):
                skipped += 1
                continue
            for (name, _), a, b in zip(SEGMENTS, stamps, stamps[1:]):
                parts[name].append(b - a)
    if not total or not parts["resume"]:
        raise RuntimeError(f"{len(total)} samples, {skipped} not split")
    out = {name: _p50(xs) for name, xs in parts.items()}
    out.update(total=_p50(total), samples=len(total), skipped=skipped)
    return out


async def _hop_floor(seconds: float) -> dict[str, Any]:
    import queue
    import threading

    loop = asyncio.get_running_loop()
    handed: queue.SimpleQueue[asyncio.Future[None] | None] = \
        queue.SimpleQueue()
    stamp = [0]
    now = time.perf_counter_ns

    def thread() -> None:
        while (fut := handed.get()) is not None:
            stamp[0] = now()
            loop.call_soon_threadsafe(fut.set_result, None)

    t = threading.Thread(target=thread, name="hop-floor")
    t.start()
    hops: list[int] = []
    try:
        end = time.monotonic() + seconds
        i = 0
        while len(hops) < MAX_SAMPLES and time.monotonic() < end:
            fut = loop.create_future()
            handed.put(fut)
            await fut
            i += 1
            if i > WARMUP:
                hops.append(now() - stamp[0])
    finally:
        handed.put(None)
        t.join()
    return {"hop": _p50(hops), "samples": len(hops)}


def _native(bootstrap: str, topic: str, seconds: float) -> dict[str, Any]:
    from benchmarks.harness import NATIVE_BIN, build_native

    ok, detail = build_native()
    if not ok:
        raise RuntimeError(detail)
    out = subprocess.run(
        [str(NATIVE_BIN), "--bootstrap", bootstrap, "--topic", topic,
         "--groups", "latency,latency_waiter", "--linger", "0",
         "--acks", "1",
         "--latency-count", str(MAX_SAMPLES),
         "--latency-seconds", str(seconds)],
        capture_output=True, text=True, timeout=300, check=True).stdout
    line = [x for x in out.splitlines() if x.startswith("RESULT ")][-1]
    result = json.loads(line.split(" ", 1)[1])
    one, waiter = result["measurements"]
    if result["delivery_errors"] or not one["msgs"] or not waiter["msgs"]:
        raise RuntimeError(f"C ceiling: {line}")
    return {"total": one["p50_ms"] * 1e3, "samples": one["msgs"],
            "waiter": waiter["p50_ms"] * 1e3,
            "waiter_report": waiter["dr_p50_ms"] * 1e3}


def child(spec: dict[str, Any]) -> None:
    client = spec["client"]
    args = (spec["bootstrap"], spec["topic"], spec["seconds"])
    if client == "C ceiling":
        res = _native(*args)
    else:
        sys.path.insert(0, spec["lib"])
        work = (_hop_floor(spec["seconds"]) if client.startswith("hop")
                else _measure(*args))
        if client.endswith("uvloop"):
            import uvloop

            res = uvloop.run(work)
        else:
            res = asyncio.run(work)
    standalone.print_result(res)


def report(runs: dict[str, list[dict[str, Any]]],
           a: argparse.Namespace) -> str:
    def med(client: str, key: str) -> float:
        return float(median(r[key] for r in runs[client]))

    c = med("C ceiling", "total")
    ours = CLIENTS[1:3]
    lines = [
        "# Where a single awaited produce's latency goes",
        "",
        f"Command: `python -m {MODULE} --seconds {a.seconds} --repeats "
        f"{a.repeats}`; {time.strftime('%Y-%m-%d %H:%M')}; load average "
        f"at end {os.getloadavg()[0]:.1f}. 100 B, acks=1, linger.ms=0, one "
        "partition, real broker on loopback; aiokafka_c is a probe build "
        "(`-DAKC_LATENCY_PROBE`). p50 in µs, medians of the repeats; the "
        "segments' p50s need not add up to the total's.",
        "",
        "| p50, µs | " + " | ".join(ours) + " |",
        "|---|" + "---:|" * len(ours),
    ]
    for key, label in SEGMENTS:
        lines.append(f"| {label} | " + " | ".join(
            f"{med(x, key):.1f}" for x in ours) + " |")
    lines += [
        "| **total** | " + " | ".join(
            f"**{med(x, 'total'):.1f}**" for x in ours) + " |",
        "| after the report was taken (GIL → await returns) | " + " | ".join(
            f"{sum(med(x, k) for k, _ in SEGMENTS[1:]):.1f}"
            for x in ours) + " |",
        "| hop floor: a Python thread's call_soon_threadsafe(set_result) "
        "→ await returns | " + " | ".join(
            f"{med(f'hop floor {x.split()[-1]}', 'hop'):.1f}"
            for x in ours) + " |",
        "| samples per run / not split | " + " | ".join(
            f"{med(x, 'samples'):.0f} / {med(x, 'skipped'):.0f}"
            for x in ours) + " |",
        "",
        "| C ceiling, p50 µs | one thread | with a waiter thread |",
        "|---|---:|---:|",
        f"| produce → report on the waiting thread | {c:.1f} | "
        f"{med('C ceiling', 'waiter_report'):.1f} |",
        f"| **total** | **{c:.1f}** | **{med('C ceiling', 'waiter'):.1f}** |",
        "",
        "| aiokafka_c total − C ceiling, µs | " + " | ".join(ours) + " |",
        "|---|" + "---:|" * len(ours),
        "| − C on one thread | " + " | ".join(
            f"{med(x, 'total') - c:.1f}" for x in ours) + " |",
        "| − C with a waiter thread | " + " | ".join(
            f"{med(x, 'total') - med('C ceiling', 'waiter'):.1f}"
            for x in ours) + " |",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    a = standalone.parse_args(MODULE, 3, child)
    if a is None:
        return 0
    from benchmarks.harness import BUILD, build_extension

    lib = BUILD / "probe"
    ok, detail = build_extension(lib, ("AKC_LATENCY_PROBE",))
    if not ok:
        raise SystemExit(detail)
    topic = standalone.make_topic(a.bootstrap, "bench-latency")
    runs: dict[str, list[dict[str, Any]]] = {}
    for rep in range(a.repeats):
        for client in CLIENTS if rep % 2 == 0 else CLIENTS[::-1]:
            res = standalone.run_child(MODULE, {
                "client": client, "bootstrap": a.bootstrap, "topic": topic,
                "seconds": a.seconds, "lib": str(lib)})
            runs.setdefault(client, []).append(res)
            p50 = res.get("total", res.get("hop"))
            print(f"rep {rep + 1} {client}: p50 {p50:.1f} µs",
                  file=sys.stderr)
    standalone.write_report(report(runs, a), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
