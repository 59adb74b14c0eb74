"""Hypothesis search over AIOConsumer's argument handling, run as a child
process by tests/test_consumer.py::test_bad_arguments_raise_cleanly (so
a crash is a failed test, not a dead session):

    python -m tests.consumer_args_hyp

Every example calls one method (or TopicPartition / AIOConsumer) with
drawn arguments.  When an argument has a wrong type (the others valid),
the call must raise TypeError or ValueError synchronously.  With values
of the right type but odd (negative, huge, NaN, empty), it must raise
TypeError/ValueError/OverflowError/KafkaException or return normally;
a returned future must complete or be cancellable.  The consumer stays
usable and closes within a bound at the end.  The broker is an unused
loopback port: nothing here needs one."""

from __future__ import annotations

import asyncio
import math
import os
import sys
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aiokafka_c import (
    AIOConsumer,
    KafkaException,
    TopicPartition,
)
from tests.helpers import unused_port

CLEAN = (TypeError, ValueError, OverflowError, KafkaException)


def _cb(consumer: Any, partitions: Any) -> None:
    pass


class Kind:
    """One parameter type: valid values, wrong-type values, odd values."""

    def __init__(self, valid: list[Any], bad: list[Any],
                 odd: list[Any]) -> None:
        self.valid, self.bad, self.odd = valid, bad, odd


def tp(*a: Any) -> Any:
    """A TopicPartition, or the exception its constructor raised (then a
    wrong argument of the method's own: still must not crash)."""
    try:
        return TopicPartition(*a)
    except CLEAN as exc:
        return exc


TOPICS = Kind(
    valid=[["t"], ["t", "u"], ["^t.*"]],
    bad=[1, 1.5, None, b"t", object(), [1], [None], [b"t"], ["t", 3],
         "t", {"t": 1}],
    odd=[[], [""], ["t" * 300], ["a\u00e9"], ["^("], ("t",)],
)
PARTITIONS = Kind(
    valid=[[tp("t", 0)], [tp("t", 0, 5), tp("t", 1, -2)], []],
    bad=[1, "t", b"t", object(), [1], ["t"], [("t", 0)], [None],
         tp("t", 0)],
    odd=[[tp("", 0)], [tp("t", -5)], [tp("t", 2**31 - 1, 2**62)],
         [tp("t", 0), tp("t", 0)], [tp("t", 0, -1000)], None],
)
PARTITION = Kind(
    valid=[tp("t", 0, 0), tp("t", 0, 3)],
    bad=[1, "t", None, [tp("t", 0)], object(), ("t", 0)],
    odd=[tp("t", -1, 0), tp("", 0, 0), tp("t", 0, -1001), tp("t", 2**31 - 1)],
)
TIMEOUT = Kind(
    valid=[None, 0.05, 0, 1],
    bad=["1", b"1", [], object(), {}, 1j],
    odd=[-1, -0.5, math.nan, math.inf, -math.inf, 1e300, True, 2**70],
)
NUM = Kind(
    valid=[1, 5],
    bad=["1", 1.5, [], object(), b"1"],
    odd=[0, -1, 2**31, 2**70, -(2**70), True, 10**6],
)
MESSAGE = Kind(
    valid=[None],
    bad=[1, "m", b"m", tp("t", 0), object(), [tp("t", 0)]],
    odd=[],
)
OFFSETS = Kind(
    valid=[None, [tp("t", 0, 1)]],
    bad=[1, "t", [1], [("t", 0, 1)], object(), tp("t", 0, 1)],
    odd=[[], [tp("t", 0, -1001)], [tp("t", 0, 2**63 - 1)], [tp("t", 0)]],
)
CALLBACK = Kind(valid=[None, _cb], bad=[1, "f", object(), b"f"], odd=[])
TOPIC = Kind(valid=[None, "t"], bad=[1, b"t", object(), ["t"]],
             odd=["", "t" * 300, "\u00e9"])
FLAG = Kind(valid=[False, True], bad=[], odd=[0, 1, "yes", None])

