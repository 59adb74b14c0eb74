"""Where the loop thread's time goes per awaited message: a gather-1000
loop to run under ``perf``, and a fold of the recording into buckets.

    perf record -F 999 --call-graph dwarf,16384 -o kc.data -- \\
        python -m benchmarks.loop_profile run --bootstrap H:P
    perf record ... -o floor.data -- python -m benchmarks.loop_profile run --floor
    python -m benchmarks.loop_profile fold kc.data --hz 999

``run`` prints msg/s and loop-thread CPU µs per message, and writes the
message count to ``<perf data>.msgs`` when ``--count-file`` is given
(``fold`` reads it).  ``fold`` sorts every sample of the busiest thread
(the loop's) into one bucket by the native frames on its stack (the
first that matches, in this order): librdkafka, making the Future,
set_result's scheduling of callbacks, the garbage collector,
aiokafka_c's own C code, and the rest (the interpreter running asyncio,
gather and the benchmark loop).  Python 3.11 has no perf trampoline, so
Python frames are not told apart.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import time
from pathlib import Path

N = 1000
VALUE = b"x" * 100

BUCKETS = (
    ("startup/import", ("PyImport_",)),
    ("librdkafka", ("rd_kafka",)),
    ("Future() creation", ("akc_dispatcher_new_future",)),
    ("set_result -> call_soon", ("future_schedule_callbacks",)),
    ("gc", ("gc_collect",)),
    ("aiokafka_c own C", ("akc_", "producer_", "dispatcher_", "message_",
                          "deliver", "batch_", "inflight", "payload")),
)


def _floor_produce(loop: asyncio.AbstractEventLoop):  # type: ignore[no-untyped-def]
    """The benchmark floor's produce(): a future resolved by one loop
    callback per batch, no Kafka."""
    pending: list[asyncio.Future[None]] = []

    def resolve() -> None:
        batch = pending[:]
        pending.clear()
        for f in batch:
            if not f.done():
                f.set_result(None)

    def produce(_topic: str, _value: bytes) -> asyncio.Future[None]:
        f = loop.create_future()
        if not pending:
            loop.call_soon(resolve)
        pending.append(f)
        return f

    return produce


async def _run(a: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    p = None
    if a.floor:
        produce = _floor_produce(loop)
    else:
        from aiokafka_c import AIOProducer

        p = AIOProducer({"bootstrap.servers": a.bootstrap, "acks": "1",
                         "linger.ms": a.linger})
        produce = p.produce

    async def one_round() -> None:
        await asyncio.gather(*[produce(a.topic, VALUE) for _ in range(N)])

    for _ in range(50):
        await one_round()
    n, t0, c0 = 0, time.perf_counter(), time.thread_time()
    while time.perf_counter() - t0 < a.seconds:
        await one_round()
        n += N
    wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
    print(f"{'floor' if a.floor else 'aiokafka_c'}: {n / wall:.0f} msg/s, "
          f"loop thread {cpu / n * 1e6:.3f} us/msg")
    if p is not None:
        await p.close()
    return n


def _stacks(data: str) -> list[tuple[str, list[str]]]:
    out = subprocess.run(["perf", "script", "-i", data, "-F", "tid,ip,sym"],
                         capture_output=True, text=True, check=True).stdout
    stacks: list[tuple[str, list[str]]] = []
    tid, cur = "", []
    for line in out.splitlines():
        parts = line.split()
        if not parts:
            if cur:
                stacks.append((tid, cur))
            cur = []
        elif len(parts) == 1 and parts[0].isdigit():
            tid = parts[0]
        else:
            cur.append(parts[1] if len(parts) > 1 else "?")
    if cur:
        stacks.append((tid, cur))
    return stacks


def _bucket(frames: list[str]) -> str:
    for name, prefixes in BUCKETS:
        if any(f.startswith(prefixes) for f in frames):
            return name
    return "python/asyncio other"


def _fold(a: argparse.Namespace) -> None:
    stacks = _stacks(a.data)
    loop_tid = collections.Counter(t for t, _ in stacks).most_common(1)[0][0]
    counts = collections.Counter(_bucket(s) for t, s in stacks
                                 if t == loop_tid)
    msgs = a.msgs or int(Path(a.data + ".msgs").read_text())
    total = sum(counts.values())
    for name, n in counts.most_common():
        print(f"  {name:26s} {n:6d} {n / total * 100:5.1f}%  "
              f"{n / a.hz / msgs * 1e6:6.3f} us/msg")
    print(f"  {'loop thread, all':26s} {total:6d} 100.0%  "
          f"{total / a.hz / msgs * 1e6:6.3f} us/msg")


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.loop_profile")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--bootstrap", default="127.0.0.1:9092")
    r.add_argument("--topic", default="bench-loop-profile")
    r.add_argument("--linger", type=int, default=5)
    r.add_argument("--seconds", type=float, default=3.0)
    r.add_argument("--floor", action="store_true",
                   help="no Kafka: the asyncio floor's futures")
    r.add_argument("--count-file", help="write the message count here")
    f = sub.add_parser("fold")
    f.add_argument("data")
    f.add_argument("--hz", type=float, default=999)
    f.add_argument("--msgs", type=int, default=0,
                   help="messages sent (default: read <data>.msgs)")
    a = ap.parse_args()
    if a.cmd == "run":
        n = asyncio.run(_run(a))
        if a.count_file:
            Path(a.count_file).write_text(str(n))
    else:
        _fold(a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
