"""AIOConsumer against a real Kafka broker: what it delivers, offsets and
commits, position, seek, pause, manual assignment, partition errors,
cancellation, loop binding and argument validation.

Test data is produced and offsets are checked with confluent-kafka
(tests/consumer_helpers.py); rebalances are in test_consumer_rebalance.py,
close, exit, memory and crashes in test_consumer_lifecycle.py."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import uvloop

from aiokafka_c import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    TIMESTAMP_CREATE_TIME,
    AIOConsumer,
    AIOProducer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from tests.conftest import TopicFactory
from tests.consumer_helpers import (
    ROOT,
    SLOW,
    by_partition,
    committed,
    consumer_conf,
    produce,
    take,
    take_until_quiet,
    unique,
    value_index,
)


def tpo(tps: list[TopicPartition]) -> list[tuple[str, int, int]]:
    """(topic, partition, offset) of each, sorted: TopicPartition's own
    equality ignores the offset."""
    return sorted((tp.topic, tp.partition, tp.offset) for tp in tps)


def from_beginning(topic: str, partitions: int = 1) -> list[TopicPartition]:
    return [TopicPartition(topic, p, OFFSET_BEGINNING)
            for p in range(partitions)]


@contextlib.asynccontextmanager
async def assigned_with_producer(
    bootstrap: str, topic: str
) -> AsyncIterator[tuple[AIOConsumer, AIOProducer]]:
    """A manual-commit consumer on partition 0 of topic from the
    beginning, and a producer that sends at once."""
    conf = consumer_conf(bootstrap, enable_auto_commit=False)
    async with AIOConsumer(conf) as c, AIOProducer(
        {"bootstrap.servers": bootstrap, "linger.ms": 0}
    ) as p:
        await c.assign(from_beginning(topic))
        yield c, p


# ---- what a consumer delivers ----------------------------------------------


@pytest.mark.asyncio
async def test_async_for_delivers_every_field_in_partition_order(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = new_topic(3)
    n = 60
    ts0 = 1_700_000_000_000
    produce(kafka_bootstrap, topic, n, partitions=3, timestamp=ts0,
            headers=lambda i: [("i", b"%d" % i), ("none", None)])
    got: list[Message] = []

    async def collect(c: AIOConsumer) -> None:
        async for m in c:
            got.append(m)
            if len(got) == n:
                break

    async with AIOConsumer(consumer_conf(kafka_bootstrap)) as c:
        await c.subscribe([topic])
        await asyncio.wait_for(collect(c), SLOW)
    assert sorted(value_index(m) for m in got) == list(range(n))
    for m in got:
        i = value_index(m)
        assert m.error() is None
        assert m.topic() == topic
        assert (m.partition(), m.offset()) == (i % 3, i // 3)
        assert m.key() == b"k%d" % i
        assert m.value() == b"v%d" % i
        assert m.headers() == [("i", b"%d" % i), ("none", None)]
        assert m.timestamp() == (TIMESTAMP_CREATE_TIME, ts0 + i)
        assert len(m) == len(b"v%d" % i)
    assert by_partition(got) == {p: list(range(n // 3)) for p in range(3)}


@pytest.mark.asyncio
async def test_poll_and_consume_and_their_timeouts(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 10)
    conf = consumer_conf(kafka_bootstrap, enable_auto_commit=False)
    async with AIOConsumer(conf) as c:
        await c.assign(from_beginning(topic))
        first = await asyncio.wait_for(c.poll(SLOW), SLOW + 10)
        assert isinstance(first, Message)
        assert (first.offset(), first.value(), first.key()) == (
            0, b"v0", b"k0")
        rest = await take(c, 9)
        assert [m.offset() for m in rest] == list(range(1, 10))
        # Nothing left: poll times out with None, consume with [].
        assert await asyncio.wait_for(c.poll(0.5), 30) is None
        assert await asyncio.wait_for(c.consume(10, 0.5), 30) == []
        assert await asyncio.wait_for(c.poll(0), 30) is None

        # consume() never returns more than asked for.
        produce(kafka_bootstrap, topic, 10, start=10)
        await asyncio.sleep(0.5)  # let them reach the consumer's buffer
        batch = await asyncio.wait_for(c.consume(3, SLOW), SLOW + 10)
        assert 1 <= len(batch) <= 3
        assert [m.offset() for m in batch] == list(range(10, 10 + len(batch)))

        # poll() without a timeout waits for the next message.
        await take(c, 10 - len(batch))
        waiting = asyncio.ensure_future(c.poll())
        await asyncio.sleep(0.3)
        assert not waiting.done()
        produce(kafka_bootstrap, topic, 1, start=20)
        m = await asyncio.wait_for(waiting, SLOW)
        assert m is not None and m.offset() == 20


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["async_for", "poll", "consume"])
async def test_ready_messages_never_starve_the_loop(
    kafka_bootstrap: str, new_topic: TopicFactory, how: str
) -> None:
    """A reader that never has to wait still lets the loop run other
    tasks: at most 64 ready messages (or one consume() batch) between two
    turns of a task that only ever yields.  Counted, not timed."""
    topic = new_topic(1)
    n = 20_000
    produce(kafka_bootstrap, topic, n, value_size=10)
    ticks = 0
    stop = False

    async def ticker() -> None:
        nonlocal ticks
        while not stop:
            ticks += 1
            await asyncio.sleep(0)

    conf = consumer_conf(kafka_bootstrap, enable_auto_commit=False)
    async with AIOConsumer(conf) as c:
        await c.assign(from_beginning(topic))
        first = await asyncio.wait_for(c.poll(SLOW), SLOW + 10)
        assert first is not None and first.error() is None
        await asyncio.sleep(1.0)  # let the buffer fill: messages are ready
        ticking = asyncio.ensure_future(ticker())
        await asyncio.sleep(0)
        got, run, longest, last = 1, 0, 0, ticks

        def seen(k: int) -> None:
            nonlocal got, run, longest, last
            got += k
            run = run + k if ticks == last else k
            last = ticks
            longest = max(longest, run)

        async def read() -> None:
            if how == "async_for":
                async for m in c:
                    assert m.error() is None
                    seen(1)
                    if got == n:
                        return
            while got < n:
                if how == "poll":
                    m = await c.poll(SLOW)
                    assert m is not None and m.error() is None
                    seen(1)
                else:
                    batch = await c.consume(500, SLOW)
                    assert batch and all(m.error() is None for m in batch)
                    seen(len(batch))

        await asyncio.wait_for(read(), SLOW * 2)
        stop = True
        await ticking
    assert got == n
    assert longest <= (500 if how == "consume" else 64), (longest, ticks)
    assert ticks >= n // 500


@pytest.mark.asyncio
async def test_calls_take_in_call_order_across_the_fairness_yield(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """After a streak, a call yields before it takes; the calls made while
    it is yielding yield too, so gathered calls still get the messages in
    the order they were made."""
    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 300)
    conf = consumer_conf(kafka_bootstrap, enable_auto_commit=False)
    async with AIOConsumer(conf) as c:
        await c.assign(from_beginning(topic))
        got = await take(c, 64)  # a full streak
        assert [m.offset() for m in got] == list(range(64))
        polls = await asyncio.wait_for(
            asyncio.gather(c.poll(SLOW), c.poll(SLOW), c.poll(SLOW)), SLOW)
        assert [m.offset() for m in polls] == [64, 65, 66]
        await take(c, 64 - 3)
        a1, a2 = c.consume(3, SLOW), c.consume(3, SLOW)
        b1 = await asyncio.wait_for(a1, SLOW)
        b2 = await asyncio.wait_for(a2, SLOW)
        first = b1[0].offset()
        assert [m.offset() for m in b1 + b2] == list(range(first, first + 6))


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["poll", "consume"])
async def test_a_zero_timeout_spin_on_an_empty_topic_lets_the_loop_run(
    kafka_bootstrap: str, new_topic: TopicFactory, how: str
) -> None:
    """``while True: await c.poll(0)`` on nothing: other tasks still run
    (every 64 empty calls the call yields once)."""
    topic = new_topic(1)
    ran = 0

    async def other() -> None:
        nonlocal ran
        while True:
            ran += 1
            await asyncio.sleep(0)

    conf = consumer_conf(kafka_bootstrap, enable_auto_commit=False)
    async with AIOConsumer(conf) as c:
        await c.assign(from_beginning(topic))
        task = asyncio.ensure_future(other())
        await asyncio.sleep(0)
        start = ran
        for _ in range(6400):
            r = await (c.poll(0) if how == "poll" else c.consume(10, 0))
            assert r in (None, [])
        spun = ran - start
        task.cancel()
    assert spun >= 50, spun


# ---- offsets and commits ---------------------------------------------------


@pytest.mark.asyncio
async def test_manual_commit_of_a_message_is_exact(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = new_topic(2)
    produce(kafka_bootstrap, topic, 40, partitions=2)
    group = unique("g")
    conf = consumer_conf(kafka_bootstrap, group, enable_auto_commit=False)
    async with AIOConsumer(conf) as c:
        await c.subscribe([topic])
        msgs = await take(c, 15)
        for m in msgs:
            res = await asyncio.wait_for(c.commit(message=m), SLOW)
            assert [(tp.topic, tp.partition, tp.offset, tp.error)
                    for tp in res] == [
                (topic, m.partition(), (m.offset() or 0) + 1, None)]
        expected = {p: OFFSET_INVALID for p in range(2)}
        expected.update(
            {p: max(offs) + 1 for p, offs in by_partition(msgs).items()})
        ours = await asyncio.wait_for(
            c.committed([TopicPartition(topic, p) for p in range(2)],
                        timeout=30), SLOW)
        assert {tp.partition: tp.offset for tp in ours} == expected
    # The independent client agrees, and a new member starts right there.
    assert committed(kafka_bootstrap, group, topic, 2) == expected
    async with AIOConsumer(conf) as c2:
        await c2.subscribe([topic])
        rest = await take(c2, 40 - 15)
        assert await asyncio.wait_for(c2.poll(1.0), 30) is None
    for p, offs in by_partition(rest).items():
        assert offs == list(range(max(expected[p], 0), 20))


@pytest.mark.asyncio
async def test_commit_without_arguments_commits_what_was_received(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = new_topic(3)
    produce(kafka_bootstrap, topic, 30, partitions=3)
    group = unique("g")
    conf = consumer_conf(kafka_bootstrap, group, enable_auto_commit=False)
    async with AIOConsumer(conf) as c:
        await c.assign(from_beginning(topic, 3))
        # Nothing received yet: nothing to commit, no exception.
        assert await asyncio.wait_for(c.commit(), SLOW) == []
        await take(c, 30)
        res = await asyncio.wait_for(c.commit(), SLOW)
        assert tpo(res) == [(topic, p, 10) for p in range(3)]
        assert all(tp.error is None for tp in res)
        # Nothing new since: nothing to commit again.
        assert await asyncio.wait_for(c.commit(), SLOW) == []
        # An explicit list is committed as given.
        res = await asyncio.wait_for(
            c.commit(offsets=[TopicPartition(topic, 1, 4)]), SLOW)
        assert tpo(res) == [(topic, 1, 4)]
    assert committed(kafka_bootstrap, group, topic, 3) == {0: 10, 1: 4,
                                                           2: 10}


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["async_for", "poll"])
async def test_auto_commit_is_at_least_once(
    kafka_bootstrap: str, new_topic: TopicFactory, how: str
) -> None:
    """Auto-commit never commits past what the user has finished with,
    even with the rest of the topic prefetched; after close the next
    member in the group continues with no gap."""
    topic = new_topic(1)
    n, k = 100, 37
    produce(kafka_bootstrap, topic, n)
    group = unique("g")
    conf = consumer_conf(kafka_bootstrap, group,
                         auto_commit_interval_ms=50)
    c1 = AIOConsumer(conf)
    await c1.subscribe([topic])
    processed: list[int] = []

    async def run() -> None:
        if how == "async_for":
            async for m in c1:
                processed.append(m.offset() or 0)
                if len(processed) == k:
                    return
        else:
            while len(processed) < k:
                m = await c1.poll(1.0)
                if m is not None:
                    assert m.error() is None
                    processed.append(m.offset() or 0)

    await asyncio.wait_for(run(), SLOW)
    assert processed == list(range(k))
    # Messages 0..k-2 are finished (the user came back for more), so
    # auto-commit gets them there; message k-1 was handed out but the
    # user has not come back: it may still be in processing, so it must
    # not be committed, however many intervals pass.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        in_group = await asyncio.to_thread(committed, kafka_bootstrap, group,
                                           topic)
        assert in_group[0] <= k - 1
        if in_group[0] == k - 1 or loop.time() > deadline:
            break
        await asyncio.sleep(0.1)
    assert in_group[0] == k - 1
    await asyncio.sleep(1.0)
    assert committed(kafka_bootstrap, group, topic)[0] == k - 1
    await asyncio.wait_for(c1.close(), SLOW)
    after_close = committed(kafka_bootstrap, group, topic)[0]
    assert k - 1 <= after_close <= k

    async with AIOConsumer(conf) as c2:
        await c2.subscribe([topic])
        rest = await take(c2, n - after_close)
    assert [m.offset() for m in rest] == list(range(after_close, n))


@pytest.mark.asyncio
async def test_position_is_the_users_position(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 2000)
    tp = TopicPartition(topic, 0)
    conf = consumer_conf(kafka_bootstrap, enable_auto_commit=False)
    async with AIOConsumer(conf) as c:
        await c.assign(from_beginning(topic))
        msgs = await take(c, 10)
        await asyncio.sleep(1.0)  # the poll thread prefetches far ahead
        assert tpo(c.position([tp])) == [(topic, 0, msgs[-1].offset() + 1)]
        assert msgs[-1].offset() == 9
        await take(c, 5)
        assert tpo(c.position([tp])) == [(topic, 0, 15)]


@pytest.mark.asyncio
async def test_seek_on_a_buffered_partition(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 500)
    conf = consumer_conf(kafka_bootstrap, enable_auto_commit=False)
    async with AIOConsumer(conf) as c:
        await c.assign(from_beginning(topic))
        await take(c, 50)
        await asyncio.sleep(0.5)  # the rest of the topic is buffered
        await asyncio.wait_for(c.seek(TopicPartition(topic, 0, 300)), SLOW)
        assert [m.offset() for m in await take(c, 10)] == list(
            range(300, 310))
        await asyncio.sleep(0.5)
        await asyncio.wait_for(c.seek(TopicPartition(topic, 0, 10)), SLOW)
        rest = await take(c, 490)
        # Nothing from before a seek shows up after it.
        assert [m.offset() for m in rest] == list(range(10, 500))
        assert await asyncio.wait_for(c.poll(1.0), 30) is None


@pytest.mark.asyncio
async def test_pause_withholds_one_partition_and_resume_continues_it(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = new_topic(2)
    produce(kafka_bootstrap, topic, 200, partitions=2)
    conf = consumer_conf(kafka_bootstrap, enable_auto_commit=False)
    async with AIOConsumer(conf) as c:
        await c.assign(from_beginning(topic, 2))
        first = by_partition(await take(c, 20))
        await asyncio.sleep(0.5)  # both partitions buffered
        pausing = c.pause([TopicPartition(topic, 0)])
        # The local effect is immediate: no partition-0 message from now.
        produce(kafka_bootstrap, topic, 100, partitions=2, start=200)
        during = by_partition(await take_until_quiet(c, quiet=2.0))
        await asyncio.wait_for(pausing, SLOW)
        assert [(tp.topic, tp.partition) for tp in c.paused()] == [
            (topic, 0)]
        assert list(during) == [1]
        assert first.get(1, []) + during[1] == list(range(150))

        await asyncio.wait_for(c.resume([TopicPartition(topic, 0)]), SLOW)
        assert c.paused() == []
        done0 = first.get(0, [])
        after = by_partition(await take(c, 150 - len(done0)))
        assert list(after) == [0]
        assert done0 + after[0] == list(range(150))
        assert await asyncio.wait_for(c.poll(1.0), 30) is None


@pytest.mark.asyncio
async def test_assign_with_explicit_offsets(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = new_topic(2)
    produce(kafka_bootstrap, topic, 100, partitions=2)
    conf = consumer_conf(kafka_bootstrap, enable_auto_commit=False)
    async with AIOConsumer(conf) as c:
        await c.assign([TopicPartition(topic, 0, 10),
                        TopicPartition(topic, 1, OFFSET_BEGINNING)])
        assert sorted((tp.topic, tp.partition) for tp in c.assignment()) == [
            (topic, 0), (topic, 1)]
        got = by_partition(await take(c, 40 + 50))
        assert got == {0: list(range(10, 50)), 1: list(range(50))}
        await asyncio.wait_for(c.unassign(), SLOW)
        assert c.assignment() == []
        produce(kafka_bootstrap, topic, 4, partitions=2, start=100)
        assert await asyncio.wait_for(c.poll(1.0), 30) is None


@pytest.mark.asyncio
async def test_incremental_assign_and_unassign(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = new_topic(2)
    produce(kafka_bootstrap, topic, 100, partitions=2)
    conf = consumer_conf(kafka_bootstrap, enable_auto_commit=False)
    async with AIOConsumer(conf) as c:
        await c.incremental_assign([TopicPartition(topic, 0, 45)])
        assert by_partition(await take(c, 5)) == {0: list(range(45, 50))}
        await c.incremental_assign([TopicPartition(topic, 1, 40)])
        assert sorted(tp.partition for tp in c.assignment()) == [0, 1]
        assert by_partition(await take(c, 10)) == {1: list(range(40, 50))}
        await c.incremental_unassign([TopicPartition(topic, 0)])
        assert [(tp.topic, tp.partition) for tp in c.assignment()] == [
            (topic, 1)]
        produce(kafka_bootstrap, topic, 10, partitions=2, start=100)
        rest = by_partition(await take_until_quiet(c, quiet=1.5))
        assert rest == {1: list(range(50, 55))}


# ---- errors in the stream --------------------------------------------------


@pytest.mark.asyncio
async def test_subscribing_to_a_missing_topic(kafka_bootstrap: str) -> None:
    """librdkafka reports it as a consumer error (the broker answers the
    metadata request with UNKNOWN_TOPIC_OR_PART): poll() returns it as a
    Message, async for raises it."""
    name = unique("missing")
    async with AIOConsumer(consumer_conf(kafka_bootstrap)) as c:
        await c.subscribe([name])
        assert c.subscription() == [name]
        m = await asyncio.wait_for(c.poll(SLOW), SLOW + 10)
        assert m is not None
        err = m.error()
        assert err is not None
        assert err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        assert name in err.str()
    async with AIOConsumer(consumer_conf(kafka_bootstrap)) as c:
        await c.subscribe([name])
        with pytest.raises(KafkaException) as info:
            await asyncio.wait_for(c.__anext__(), SLOW)
        assert info.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


@pytest.mark.asyncio
async def test_partition_eof_from_poll_and_skipped_by_async_for(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 3)
    conf = consumer_conf(kafka_bootstrap, enable_partition_eof=True,
                         enable_auto_commit=False)
    async with AIOConsumer(conf) as c:
        await c.assign(from_beginning(topic))
        seen: list[Message] = []
        while not seen or seen[-1].error() is None:
            m = await asyncio.wait_for(c.poll(SLOW), SLOW + 10)
            assert m is not None
            seen.append(m)
        assert [m.offset() for m in seen[:3]] == [0, 1, 2]
        eof = seen[3]
        err = eof.error()
        assert err is not None and err.code() == KafkaError._PARTITION_EOF
        assert (eof.topic(), eof.partition(), eof.offset()) == (topic, 0, 3)

    got: list[Message] = []

    async def collect(c: AIOConsumer) -> None:
        async for m in c:
            got.append(m)
            if len(got) == 3:
                # Partition EOF is reached now; more data comes later.
                await asyncio.sleep(0.5)
                produce(kafka_bootstrap, topic, 2, start=3)
            if len(got) == 5:
                return

    async with AIOConsumer(conf) as c:
        await c.assign(from_beginning(topic))
        await asyncio.wait_for(collect(c), SLOW)
    assert [(m.offset(), m.error()) for m in got] == [
        (i, None) for i in range(5)]


# ---- cancellation and loops ------------------------------------------------


@pytest.mark.asyncio
async def test_cancelled_polls_lose_nothing(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = new_topic(1)
    n = 300
    loop = asyncio.get_running_loop()
    problems: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: problems.append(ctx))
    async with assigned_with_producer(kafka_bootstrap, topic) as (c, p):

        async def trickle() -> None:
            for i in range(n):
                await p.produce(topic, b"v%d" % i, partition=0)
                if i % 10 == 0:
                    await asyncio.sleep(0.005)

        producing = asyncio.ensure_future(trickle())
        got: list[int] = []
        timeouts = 0
        deadline = loop.time() + SLOW
        while len(got) < n and loop.time() < deadline:
            pending: Any = c.poll() if timeouts % 2 else c.consume(5)
            try:
                r = await asyncio.wait_for(pending, 0.001)
            except asyncio.TimeoutError:
                timeouts += 1
                continue
            for m in r if isinstance(r, list) else [r]:
                assert m.error() is None
                got.append(m.offset())
        await asyncio.wait_for(producing, SLOW)
        assert timeouts > 0
        assert got == list(range(n))
        assert await asyncio.wait_for(c.poll(1.0), 30) is None
    assert problems == []


@pytest.mark.asyncio
@pytest.mark.parametrize("call", ["poll", "consume", "anext"])
async def test_task_cancelled_as_its_call_is_woken_loses_nothing(
    kafka_bootstrap: str, new_topic: TopicFactory, call: str
) -> None:
    """The race CI caught on 3.12: a task cancelled after its waiting
    call's wake-up but before the task resumed got CancelledError while
    the messages had already been handed to its future.  The loop is held
    still (time.sleep) while a message comes in, so the wake-up is queued
    first and the cancel right after it, before the task's own step."""
    topic = new_topic(1)
    loop = asyncio.get_running_loop()
    async with assigned_with_producer(kafka_bootstrap, topic) as (c, p):

        async def one() -> Any:
            if call == "poll":
                return await c.poll(SLOW)
            if call == "consume":
                return await c.consume(10, SLOW)
            return await c.__anext__()

        got: list[int] = []
        raced = 0
        for i in range(10):
            task = asyncio.ensure_future(one())
            for _ in range(3):
                await asyncio.sleep(0)  # the call is waiting now
            sent = asyncio.ensure_future(p.produce(topic, b"%d" % i,
                                                   partition=0))
            time.sleep(0.3)
            loop.call_soon(task.cancel)
            r = (await asyncio.gather(task, return_exceptions=True))[0]
            await sent
            if isinstance(r, asyncio.CancelledError):
                raced += 1
                r = await c.poll(SLOW)
            assert not isinstance(r, BaseException), r
            for m in r if isinstance(r, list) else [r]:
                assert m is not None, f"message {i} was lost"
                got.append(m.offset())
        assert raced > 0, "the cancel never met a woken call"
        assert got == list(range(10))