#: name -> [(keyword or None for positional, kind)], all the parameters
METHODS: dict[str, list[tuple[str | None, Kind]]] = {
    "subscribe": [(None, TOPICS), ("on_assign", CALLBACK),
                  ("on_revoke", CALLBACK), ("on_lost", CALLBACK)],
    "assign": [(None, PARTITIONS)],
    "incremental_assign": [(None, PARTITIONS)],
    "incremental_unassign": [(None, PARTITIONS)],
    "poll": [("timeout", TIMEOUT)],
    "consume": [("num_messages", NUM), ("timeout", TIMEOUT)],
    "commit": [("message", MESSAGE), ("offsets", OFFSETS)],
    "store_offsets": [("message", MESSAGE), ("offsets", OFFSETS)],
    "committed": [(None, PARTITIONS), ("timeout", TIMEOUT)],
    "position": [(None, PARTITIONS)],
    "seek": [(None, PARTITION)],
    "pause": [(None, PARTITIONS)],
    "resume": [(None, PARTITIONS)],
    "get_watermark_offsets": [(None, PARTITION), ("timeout", TIMEOUT),
                              ("cached", FLAG)],
    "offsets_for_times": [(None, PARTITIONS), ("timeout", TIMEOUT)],
    "list_topics": [("topic", TOPIC), ("timeout", TIMEOUT)],
}

TP_FIELDS = [
    ("topic", Kind(["t"], [1, None, b"t", object(), ["t"]], ["", "\u00e9"])),
    ("partition", Kind([0, 3], ["0", 1.5, None, object()],
                       [-1, 2**31, 2**70, True])),
    ("offset", Kind([0, -2], ["0", 1.5, None, object()],
                    [-1001, 2**63, -(2**70)])),
    ("metadata", Kind([None, "m"], [1, b"m", object()], ["", "\u00e9" * 50])),
]

CONF_KEYS = [
    ("max_buffer_messages", Kind([10, 100000], ["10", 1.5, None, object()],
                                 [0, -1, 2**70, True])),
    ("max_buffer_bytes", Kind([1 << 20], ["1", 1.5, None, object()],
                              [0, -1, 2**70])),
    ("on_commit", Kind([None, _cb], [1, "f", object()], [])),
    ("error_cb", Kind([print], [1, "f", object()], [])),
    ("logger", Kind([], [5, "x", object()], [])),
]


@st.composite
def call_args(draw: Any, params: list[tuple[str | None, Kind]]) -> Any:
    """(args, kwargs, bad) with at most one wrong-typed argument; when
    there is one, every other argument is valid."""
    mode = draw(st.sampled_from(["valid", "bad", "odd"]))
    bad_at = -1
    if mode == "bad":
        choices = [i for i, (_, k) in enumerate(params) if k.bad]
        if not choices:
            mode = "odd"
        else:
            bad_at = draw(st.sampled_from(choices))
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for i, (name, kind) in enumerate(params):
        if i == bad_at:
            value = draw(st.sampled_from(kind.bad))
        elif mode == "odd" and kind.odd and draw(st.booleans()):
            value = draw(st.sampled_from(kind.odd))
        elif kind.valid:
            if name is not None and not draw(st.integers(0, 3)):
                continue  # leave a keyword out: its default
            value = draw(st.sampled_from(kind.valid))
        else:
            continue
        if name is None:
            args.append(value)
        else:
            kwargs[name] = value
    return args, kwargs, bad_at >= 0


STATE: dict[str, Any] = {}
STATS = {"bad": 0, "raised": 0, "returned": 0}
#: distinct failures (first example of each): the search goes on after
#: one, so a single run lists every broken method
FAILURES: dict[str, str] = {}
TIMES: dict[str, float] = {}


def fail(key: str, text: str) -> None:
    FAILURES.setdefault(key, text)


def check_call(fn: Any, args: list[Any], kwargs: dict[str, Any],
               bad: bool, what: str) -> Any:
    try:
        result = fn(*args, **kwargs)
    except CLEAN as exc:
        STATS["raised"] += 1
        if bad:
            STATS["bad"] += 1
            if not isinstance(exc, (TypeError, ValueError)):
                fail(f"{what}:{type(exc).__name__}",
                     f"{what}(*{args!r}, **{kwargs!r}) raised {exc!r}")
        return None
    if bad:
        fail(f"{what}:accepted:{sorted(kwargs)}:{len(args)}",
             f"{what}(*{args!r}, **{kwargs!r}) accepted a wrong type "
             f"and returned {result!r}")
    STATS["returned"] += 1
    return result


