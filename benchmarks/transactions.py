"""Transactional produce: aiokafka_c against confluent-kafka's synchronous
transactional producer, in one run against one broker.

    python -m benchmarks.transactions --bootstrap HOST:PORT [--seconds 4]
        [--repeats 3] [--out benchmarks/results/<name>.md]

For each transaction size (1, 100 and 1000 messages of 100 B) each client
runs transactions back to back for ``--seconds``: begin, produce the
messages, commit (which waits for every delivery).  aiokafka_c awaits
``commit_transaction()`` and then each message's future (all done by then;
awaiting them before the commit would add linger.ms, which the commit's
flush skips), beside a 1 ms ticker that measures the loop's lag; confluent-kafka calls
``produce()`` and ``commit_transaction()`` on the calling thread.  Each
client and size runs in its own process, in alternating order, after one
warm-up transaction; medians of ``--repeats``.  Both use acks=all and
idempotence (what transactions require) and linger.ms=5.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from statistics import median
from typing import Any

from benchmarks import standalone
from benchmarks.stats import percentile

MODULE = "benchmarks.transactions"
SIZES = (1, 100, 1000)
VALUE = b"x" * 100


def conf(bootstrap: str) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap, "linger.ms": 5,
            "transactional.id": f"bench-txn-{uuid.uuid4().hex[:8]}"}


async def run_aiokafka_c(bootstrap: str, topic: str, size: int,
                         seconds: float) -> dict[str, Any]:
    from aiokafka_c import AIOProducer

    lateness: list[float] = []
    stop = False

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not stop:
            t = loop.time()
            await asyncio.sleep(0.001)
            lateness.append((loop.time() - t - 0.001) * 1000)

    async with AIOProducer(conf(bootstrap)) as p:
        await p.init_transactions(30)

        async def one() -> None:
            p.begin_transaction()
            fs = [p.produce(topic, VALUE, partition=0) for _ in range(size)]
            # commit flushes (linger ignored) and every future is done
            # before it returns; awaiting them first would wait linger.ms.
            await p.commit_transaction(30)
            await asyncio.gather(*fs)

        await one()  # warm-up
        tick = asyncio.ensure_future(ticker())
        n, t0 = 0, time.perf_counter()
        c0 = time.thread_time()
        while time.perf_counter() - t0 < seconds:
            await one()
            n += 1
        wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
        stop = True
        await tick
    return {"txn_s": n / wall, "msg_s": n * size / wall,
            "loop_cpu_us_msg": cpu / (n * size) * 1e6,
            "lag_p99_ms": percentile(lateness, 99)}


def run_confluent(bootstrap: str, topic: str, size: int,
                  seconds: float) -> dict[str, Any]:
    from confluent_kafka import Producer

    p = Producer(conf(bootstrap))
    p.init_transactions(30)

    def one() -> None:
        p.begin_transaction()
        for _ in range(size):
            while True:
                try:
                    p.produce(topic, VALUE, partition=0)
                    break
                except BufferError:
                    p.poll(0.001)
        p.commit_transaction(30)

    one()
    n, t0 = 0, time.perf_counter()
    c0 = time.thread_time()
    while time.perf_counter() - t0 < seconds:
        one()
        n += 1
    wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
    return {"txn_s": n / wall, "msg_s": n * size / wall,
            "loop_cpu_us_msg": cpu / (n * size) * 1e6, "lag_p99_ms": None}


def child(spec: dict[str, Any]) -> None:
    args = (spec["bootstrap"], spec["topic"], spec["size"], spec["seconds"])
    if spec["client"] == "aiokafka_c":
        res = asyncio.run(run_aiokafka_c(*args))
    else:
        res = run_confluent(*args)
    standalone.print_result(res)


def main() -> int:
    a = standalone.parse_args(MODULE, 4, child)
    if a is None:
        return 0
    topic = standalone.make_topic(a.bootstrap, "bench-txn")
    clients = ["aiokafka_c", "confluent_sync"]
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for rep in range(a.repeats):
        for size in SIZES:
            order = clients if (rep + size) % 2 == 0 else clients[::-1]
            for client in order:
                spec = {"client": client, "bootstrap": a.bootstrap,
                        "topic": topic, "size": size, "seconds": a.seconds}
                res = standalone.run_child(MODULE, spec)
                runs.setdefault((client, size), []).append(res)
                print(f"rep {rep + 1} size {size} {client}: "
                      f"{res['msg_s']:.0f} msg/s", file=sys.stderr)
    lines = [
        "# Transactional produce, aiokafka_c vs confluent-kafka (sync)",
        "",
        f"Command: `python -m benchmarks.transactions --seconds {a.seconds}"
        f" --repeats {a.repeats}`; {time.strftime('%Y-%m-%d %H:%M')}; "
        f"load average at end {os.getloadavg()[0]:.1f}. 100 B values, "
        "acks=all, idempotence, linger.ms=5, one partition; medians of "
        "the repeats, each client and size in its own process.",
        "",
        "| messages per transaction | client | transactions/s | msg/s | "
        "loop-thread CPU µs/msg | loop lag p99, ms | ÷ confluent msg/s |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for size in SIZES:
        base = median(x["msg_s"] for x in runs[("confluent_sync", size)])
        for client in clients:
            rs = runs[(client, size)]
            msg = median(x["msg_s"] for x in rs)
            lag = [x["lag_p99_ms"] for x in rs if x["lag_p99_ms"] is not None]
            lines.append(
                f"| {size} | {client} | {median(x['txn_s'] for x in rs):.1f}"
                f" | {msg:.0f} | "
                f"{median(x['loop_cpu_us_msg'] for x in rs):.1f} | "
                f"{median(lag):.2f} | " if lag else
                f"| {size} | {client} | {median(x['txn_s'] for x in rs):.1f}"
                f" | {msg:.0f} | "
                f"{median(x['loop_cpu_us_msg'] for x in rs):.1f} | – | ")
            lines[-1] += f"{msg / base:.2f}× |"
    text = "\n".join(lines) + "\n"
    standalone.write_report(text, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