@pytest.mark.asyncio
async def test_a_cancelled_woken_call_passes_its_wake_up_on(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """A woken call cancelled before it took (the same held-still loop as
    above) hands its wake-up to the next waiting call at once: nothing
    else (an auto-commit, more messages) has to come to wake it."""
    topic = new_topic(1)
    loop = asyncio.get_running_loop()
    async with assigned_with_producer(kafka_bootstrap, topic) as (c, p):
        raced = 0
        for i in range(6):
            first = asyncio.ensure_future(c.poll(SLOW))
            for _ in range(3):
                await asyncio.sleep(0)
            second = asyncio.ensure_future(c.poll(SLOW))
            for _ in range(3):
                await asyncio.sleep(0)
            sent = asyncio.ensure_future(p.produce(topic, b"%d" % i,
                                                   partition=0))
            time.sleep(0.3)
            loop.call_soon(first.cancel)
            r = (await asyncio.gather(first, return_exceptions=True))[0]
            await sent
            if isinstance(r, asyncio.CancelledError):
                raced += 1
                m = await asyncio.wait_for(second, 10)
            else:
                m = r
                assert (await asyncio.wait_for(c.poll(0), 10)) is None
                second.cancel()
            assert m is not None and m.offset() == i
        assert raced > 0


@pytest.mark.asyncio
async def test_waiting_calls_take_in_call_order(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = new_topic(1)
    async with assigned_with_producer(kafka_bootstrap, topic) as (c, p):
        calls = []
        for _ in range(4):
            calls.append(asyncio.ensure_future(c.poll(SLOW)))
            await asyncio.sleep(0)
        await asyncio.sleep(0.2)
        for i in range(2):
            await p.produce(topic, b"%d" % i, partition=0)
        await asyncio.wait(calls[:2], timeout=SLOW)
        await p.produce(topic, b"2", partition=0)
        done, _ = await asyncio.wait(calls[:3], timeout=SLOW)
        assert [t.result().value() for t in calls[:3]] == [b"0", b"1", b"2"]
        assert not calls[3].done()
        await p.produce(topic, b"3", partition=0)
        assert (await asyncio.wait_for(calls[3], SLOW)).value() == b"3"


@pytest.mark.asyncio
async def test_a_call_not_yet_awaited_holds_nothing(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = new_topic(1)
    async with assigned_with_producer(kafka_bootstrap, topic) as (c, p):
        kept = c.poll(SLOW)  # made, awaited only later
        waiting = asyncio.ensure_future(c.poll(SLOW))
        await asyncio.sleep(0.2)
        await p.produce(topic, b"0", partition=0)
        m = await asyncio.wait_for(waiting, SLOW)
        assert m is not None and m.value() == b"0"
        await p.produce(topic, b"1", partition=0)
        m = await asyncio.wait_for(kept, SLOW)
        assert m is not None and m.value() == b"1"


@pytest.mark.parametrize(
    "factory",
    [asyncio.new_event_loop, uvloop.new_event_loop],
    ids=["asyncio", "uvloop"],
)
def test_created_outside_a_loop_and_used_from_a_second_loop(
    kafka_bootstrap: str,
    new_topic: TopicFactory,
    factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    topic = new_topic(1)
    produce(kafka_bootstrap, topic, 3)
    c = AIOConsumer(consumer_conf(kafka_bootstrap, enable_auto_commit=False))

    async def use() -> list[int]:
        await c.assign(from_beginning(topic))
        return [m.offset() or 0 for m in await take(c, 3)]

    async def poll_once() -> Any:
        return await c.poll(0.1)

    loop1, loop2 = factory(), factory()
    try:
        assert loop1.run_until_complete(use()) == [0, 1, 2]
        with pytest.raises(RuntimeError, match="loop"):
            loop2.run_until_complete(poll_once())
        # Still usable from its own loop afterwards.
        assert loop1.run_until_complete(poll_once()) is None
        loop1.run_until_complete(c.close())
    finally:
        loop1.close()
        loop2.close()


# ---- argument validation ---------------------------------------------------


def test_bad_arguments_raise_cleanly() -> None:
    """A hypothesis search (tests/consumer_args_hyp.py) in a child
    process: wrong types for every method raise TypeError/ValueError
    synchronously, odd values raise cleanly or work; a crash or a hang
    fails this test instead of killing the session."""
    r = subprocess.run(
        [sys.executable, "-X", "dev", "-X", "faulthandler", "-m",
         "tests.consumer_args_hyp"],
        cwd=ROOT, capture_output=True, text=True, timeout=150, check=False)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-20000:]}" \
        f"\n{r.stderr[-5000:]}"
    assert "examples passed" in r.stdout