async def settle(result: Any) -> None:
    """A returned awaitable completes cleanly or is cancelled."""
    if result is None or not hasattr(result, "__await__"):
        return
    fut = asyncio.ensure_future(result)
    try:
        await asyncio.wait_for(asyncio.shield(fut), 0.05)
    except asyncio.TimeoutError:
        fut.cancel()
        try:
            await fut
        except asyncio.CancelledError:
            pass
        except CLEAN:
            pass
    except CLEAN:
        pass


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(data=st.data())
def hyp_arguments(data: Any) -> None:
    loop: asyncio.AbstractEventLoop = STATE["loop"]
    c: AIOConsumer = STATE["consumer"]
    target = data.draw(st.sampled_from(
        [*METHODS, "TopicPartition", "AIOConsumer", "tp_setattr"]))

    async def run() -> None:
        if target in METHODS:
            args, kwargs, bad = data.draw(call_args(METHODS[target]))
            res = check_call(getattr(c, target), args, kwargs, bad, target)
            await settle(res)
        elif target == "TopicPartition":
            args, kwargs, bad = data.draw(call_args(
                [(n, k) for n, k in TP_FIELDS]))
            res = check_call(TopicPartition, args, kwargs, bad, target)
            if res is not None:
                repr(res), hash(res)
        elif target == "tp_setattr":
            name, kind = data.draw(st.sampled_from(TP_FIELDS[2:]))
            value = data.draw(st.sampled_from(kind.bad))
            t = TopicPartition("t", 0)
            check_call(setattr, [t, name, value], {}, True, "setattr")
        else:
            args, kwargs, bad = data.draw(call_args(CONF_KEYS))
            conf = {"bootstrap.servers": STATE["bootstrap"],
                    "group.id": "hyp", **kwargs}
            extra = data.draw(st.sampled_from(
                [None, "not a dict", [("group.id", "x")]]))
            if extra is not None:
                conf, bad = extra, True  # type: ignore[assignment]
            made = check_call(AIOConsumer, [conf], {}, bad, "AIOConsumer")
            if made is not None:
                await asyncio.wait_for(made.close(5), 30)

    import time

    t0 = time.monotonic()
    try:
        loop.run_until_complete(run())
    except Exception as exc:  # noqa: BLE001 - collected
        fail(f"{target}:{type(exc).__name__}", f"{target}: {exc!r}")
    TIMES[target] = TIMES.get(target, 0.0) + time.monotonic() - t0


def main() -> int:
    loop = asyncio.new_event_loop()
    STATE["loop"] = loop
    STATE["bootstrap"] = f"127.0.0.1:{unused_port()}"

    async def make() -> AIOConsumer:
        return AIOConsumer({"bootstrap.servers": STATE["bootstrap"],
                            "group.id": "hyp",
                            "reconnect.backoff.max.ms": 100})

    STATE["consumer"] = c = loop.run_until_complete(make())
    hyp_arguments()

    async def finish() -> Any:
        # Still usable, and it closes within its bound.
        m = await asyncio.wait_for(c.poll(0.01), 10)
        await asyncio.wait_for(c.close(5), 30)
        return m

    slow = sorted(TIMES.items(), key=lambda kv: -kv[1])[:5]
    print(f"stats: {STATS}; slowest targets: {slow}", flush=True)
    try:
        m = loop.run_until_complete(finish())
        if not (m is None or m.error() is not None):
            fail("finish", f"poll() after the search returned {m!r}")
    except Exception as exc:  # noqa: BLE001 - reported
        fail("finish", f"poll(0.01) + close(5) after the search: {exc!r}")
    if FAILURES:
        print(f"{len(FAILURES)} distinct failures:", flush=True)
        for text in FAILURES.values():
            print("  " + text, flush=True)
        os._exit(1)  # never join a poll thread left stuck
    loop.close()
    assert STATS["bad"] > 50, STATS
    print("examples passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
