"""AIOProducer against a real Kafka broker, read back independently."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from aiokafka_c import (
    TIMESTAMP_CREATE_TIME,
    AIOProducer,
    KafkaError,
    KafkaException,
    Message,
)
from tests.conftest import ReadBack, TopicFactory
from tests.helpers import recording_logger, unreachable_conf, wait_until


@pytest.fixture
def conf(kafka_bootstrap: str) -> dict[str, Any]:
    return {"bootstrap.servers": kafka_bootstrap, "linger.ms": 0}


# ---- what arrives on the broker -------------------------------------------


@pytest.mark.asyncio
async def test_fields_arrive_on_broker(
    conf: dict[str, Any], new_topic: TopicFactory, read_back: ReadBack
) -> None:
    topic = new_topic(3)
    async with AIOProducer(conf) as p:
        msg = await p.produce(
            topic,
            b"value-1",
            key=b"key-1",
            partition=2,
            timestamp=1_700_000_000_123,
            headers=[("trace", b"abc"), ("empty", None), ("s", "text")],
        )
        assert isinstance(msg, Message)
        assert msg.error() is None
        assert msg.topic() == topic
        assert msg.partition() == 2
        assert msg.offset() == 0
        assert msg.timestamp() == (TIMESTAMP_CREATE_TIME, 1_700_000_000_123)
        assert msg.value() == b"value-1"
        assert msg.key() == b"key-1"
        assert msg.headers() == [
            ("trace", b"abc"),
            ("empty", None),
            ("s", b"text"),
        ]
        latency = msg.latency()
        assert latency is not None and latency >= 0

    [got] = read_back(topic, 1)
    assert got.partition() == 2
    assert got.offset() == 0
    assert got.value() == b"value-1"
    assert got.key() == b"key-1"
    assert got.timestamp() == (TIMESTAMP_CREATE_TIME, 1_700_000_000_123)
    assert got.headers() == [
        ("trace", b"abc"),
        ("empty", None),
        ("s", b"text"),
    ]


@pytest.mark.asyncio
async def test_value_and_key_types(
    conf: dict[str, Any], topic: str, read_back: ReadBack
) -> None:
    mutable = bytearray(b"bytearray-value")
    async with AIOProducer(conf) as p:
        futs = [
            p.produce(topic, b"bytes", key=b"k1"),
            p.produce(topic, mutable, key=bytearray(b"k2")),
            p.produce(topic, memoryview(b"xxmemoryview")[2:], key="k3"),
            p.produce(topic, "stré", key=memoryview(b"k4")),
            p.produce(topic, None, key=None),
            p.produce(topic, headers={"h": "v", "n": None}),
        ]
        # A copy was taken: changing the bytearray now changes nothing.
        mutable[:] = b"CHANGED"
        msgs = await asyncio.gather(*futs)
    assert [m.value() for m in msgs] == [
        b"bytes",
        b"bytearray-value",
        b"memoryview",
        "stré".encode(),
        None,
        None,
    ]
    got = read_back(topic, 6)
    assert [(m.value(), m.key()) for m in got] == [
        (b"bytes", b"k1"),
        (b"bytearray-value", b"k2"),
        (b"memoryview", b"k3"),
        ("stré".encode(), b"k4"),
        (None, None),
        (None, None),
    ]
    assert got[5].headers() == [("h", b"v"), ("n", None)]


@pytest.mark.asyncio
@pytest.mark.parametrize("max_queue", [100000, 50])
async def test_call_order_is_delivery_order_per_partition(
    kafka_bootstrap: str,
    new_topic: TopicFactory,
    read_back: ReadBack,
    max_queue: int,
) -> None:
    """Also when most messages wait for room in a tiny local queue."""
    topic = new_topic(3)
    n = 3000
    conf = {
        "bootstrap.servers": kafka_bootstrap,
        "queue.buffering.max.messages": max_queue,
        "linger.ms": 2,
    }
    async with AIOProducer(conf) as p:
        futs = []
        for i in range(n):
            if max_queue < 1000 and i >= 80:
                # Keep ~80 outstanding: past the queue of 50, so most
                # wait in the overflow, but under its cap of 50 more.
                await futs[i - 80]
            futs.append(p.produce(topic, str(i), key=str(i % 7)))
        msgs = await asyncio.gather(*futs)
    by_partition: dict[int, list[tuple[int, int]]] = {}
    for i, m in enumerate(msgs):
        part = m.partition()
        off = m.offset()
        assert part is not None and off is not None
        by_partition.setdefault(part, []).append((i, off))
    for pairs in by_partition.values():
        offsets = [off for _, off in pairs]
        assert offsets == sorted(offsets)
        assert offsets == list(range(len(offsets)))
    got = read_back(topic, n)
    for part, pairs in by_partition.items():
        on_broker = [
            int(m.value() or b"") for m in got if m.partition() == part
        ]
        assert on_broker == [i for i, _ in pairs]


# ---- callbacks and dispatch -----------------------------------------------


@pytest.mark.asyncio
async def test_on_delivery_on_loop_and_on_poll_thread(
    conf: dict[str, Any], topic: str, read_back: ReadBack
) -> None:
    loop_thread = threading.get_ident()
    seen: list[tuple[str, Any, int, bytes | None]] = []
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_loop(err: KafkaError | None, msg: Message) -> None:
        seen.append(("loop", err, threading.get_ident(), msg.value()))

    def on_poll(err: KafkaError | None, msg: Message) -> None:
        seen.append(("poll", err, threading.get_ident(), msg.value()))
        loop.call_soon_threadsafe(done.set)

    async with AIOProducer(conf) as p:
        p.produce_nowait(topic, b"a", on_delivery=on_loop)
        await p.flush(10)
        p.produce_nowait(topic, b"b", on_delivery=on_poll,
                         dispatch="poll_thread")
        await asyncio.wait_for(done.wait(), 30)
        assert await p.flush(10) == 0
    assert [(s[0], s[1], s[3]) for s in seen] == [
        ("loop", None, b"a"),
        ("poll", None, b"b"),
    ]
    assert seen[0][2] == loop_thread
    assert seen[1][2] != loop_thread
    assert len(read_back(topic, 2)) == 2


@pytest.mark.asyncio
async def test_async_callbacks_and_callback_errors_are_logged(
    conf: dict[str, Any], topic: str
) -> None:
    logger, records = recording_logger("test.cb-errors")
    ran: list[str] = []

    async def async_cb(err: KafkaError | None, msg: Message) -> None:
        await asyncio.sleep(0)
        ran.append("async")

    def bad_cb(err: KafkaError | None, msg: Message) -> None:
        raise ValueError("boom in callback")

    async with AIOProducer({**conf, "logger": logger}) as p:
        p.produce_nowait(topic, b"1", on_delivery=async_cb)
        p.produce_nowait(topic, b"2", on_delivery=bad_cb)
        fut = p.produce(topic, b"3", on_delivery=bad_cb)
        assert (await fut).value() == b"3"
        await wait_until(lambda: ran == ["async"], what="async callback")
    errors = [r for r in records.records if "on_delivery callback" in
              r.getMessage()]
    assert len(errors) == 2
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], ValueError)


@pytest.mark.asyncio
async def test_error_cb_and_stats_cb_run_on_the_loop() -> None:
    loop_thread = threading.get_ident()
    errors: list[tuple[KafkaError, int]] = []
    stats: list[str] = []

    async def error_cb(err: KafkaError) -> None:
        errors.append((err, threading.get_ident()))

    def stats_cb(js: str) -> None:
        assert threading.get_ident() == loop_thread
        stats.append(js)

    conf = unreachable_conf(
        error_cb=error_cb, stats_cb=stats_cb, **{"statistics.interval.ms": 100}
    )
    p = AIOProducer(conf)
    p.produce_nowait("t", b"x", on_delivery=lambda e, m: None)
    await wait_until(lambda: errors and stats, what="error and stats events")
    await p.close(1)
    codes = {e.code() for e, _ in errors}
    assert codes & {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}
    assert all(t == loop_thread for _, t in errors)
    assert stats[0].startswith("{") and '"type": "producer"' in stats[0]


@pytest.mark.asyncio
async def test_librdkafka_logs_go_to_the_logger(conf: dict[str, Any]) -> None:
    logger, records = recording_logger("test.rdlogs")
    async with AIOProducer({**conf, "debug": "broker", "logger": logger}) as p:
        await p.flush(1)
        await wait_until(lambda: records.messages(), what="a log record")
    assert any(m.startswith("librdkafka ") for m in records.messages())


# ---- failures ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_fire_and_forget_failures_are_logged() -> None:
    logger, records = recording_logger("test.fnf")
    p = AIOProducer(unreachable_conf(logger=logger))
    p.produce_nowait("some-topic", b"lost?")
    await wait_until(
        lambda: any("delivery failed" in m for m in records.messages()),
        what="the failure to be logged",
    )
    await p.close(1)
    [line] = [m for m in records.messages() if "delivery failed" in m]
    assert "some-topic" in line and "timed out" in line


@pytest.mark.asyncio
async def test_unreachable_broker_fails_futures_and_close_is_bounded() -> None:
    p = AIOProducer(unreachable_conf(**{"message.timeout.ms": 800}))
    loop = asyncio.get_running_loop()
    with pytest.raises(KafkaException) as info:
        await asyncio.wait_for(p.produce("t", b"x"), 30)
    err = info.value.args[0]
    assert isinstance(err, KafkaError)
    assert err.code() == KafkaError._MSG_TIMED_OUT
    assert err.retriable()
    # Not an unexplained timeout: the connection error that caused it.
    assert "the last broker error" in err.str() and "_TRANSPORT" in err.str()

    pending = [p.produce("t", b"y") for _ in range(10)]
    start = loop.time()
    await asyncio.wait_for(p.close(timeout=0.5), 30)
    # Closing failed what was left, clearly, instead of leaving it hanging.
    for fut in pending:
        exc = fut.exception()
        assert isinstance(exc, KafkaException)
        assert exc.args[0].code() in (
            KafkaError._PURGE_QUEUE,
            KafkaError._PURGE_INFLIGHT,
            KafkaError._MSG_TIMED_OUT,
        )
    # Bounded by its timeout plus scheduling slack, not message.timeout.ms.
    assert loop.time() - start < 0.5 + 10


@pytest.mark.asyncio
async def test_produce_after_close_raises(conf: dict[str, Any]) -> None:
    p = AIOProducer(conf)
    first = p.close()
    second = p.close()
    await first
    await second
    await p.close()  # idempotent after it finished too
    with pytest.raises(RuntimeError, match="closed"):
        p.produce("t", b"x")
    with pytest.raises(RuntimeError, match="closed"):
        p.produce_nowait("t", b"x")
    with pytest.raises(RuntimeError, match="closed"):
        p.flush()
    assert len(p) == 0


@pytest.mark.asyncio
async def test_oversized_message_fails_with_msg_size_too_large(
    kafka_bootstrap: str, conf: dict[str, Any]
) -> None:
    # Client-side limit: refused synchronously.
    async with AIOProducer({**conf, "message.max.bytes": 1000}) as p:
        with pytest.raises(KafkaException) as info:
            await p.produce("t", b"x" * 5000)
        assert info.value.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
        assert len(p) == 0
    # Broker-side limit (topic max.message.bytes): the delivery fails.
    topic = f"small-{time.time_ns()}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics(
        [NewTopic(topic, 1, 1, config={"max.message.bytes": "2000"})]
    )[topic].result(30)
    async with AIOProducer(conf) as p:
        await p.produce(topic, b"fits")
        with pytest.raises(KafkaException) as info:
            await p.produce(topic, b"x" * 10_000)
        assert info.value.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE


@pytest.mark.asyncio
async def test_wrong_argument_types_raise_synchronously(
    conf: dict[str, Any],
) -> None:
    async with AIOProducer(conf) as p:
        bad_calls: list[tuple[type[Exception], Any]] = [
            (TypeError, lambda: p.produce(1, b"x")),
            (TypeError, lambda: p.produce("t", 12)),
            (TypeError, lambda: p.produce("t", b"x", key=object())),
            (TypeError, lambda: p.produce("t", b"x", partition="1")),
            (ValueError, lambda: p.produce("t", b"x", partition=-5)),
            (TypeError, lambda: p.produce("t", b"x", timestamp=1.5)),
            (ValueError, lambda: p.produce("t", b"x", timestamp=-1)),
            (TypeError, lambda: p.produce("t", b"x", headers=5)),
            (TypeError, lambda: p.produce("t", b"x", headers=[("a",)])),
            (TypeError, lambda: p.produce("t", b"x", headers=[(1, b"")])),
            (TypeError, lambda: p.produce("t", b"x", headers=[("a", 1)])),
            (TypeError, lambda: p.produce("t", b"x", on_delivery=3)),
            (TypeError, lambda: p.produce("t", b"x", nope=1)),
            (TypeError, lambda: p.produce("t", b"x", b"k", 1)),
            (TypeError, lambda: p.produce()),
            (TypeError, lambda: p.produce("t", value=b"x", topic="t")),
            (ValueError, lambda: p.produce_nowait("t", dispatch="thread")),
            (TypeError, lambda: p.produce_nowait("t", dispatch=1)),
            (TypeError, lambda: p.produce("t", dispatch="loop")),
            (TypeError, lambda: p.flush("soon")),
            (ValueError, lambda: p.flush(-1)),
        ]
        for exc_type, call in bad_calls:
            with pytest.raises(exc_type):
                call()
        assert len(p) == 0


def test_bad_config_raises_naming_the_property() -> None:
    with pytest.raises(KafkaException, match="no.such.property"):
        AIOProducer({"no.such.property": 1})
    with pytest.raises(KafkaException, match="acks"):
        AIOProducer({"acks": "sometimes"})
    with pytest.raises(TypeError, match="linger.ms"):
        AIOProducer({"linger.ms": [5]})
    with pytest.raises(TypeError, match="error_cb"):
        AIOProducer({"error_cb": "not callable"})
    with pytest.raises(TypeError, match="logger"):
        AIOProducer({"logger": 5})
    with pytest.raises(TypeError, match="dict"):
        AIOProducer([("a", "b")])  # type: ignore[arg-type]


def test_use_outside_a_loop_and_from_a_second_loop_raises(
    conf: dict[str, Any],
) -> None:
    p = AIOProducer(conf)
    with pytest.raises(RuntimeError, match="event loop"):
        p.produce("t", b"x")

    async def use() -> Message:
        return await p.produce("t", b"x")

    loop1 = asyncio.new_event_loop()
    loop2 = asyncio.new_event_loop()
    try:
        assert loop1.run_until_complete(use()).error() is None
        with pytest.raises(RuntimeError, match="different event loop"):
            loop2.run_until_complete(use())
        loop1.run_until_complete(p.close())
    finally:
        loop1.close()
        loop2.close()


def test_close_without_a_loop_is_synchronous(conf: dict[str, Any]) -> None:
    p = AIOProducer(conf)
    p.close()
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(_produce_one(p))


async def _produce_one(p: AIOProducer) -> Message:
    return await p.produce("t", b"x")


# ---- cancellation, backpressure, flush, purge ------------------------------


@pytest.mark.asyncio
async def test_cancelled_waiters_no_invalid_state_no_leak(
    conf: dict[str, Any], topic: str, read_back: ReadBack
) -> None:
    loop = asyncio.get_running_loop()
    problems: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: problems.append(ctx))
    async with AIOProducer(conf) as p:
        futs = [p.produce(topic, str(i)) for i in range(200)]
        refs = [weakref.ref(f) for f in futs]
        tasks = [asyncio.ensure_future(f) for f in futs]
        for i in range(0, 200, 2):
            futs[i].cancel()
        del futs
        for i in range(0, 200, 3):
            tasks[i].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert await p.flush(30) == 0
    assert problems == []
    delivered = [r for r in results if isinstance(r, Message)]
    cancelled = [r for r in results if isinstance(r, asyncio.CancelledError)]
    assert delivered and cancelled
    assert len(delivered) + len(cancelled) == 200
    # Every message still went out, cancelled waiter or not.
    assert len(read_back(topic, 200)) == 200
    del tasks, results, delivered, cancelled
    gc.collect()
    assert [r for r in refs if r() is not None] == []


@pytest.mark.asyncio
async def test_full_queue_waits_for_room_in_order(
    conf: dict[str, Any], topic: str, read_back: ReadBack
) -> None:
    async with AIOProducer(
        {**conf, "queue.buffering.max.messages": 10}
    ) as p:
        futs = [p.produce(topic, str(i)) for i in range(20)]
        assert len(p) == 20
        # Beyond twice the queue: a clear, immediate error.
        with pytest.raises(KafkaException) as info:
            p.produce(topic, b"one too many")
        assert info.value.args[0].code() == KafkaError._QUEUE_FULL
        assert "waiting for room" in info.value.args[0].str()
        msgs = await asyncio.gather(*futs)
    assert [m.offset() for m in msgs] == list(range(20))
    assert [m.value() for m in read_back(topic, 20)] == [
        str(i).encode() for i in range(20)
    ]


@pytest.mark.asyncio
async def test_waiting_for_room_is_bounded() -> None:
    p = AIOProducer(
        unreachable_conf(
            **{"queue.buffering.max.messages": 5, "message.timeout.ms": 500}
        )
    )
    futs = [p.produce("t", b"x") for _ in range(10)]
    done, _ = await asyncio.wait(futs, timeout=30)
    assert len(done) == 10
    for f in futs:
        exc = f.exception()
        assert isinstance(exc, KafkaException)
        assert exc.args[0].code() == KafkaError._MSG_TIMED_OUT
    await p.close(1)


@pytest.mark.asyncio
async def test_flush_len_and_purge() -> None:
    p = AIOProducer(unreachable_conf(**{"message.timeout.ms": 60000}))
    futs = [p.produce("t", b"x") for _ in range(5)]
    assert len(p) == 5
    assert await p.flush(0.2) == 5  # timed out: all five still pending
    p.purge()
    for f in futs:
        with pytest.raises(KafkaException) as info:
            await asyncio.wait_for(f, 30)
        assert info.value.args[0].code() == KafkaError._PURGE_QUEUE
    assert await p.flush(10) == 0
    await p.close()


@pytest.mark.asyncio
async def test_flush_waits_for_delivery(
    conf: dict[str, Any], topic: str
) -> None:
    delivered: list[int] = []
    async with AIOProducer({**conf, "linger.ms": 50}) as p:
        for i in range(100):
            p.produce_nowait(
                topic, b"x", on_delivery=lambda e, m, i=i: delivered.append(i)
            )
        assert len(p) > 0
        assert await p.flush() == 0
        assert len(p) == 0
        assert delivered == list(range(100))


# ---- errors -----------------------------------------------------------------


def test_kafka_error_api() -> None:
    import pickle

    err = KafkaError(KafkaError._MSG_TIMED_OUT)
    assert err.code() == KafkaError._MSG_TIMED_OUT == -192
    assert err.name() == "_MSG_TIMED_OUT"
    assert err.str() == "Local: Message timed out"
    assert not err.fatal() and not err.txn_requires_abort()
    assert err == KafkaError._MSG_TIMED_OUT
    assert err != KafkaError(KafkaError._TRANSPORT)
    assert hash(err) == hash(KafkaError._MSG_TIMED_OUT)
    custom = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, "nope", fatal=True,
                        retriable=True)
    assert custom.str() == "nope" and custom.fatal() and custom.retriable()
    assert pickle.loads(pickle.dumps(custom)).str() == "nope"
    exc = KafkaException(err)
    assert exc.args[0] is err
    assert "Message timed out" in str(exc)
    assert issubclass(KafkaException, Exception)


# ---- a real broker that goes away ------------------------------------------


@pytest.mark.asyncio
async def test_real_broker_going_down_fails_clearly_then_recovers(
    tmp_path: Any,
) -> None:
    """A broker of our own, stopped under a live producer: futures fail
    with a clear KafkaException within message.timeout.ms, close() stays
    bounded, and after a restart producing works again."""
    from tests.kafkabroker import KafkaBroker

    broker = KafkaBroker(tmp_path / "broker")
    bootstrap = await asyncio.to_thread(broker.start)
    try:
        conf = {
            "bootstrap.servers": bootstrap,
            "linger.ms": 0,
            "message.timeout.ms": 3000,
            "reconnect.backoff.max.ms": 200,
        }
        p = AIOProducer(conf)
        first = await p.produce("down-test", b"before")
        assert first.error() is None

        await asyncio.to_thread(broker.stop_broker_process)
        with pytest.raises(KafkaException) as info:
            await asyncio.wait_for(p.produce("down-test", b"during"), 60)
        err = info.value.args[0]
        assert err.code() == KafkaError._MSG_TIMED_OUT
        assert "timed out" in err.str()

        stuck = [p.produce("down-test", b"stuck") for _ in range(20)]
        await asyncio.wait_for(p.close(timeout=1.0), 30)
        assert all(isinstance(f.exception(), KafkaException) for f in stuck)

        await asyncio.to_thread(broker.restart)
        async with AIOProducer(conf) as p2:
            again = await asyncio.wait_for(p2.produce("down-test", b"after"),
                                           60)
            assert again.error() is None and (again.offset() or 0) >= 1
    finally:
        await asyncio.to_thread(broker.stop)


@pytest.mark.asyncio
async def test_async_callback_on_poll_thread_is_refused_clearly(
    conf: dict[str, Any], topic: str
) -> None:
    logger, records = recording_logger("test.poll-async")

    async def cb(err: KafkaError | None, msg: Message) -> None:
        raise AssertionError("never awaited, never run")

    async with AIOProducer({**conf, "logger": logger}) as p:
        p.produce_nowait(topic, b"x", on_delivery=cb, dispatch="poll_thread")
        assert await p.flush(30) == 0
        await wait_until(lambda: records.records, what="the error log")
    [rec] = records.records
    assert rec.exc_info is not None
    assert "poll thread" in str(rec.exc_info[1])


class _OwnFuture(asyncio.Future):  # type: ignore[type-arg]
    pass


class _OwnFutureLoop(asyncio.SelectorEventLoop):
    def create_future(self) -> asyncio.Future[Any]:
        return _OwnFuture(loop=self)


@pytest.mark.parametrize("loop_type", [asyncio.SelectorEventLoop,
                                       _OwnFutureLoop])
def test_futures_come_from_the_loop(
    conf: dict[str, Any], topic: str, loop_type: type
) -> None:
    """On the stdlib loop the futures are made directly (with one kwargs
    dict for the binding), bound to that loop; a loop with its own
    create_future() gets its own futures, from every call."""
    loop = loop_type()

    async def main() -> list[Any]:
        async with AIOProducer(conf) as p:
            futs = [p.produce(topic, b"v%d" % i) for i in range(3)]
            for f in futs:
                assert f.get_loop() is loop
            await asyncio.gather(*futs)
            return [type(f) for f in futs] + [f.result().offset()
                                              for f in futs]

    try:
        got = loop.run_until_complete(main())
    finally:
        loop.close()
    want = _OwnFuture if loop_type is _OwnFutureLoop else asyncio.Future
    assert got[:3] == [want] * 3
    assert got[3:] == sorted(got[3:]) and len(set(got[3:])) == 3


class _IterationCounter:
    """Counts the loop's iterations with a callback that reschedules
    itself; note(fut) records the count when fut's done callback runs."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.tick = 0
        self.ticking = True
        self.seen: list[int] = []

    def _ticker(self) -> None:
        self.tick += 1
        if self.ticking:
            self.loop.call_soon(self._ticker)

    def note(self, fut: asyncio.Future[Any]) -> None:
        fut.add_done_callback(lambda _f: self.seen.append(self.tick))

    async def run_until_done(self, futs: list[Any]) -> None:
        self.loop.call_soon(self._ticker)
        try:
            await asyncio.gather(*futs)
            await asyncio.sleep(0)
        finally:
            self.ticking = False


