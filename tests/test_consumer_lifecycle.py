"""AIOConsumer lifecycle: close (commits, leaves the group, wakes waiters,
bounded with the broker gone), closing a cooperative member before its
first assignment, consumers never closed (interpreter exit, garbage
collection), bounded memory with a slow reader, refcounts over 200k
messages, error_cb on a broker going down, and at-least-once across a
SIGKILL.  Anything that could abort or hang the interpreter runs in a
child process."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
from typing import Any

import pytest

from aiokafka_c import (
    OFFSET_BEGINNING,
    AIOConsumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from tests.conftest import TopicFactory, make_topic
from tests.consumer_helpers import (
    SLOW,
    assert_clean_exit,
    committed,
    consumer_conf,
    mock_cluster,
    produce,
    run_script,
    take,
    unique,
    wait_assigned,
    watermarks,
)
from tests.helpers import wait_until

BIG = 200_000  # messages in the shared big topic
BIG_PARTITIONS = 4


@pytest.fixture(scope="module")
def big_topic(kafka_bootstrap: str) -> str:
    """200k messages of ~100 bytes over 4 partitions, produced once."""
    topic = make_topic(kafka_bootstrap, BIG_PARTITIONS)
    produce(kafka_bootstrap, topic, BIG, partitions=BIG_PARTITIONS,
            value_size=94)
    return topic


# ---- close ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_close_commits_and_leaves_the_group(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """With a 60 s session timeout and auto-commit interval, only close()
    can have committed, and a new member gets the partition long before
    the broker would have expired the old one."""
    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 50)
    group = unique("g")
    c1 = AIOConsumer(consumer_conf(kafka_bootstrap, group,
                                   session_timeout_ms=60000,
                                   auto_commit_interval_ms=60000))
    await c1.subscribe([topic])
    for i in range(20):
        m = await asyncio.wait_for(c1.poll(SLOW), SLOW + 10)
        assert m is not None and m.offset() == i
    await asyncio.wait_for(c1.close(), SLOW)
    final = committed(kafka_bootstrap, group, topic)[0]
    assert final in (19, 20)  # released, or everything handed out

    async with AIOConsumer(consumer_conf(kafka_bootstrap, group)) as c2:
        await c2.subscribe([topic])
        await wait_assigned(c2, 1, timeout=25)  # < c1's 60 s session
        rest = await take(c2, 50 - final)
    assert [m.offset() for m in rest] == list(range(final, 50))


@pytest.mark.asyncio
async def test_close_wakes_waiters_ends_iteration_and_is_idempotent(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = new_topic(1)
    c = AIOConsumer(consumer_conf(kafka_bootstrap))
    await c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    polling = asyncio.ensure_future(c.poll())
    consuming = asyncio.ensure_future(c.consume(10))

    async def iterate() -> int:
        n = 0
        async for _ in c:
            n += 1
        return n

    iterating = asyncio.ensure_future(iterate())
    await asyncio.sleep(0.3)
    assert not (polling.done() or consuming.done() or iterating.done())
    closing = c.close()
    await asyncio.wait_for(closing, SLOW)
    for fut in (polling, consuming):
        with pytest.raises(KafkaException) as info:
            await asyncio.wait_for(fut, 10)
        assert info.value.args[0].code() == KafkaError._DESTROY
    assert await asyncio.wait_for(iterating, 10) == 0  # just ends
    await asyncio.wait_for(c.close(), 10)  # idempotent
    with pytest.raises(RuntimeError):
        await c.poll(0.1)
    with pytest.raises(RuntimeError):
        await c.consume(1, 0.1)
    with pytest.raises(RuntimeError):
        await c.commit()
    with pytest.raises(RuntimeError):
        await c.subscribe([topic])
    with pytest.raises(StopAsyncIteration):
        await c.__anext__()


@pytest.mark.asyncio
async def test_close_is_bounded_when_the_broker_is_gone() -> None:
    async with mock_cluster() as (p, address):
        await p.produce("t", b"before", partition=0)
        c = AIOConsumer(consumer_conf(address, session_timeout_ms=45000,
                                      reconnect_backoff_max_ms=100))
        await c.subscribe(["t"])
        m = await asyncio.wait_for(c.poll(SLOW), SLOW + 10)
        assert m is not None and m.value() == b"before"
        p._mock_set_broker_up(1, False)
        await asyncio.sleep(0.5)
        # Without the bound this waits for the 45 s session timeout.
        await asyncio.wait_for(c.close(timeout=2), 20)
        p._mock_set_broker_up(1, True)


@pytest.mark.asyncio
async def test_error_cb_reports_the_broker_going_down() -> None:
    loop_thread = threading.get_ident()
    errors: list[tuple[KafkaError, int]] = []

    async def error_cb(err: KafkaError) -> None:
        errors.append((err, threading.get_ident()))

    async with mock_cluster() as (p, address):
        await p.produce("t", b"before", partition=0)
        c = AIOConsumer(consumer_conf(address, error_cb=error_cb,
                                      reconnect_backoff_max_ms=100))
        await c.assign([TopicPartition("t", 0, OFFSET_BEGINNING)])
        assert (await take(c, 1))[0].value() == b"before"
        assert errors == []
        p._mock_set_broker_up(1, False)
        await wait_until(
            lambda: {e.code() for e, _ in errors}
            & {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN},
            SLOW, "a broker-down error_cb call")
        p._mock_set_broker_up(1, True)
        await p.produce("t", b"after", partition=0)
        assert (await take(c, 1))[0].value() == b"after"
        await asyncio.wait_for(c.close(5), SLOW)
    assert all(t == loop_thread for _, t in errors)


# ---- cooperative close before the first assignment (librdkafka 2.0.2) ----------


@pytest.mark.parametrize(
    "when", ["before_subscribe_applied", "after_subscribe",
             "during_async_on_assign"])
def test_cooperative_close_before_the_first_assignment(
    kafka_bootstrap: str, new_topic: TopicFactory, when: str
) -> None:
    """2.0.2 asserts in rd_kafka_sticky_assignor_state_destroy when a
    cooperative-sticky member is destroyed before its first assignment
    (fixed in 2.3.0): in a child process, an abort is a failed test."""
    topic = new_topic(2)
    r = run_script(f"""
        import asyncio
        from aiokafka_c import AIOConsumer
        async def main():
            started = asyncio.Event()
            async def on_assign(c, ps):
                started.set()
                await asyncio.sleep(30)
            c = AIOConsumer({{
                "bootstrap.servers": "{kafka_bootstrap}",
                "group.id": "{unique("g")}",
                "partition.assignment.strategy": "cooperative-sticky"}})
            fut = c.subscribe(["{topic}"], on_assign=on_assign)
            if "{when}" != "before_subscribe_applied":
                await fut
            if "{when}" == "during_async_on_assign":
                await asyncio.wait_for(started.wait(), 30)
            await asyncio.wait_for(c.close(5), 30)
            print("closed", flush=True)
        asyncio.run(main())
        print("exited", flush=True)
        """, timeout=60)
    assert_clean_exit(r)
    assert "closed\nexited" in r.stdout


# ---- consumers that are never closed --------------------------------------------


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_unclosed_consumer_at_interpreter_exit(
    kafka_bootstrap: str, new_topic: TopicFactory, loop: str
) -> None:
    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 1000)
    r = run_script(f"""
        import asyncio, uvloop
        from aiokafka_c import AIOConsumer
        consumers = []
        async def main():
            c = AIOConsumer({{"bootstrap.servers": "{kafka_bootstrap}",
                              "group.id": "{unique("g")}",
                              "auto.offset.reset": "earliest"}})
            consumers.append(c)
            await c.subscribe(["{topic}"])
            m = await asyncio.wait_for(c.poll(60), 70)
            print("got", m.offset(), flush=True)
            # Left with ~1000 buffered messages, a poll pending and a
            # never-used second consumer.
            asyncio.ensure_future(c.poll())
            consumers.append(AIOConsumer({{
                "bootstrap.servers": "{kafka_bootstrap}", "group.id": "x"}}))
        {"uvloop.run(main())" if loop == "uvloop" else "asyncio.run(main())"}
        print("main done", flush=True)
        """, timeout=30)
    assert_clean_exit(r)
    assert "got 0\nmain done" in r.stdout
    # Never silently: there was no final commit and no LeaveGroup.
    assert "not closed" in r.stderr


@pytest.mark.asyncio
async def test_a_consumer_dropped_without_close_is_collected(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 500)

    def alive() -> int:
        return sum(type(o) is AIOConsumer for o in gc.get_objects())

    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    gc.collect()
    base_consumers, base_threads = alive(), threads()
    c: Any = AIOConsumer(consumer_conf(kafka_bootstrap))
    await c.subscribe([topic])
    await take(c, 5)
    pending = c.poll()  # a waiter, then dropped with its consumer
    del c, pending
    gc.collect()
    assert alive() == base_consumers
    # Its poll thread and librdkafka's threads go away.
    await wait_until(lambda: threads() <= base_threads, SLOW,
                     "librdkafka threads to end")
    # The process is fine: another consumer works.
    async with AIOConsumer(consumer_conf(kafka_bootstrap)) as c2:
        await c2.subscribe([topic])
        assert len(await take(c2, 500)) == 500


# ---- memory ----------------------------------------------------------------------


def test_slow_reader_keeps_the_buffer_bounded_then_reads_everything(
    kafka_bootstrap: str, big_topic: str
) -> None:
    """max_buffer_messages=1000 and librdkafka's own queue kept small:
    while the app reads ~300 messages in 3 s, RSS must not grow with the
    200k messages the broker has (unbounded, that is ~60+ MB); then every
    message arrives once."""
    r = run_script(f"""
        import asyncio, json, os
        from aiokafka_c import AIOConsumer, TopicPartition, OFFSET_BEGINNING
        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        async def main():
            c = AIOConsumer({{
                "bootstrap.servers": "{kafka_bootstrap}",
                "group.id": "bounded", "enable.auto.commit": False,
                "queued.max.messages.kbytes": 1024,
                "max_buffer_messages": 1000}})
            await c.assign([TopicPartition("{big_topic}", p,
                                           OFFSET_BEGINNING)
                            for p in range({BIG_PARTITIONS})])
            seen = {{}}
            def record(m):
                assert m.error() is None, m.error()
                seen.setdefault(m.partition(), []).append(m.offset())
            record(await asyncio.wait_for(c.poll(60), 70))
            await asyncio.sleep(0.5)
            base = rss()
            for _ in range(300):
                m = await asyncio.wait_for(c.poll(30), 40)
                record(m)
                await asyncio.sleep(0.01)
            slow = rss()
            buffered = len(c) if hasattr(c, "__len__") else None
            while sum(map(len, seen.values())) < {BIG}:
                for m in await asyncio.wait_for(c.consume(1000, 30), 40):
                    record(m)
            extra = await asyncio.wait_for(c.consume(10, 1), 30)
            await c.close()
            print(json.dumps({{
                "base": base, "slow": slow, "buffered": buffered,
                "extra": len(extra),
                "ok": all(offs == list(range(len(offs)))
                          for offs in seen.values()),
                "counts": sorted(len(v) for v in seen.values())}}))
        asyncio.run(main())
        """, timeout=120)
    assert_clean_exit(r)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    growth = res["slow"] - res["base"]
    assert growth < 30 << 20, res
    if res["buffered"] is not None:
        assert res["buffered"] <= 2 * 1000, res
    assert res["ok"] and res["extra"] == 0, res
    assert res["counts"] == [BIG // BIG_PARTITIONS] * BIG_PARTITIONS, res


def test_refcounts_and_allocations_back_to_baseline(
    kafka_bootstrap: str, big_topic: str
) -> None:
    """200k messages read and dropped, and 2000 cancelled poll()s:
    allocated blocks and gc objects come back to baseline (a leak of one
    object per message would be 190k blocks)."""
    r = run_script(f"""
        import asyncio, gc, json, sys
        from aiokafka_c import AIOConsumer, TopicPartition, OFFSET_BEGINNING
        def snapshot():
            gc.collect()
            return sys.getallocatedblocks(), len(gc.get_objects())
        async def main():
            c = AIOConsumer({{
                "bootstrap.servers": "{kafka_bootstrap}",
                "group.id": "refcounts", "enable.auto.commit": False}})
            await c.assign([TopicPartition("{big_topic}", p,
                                           OFFSET_BEGINNING)
                            for p in range({BIG_PARTITIONS})])
            sentinel = "{big_topic}"
            n = 0
            async def read(k):
                nonlocal n
                while n < k:
                    for m in await c.consume(1000, 30):
                        assert m.error() is None and m.topic() == sentinel
                        m.value(), m.key(), m.headers(), m.timestamp()
                        n += 1
            # One wait_for around each read, not one per consume(): on 3.12+
            # every wait_for leaves a cancelled TimerHandle (and its Context)
            # in the loop's heap, up to ~100 of them, which is asyncio's
            # bounded clean-up, not ours (CI saw +2100 objects from it).
            await asyncio.wait_for(read(10_000), 60)  # warm-up: freelists
            before = snapshot()
            refs_before = sys.getrefcount(sentinel)
            await asyncio.wait_for(read({BIG}), 90)
            after = snapshot()
            for _ in range(200):
                try:
                    await asyncio.wait_for(c.poll(), 0.001)
                except asyncio.TimeoutError:
                    pass
            cancel_before = snapshot()
            for _ in range(2000):
                try:
                    await asyncio.wait_for(c.poll(), 0.001)
                except asyncio.TimeoutError:
                    pass
            cancel_after = snapshot()
            await c.close()
            print(json.dumps({{"n": n, "before": before, "after": after,
                              "cancel_before": cancel_before,
                              "cancel_after": cancel_after,
                              "refs": [refs_before,
                                       sys.getrefcount(sentinel)]}}))
        asyncio.run(main())
        """, timeout=120)
    assert_clean_exit(r)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["n"] == BIG
    blocks = res["after"][0] - res["before"][0]
    objects = res["after"][1] - res["before"][1]
    assert blocks < 5000 and objects < 1000, res
    blocks = res["cancel_after"][0] - res["cancel_before"][0]
    objects = res["cancel_after"][1] - res["cancel_before"][1]
    assert blocks < 500 and objects < 200, res
    assert abs(res["refs"][1] - res["refs"][0]) <= 2, res


# ---- at-least-once across a crash ------------------------------------------


def test_at_least_once_across_sigkill(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Any
) -> None:
    """A consumer with auto-commit records each message (an unbuffered
    write) and is SIGKILLed mid-stream; a restarted one in the same group
    continues with no gap; only messages after the last auto-commit are
    seen twice."""
    topic = new_topic(3)
    n, kill_after = 6000, 2345
    produce(kafka_bootstrap, topic, n, partitions=3)
    ends = {p: hi for p, (_, hi) in watermarks(kafka_bootstrap, topic,
                                               3).items()}
    assert sum(ends.values()) == n
    group = unique("g")

    def run(out: str, kill: int) -> Any:
        return run_script(f"""
            import asyncio, os, signal
            from aiokafka_c import AIOConsumer
            ends = {ends!r}
            async def main():
                fd = os.open("{out}", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
                c = AIOConsumer({{"bootstrap.servers": "{kafka_bootstrap}",
                                  "group.id": "{group}",
                                  "auto.offset.reset": "earliest",
                                  "auto.commit.interval.ms": 100,
                                  # The killed member holds its partitions
                                  # until the group's session timeout.
                                  "session.timeout.ms": 6000}})
                await c.subscribe(["{topic}"])
                last = {{}}
                count = 0
                async def messages():
                    if {kill}:
                        async for m in c:
                            yield m
                        return
                    # The restart: a partition the first run finished (and
                    # committed) sends nothing, so stop when all is quiet
                    # for longer than the group takes to drop the killed
                    # member (session.timeout.ms) and rebalance.
                    while batch := await c.consume(500, timeout=15):
                        for m in batch:
                            yield m
                async for m in messages():
                    os.write(fd, b"%d %d\\n" % (m.partition(), m.offset()))
                    last[m.partition()] = m.offset()
                    count += 1
                    if count % 50 == 0:
                        await asyncio.sleep(0.01)  # auto-commits meanwhile
                    if count == {kill}:
                        os.kill(os.getpid(), signal.SIGKILL)
                    if all(last.get(p) == e - 1 for p, e in ends.items()):
                        break
                # Coming back for more releases the last one for commit.
                assert await asyncio.wait_for(c.poll(0.5), 30) is None
                await asyncio.wait_for(c.close(), 60)
                print("done", count, flush=True)
            asyncio.run(main())
            """, timeout=90)

    def read(path: str) -> list[tuple[int, int]]:
        with open(path) as f:
            return [tuple(map(int, line.split()))  # type: ignore[misc]
                    for line in f]

    first_path, second_path = str(tmp_path / "1"), str(tmp_path / "2")
    r1 = run(first_path, kill_after)
    assert r1.returncode == -9, r1.stderr
    first = read(first_path)
    assert len(first) == kill_after
    r2 = run(second_path, 0)
    assert_clean_exit(r2)
    second = read(second_path)

    produced = {(p, o) for p, e in ends.items() for o in range(e)}
    assert set(first) | set(second) == produced  # no gap
    assert len(second) == len(set(second))
    for p, end in ends.items():
        offs1 = [o for q, o in first if q == p]
        offs2 = [o for q, o in second if q == p]
        assert offs1 == list(range(len(offs1)))
        if not offs2:  # the first run got all of it, and committed it
            assert len(offs1) == end
            continue
        # The restart begins at or before the first unprocessed offset.
        assert offs2[0] <= len(offs1), (p, offs2[:3], len(offs1))
        assert offs2 == list(range(offs2[0], end))
    again = set(first) & set(second)
    # Auto-commits happened during the first run: not everything again.
    assert len(again) < kill_after, len(again)
    assert committed(kafka_bootstrap, group, topic, 3) == ends