@pytest.mark.asyncio
async def test_a_large_delivery_batch_is_completed_over_several_iterations(
    conf: dict[str, Any], topic: str
) -> None:
    """One delivery batch of 1000 (linger.ms holds them in one request)
    is completed at most 64 futures per loop iteration, so a timer or a
    request handler waits for a slice, not for the whole batch.  A
    ticker that reschedules itself counts the iterations; each future's
    done callback notes the count."""
    c = _IterationCounter()
    async with AIOProducer({**conf, "linger.ms": 300,
                            "batch.num.messages": 10000}) as p:
        futs = [p.produce(topic, b"v") for _ in range(1000)]
        for f in futs:
            c.note(f)
        await c.run_until_done(futs)
    seen = c.seen
    assert len(seen) == 1000
    per_tick: dict[int, int] = {}
    for t in seen:
        per_tick[t] = per_tick.get(t, 0) + 1
    # A tick value can span the tail of one iteration and the head of the
    # next, so at most two runs of the dispatcher share one.
    assert max(per_tick.values()) <= 2 * 64, sorted(per_tick.values())[-5:]
    assert len(per_tick) >= 1000 // (2 * 64)


def _wait_reports_taken(p: AIOProducer) -> None:
    """Blocks the loop (if any) until the poll thread has taken every
    delivery report off librdkafka: they pile up for the dispatcher."""
    deadline = time.monotonic() + 60
    while len(p) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(p) == 0, "delivery reports never came"


@pytest.mark.asyncio
async def test_flush_returns_after_every_reported_future_is_done(
    conf: dict[str, Any], topic: str
) -> None:
    """flush() when librdkafka holds nothing any more (every report taken
    by the poll thread) still waits for the dispatcher's slices on their
    way to the loop: when it returns, every future it covered is done."""
    async with AIOProducer({**conf, "linger.ms": 300,
                            "batch.num.messages": 10000}) as p:
        futs = [p.produce(topic, b"v") for _ in range(1000)]
        _wait_reports_taken(p)
        assert not any(f.done() for f in futs)
        assert await p.flush() == 0
        assert all(f.done() for f in futs)
    offsets = [f.result().offset() for f in futs]
    assert offsets == sorted(offsets) and len(set(offsets)) == 1000


def test_a_loop_closed_between_slices_drops_the_rest_with_a_warning(
    conf: dict[str, Any], topic: str
) -> None:
    """A loop closed while the dispatcher still holds part of a delivery
    batch (closing dropped its continuation): the next event from the poll
    thread finds the loop closed, warns once and lets the rest go, instead
    of keeping them, and every later event, for good."""
    import re

    logger, records = recording_logger("aiokafka_c.test.closed_between")
    loop = asyncio.new_event_loop()

    async def start() -> tuple[AIOProducer, list[Any]]:
        p = AIOProducer({**conf, "linger.ms": 300,
                         "batch.num.messages": 10000,
                         "statistics.interval.ms": 100,
                         "stats_cb": lambda _s: None, "logger": logger})
        return p, [p.produce(topic, b"v") for _ in range(1000)]

    try:
        p, futs = loop.run_until_complete(start())
        _wait_reports_taken(p)
        # A few iterations: a few slices, then the loop stops and closes.
        loop.run_until_complete(asyncio.sleep(0))
        done = sum(f.done() for f in futs)
        assert 0 < done < 1000, done
    finally:
        loop.close()
    refs = [weakref.ref(f) for f in futs]
    del futs
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
            "results dropped" in r.getMessage() for r in records.records):
        time.sleep(0.01)
    [rec] = [r for r in records.records
             if "results dropped" in r.getMessage()]
    assert "the loop is closed" in rec.getMessage()
    m = re.search(r"(\d+) results dropped", rec.getMessage())
    assert m and int(m.group(1)) >= 1000 - done, rec.getMessage()
    gc.collect()
    assert sum(r() is not None for r in refs) == 0
    p.close()
    time.sleep(0.3)  # more statistics events: no second warning
    assert sum("results dropped" in r.getMessage()
               for r in records.records) == 1


@pytest.mark.asyncio
async def test_a_backlog_is_worked_off_in_a_share_not_just_a_slice(
    conf: dict[str, Any], topic: str
) -> None:
    """With more reports waiting than a few slices, each run completes a
    1/16 share of the backlog: a loop adding more than one slice per
    iteration cannot grow it without bound.  20000 reports taken at once
    take well under the 313 iterations slices of 64 alone would."""
    c = _IterationCounter()
    async with AIOProducer({**conf, "linger.ms": 300,
                            "batch.num.messages": 100000,
                            "queue.buffering.max.messages": 100000}) as p:
        futs = [p.produce(topic, b"v") for _ in range(20000)]
        for f in futs:
            c.note(f)
        _wait_reports_taken(p)
        await c.run_until_done(futs)
    seen = c.seen
    assert len(seen) == 20000
    assert max(seen) - min(seen) < 20000 // 64 // 2, max(seen) - min(seen)
