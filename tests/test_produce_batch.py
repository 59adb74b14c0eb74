"""produce_batch(): many messages, one future; each message's outcome is
its own (a failed message carries its error), bad input raises before
anything is sent.  Against the real broker, except where a fault has to
be made on demand (the embedded mock cluster)."""

from __future__ import annotations

import asyncio
import gc
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiokafka_c import (
    TIMESTAMP_CREATE_TIME,
    AIOProducer,
    KafkaError,
    KafkaException,
)
from tests.conftest import ReadBack, TopicFactory
from tests.helpers import recording_logger, unreachable_conf, wait_until


@pytest.fixture
def conf(kafka_bootstrap: str) -> dict[str, Any]:
    return {"bootstrap.servers": kafka_bootstrap, "linger.ms": 5}


@pytest.mark.asyncio
async def test_every_form_arrives_in_order_with_its_fields(
    conf: dict[str, Any], new_topic: TopicFactory, read_back: ReadBack
) -> None:
    topic = new_topic(1)
    batch: list[Any] = []
    for i in range(600):
        v = b"v%d" % i
        form = i % 4
        if form == 0:
            batch.append(v)
        elif form == 1:
            batch.append((b"k%d" % i, v))
        elif form == 2:
            batch.append((b"k%d" % i, v, [("n", b"%d" % i), ("none", None)]))
        else:
            batch.append((None, v.decode(), None, 1_700_000_000_000 + i))
    async with AIOProducer(conf) as p:
        out = await p.produce_batch(topic, batch, partition=0)
    assert len(out) == len(batch)
    assert [m.error() for m in out] == [None] * len(batch)
    assert [m.offset() for m in out] == list(range(len(batch)))
    got = read_back(topic, len(batch))
    assert [m.value() for m in got] == [b"v%d" % i for i in range(600)]
    for i, m in enumerate(got):
        form = i % 4
        assert m.key() == (b"k%d" % i if form in (1, 2) else None)
        if form == 2:
            assert m.headers() == [("n", b"%d" % i), ("none", None)]
        else:
            assert not m.headers()
        if form == 3:
            assert m.timestamp() == (TIMESTAMP_CREATE_TIME,
                                     1_700_000_000_000 + i)


@pytest.mark.asyncio
async def test_a_refused_message_fails_alone(
    kafka_bootstrap: str, new_topic: TopicFactory, read_back: ReadBack
) -> None:
    topic = new_topic(1)
    conf = {"bootstrap.servers": kafka_bootstrap, "message.max.bytes": 2000}
    async with AIOProducer(conf) as p:
        out = await p.produce_batch(topic, [b"a", b"x" * 5000, b"c"])
    assert [m.value() for m in out] == [b"a", b"x" * 5000, b"c"]
    assert out[0].error() is None and out[2].error() is None
    err = out[1].error()
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert [m.value() for m in read_back(topic, 2)] == [b"a", b"c"]


@pytest.mark.asyncio
async def test_unknown_partition_is_each_message_error_not_a_raise(
    conf: dict[str, Any], new_topic: TopicFactory
) -> None:
    topic = new_topic(1)
    async with AIOProducer(conf) as p:
        await p.produce(topic, b"warm", partition=0)  # metadata is known
        out = await p.produce_batch(topic, [b"1", b"2"], partition=7)
    assert [m.error().code() for m in out] == [KafkaError._UNKNOWN_PARTITION] * 2


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "bad, match",
    [
        ([b"ok", 3], r"messages\[1\]: value must be"),
        ([(b"k",)], r"messages\[0\]: a tuple is \(key, value"),
        ([(b"k", b"v", [("h", 3)])], r"messages\[0\]: .*header"),
        ([(b"k", b"v", None, "soon")], r"messages\[0\]: .*timestamp"),
        (b"bytes are not a batch", r"messages must be a sequence"),
        (42, r"messages must be a sequence"),
    ],
)
async def test_bad_input_raises_before_anything_is_sent(
    conf: dict[str, Any], new_topic: TopicFactory, bad: Any, match: str
) -> None:
    topic = new_topic(1)
    async with AIOProducer(conf) as p:
        with pytest.raises((TypeError, ValueError), match=match):
            p.produce_batch(topic, bad)
        assert len(p) == 0
        out = await p.produce_batch(topic, [b"after"])
        assert out[0].offset() == 0  # nothing of the bad batch went out


@pytest.mark.asyncio
async def test_a_bad_topic_raises_like_produce(conf: dict[str, Any]) -> None:
    async with AIOProducer(conf) as p:
        with pytest.raises(ValueError, match="NUL") as batch_err:
            p.produce_batch("bad\x00topic", [b"x"])
        with pytest.raises(ValueError, match="NUL") as one_err:
            p.produce("bad\x00topic", b"x")
        assert str(batch_err.value) == str(one_err.value)
        assert len(p) == 0


def _batches_alive() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == "_Batch")


def test_a_batch_failed_after_its_loop_ended_is_freed() -> None:
    """Messages waiting for room fail when the producer closes after its
    loop has ended: the batch must still let go of them (its messages are
    not GC-tracked, so only its own bookkeeping breaks the cycle)."""
    before = _batches_alive()

    async def main() -> tuple[AIOProducer, Any]:
        p = AIOProducer({"test.mock.num.brokers": 1,
                         "message.timeout.ms": 60000,
                         "queue.buffering.max.messages": 10})
        await p.produce("t", b"warm")
        p._mock_set_broker_up(1, False)
        fut = p.produce_batch("t", [b"x" * 1000 for _ in range(50)])
        await asyncio.sleep(0.2)
        return p, fut

    p, fut = asyncio.run(main())
    assert _batches_alive() == before + 1
    del fut
    p.close(1)
    del p
    assert _batches_alive() == before


@pytest.mark.asyncio
async def test_empty_batch_and_argument_errors(conf: dict[str, Any]) -> None:
    async with AIOProducer(conf) as p:
        assert await p.produce_batch("t-empty", []) == []
        with pytest.raises(TypeError, match="topic must be str"):
            p.produce_batch(b"topic", [b"x"])
        with pytest.raises(TypeError):
            p.produce_batch("t")  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            p.produce_batch("t", [b"x"], 0)  # type: ignore[misc]
    with pytest.raises(RuntimeError, match="closed"):
        p.produce_batch("t", [b"x"])


@pytest.mark.asyncio
async def test_a_batch_larger_than_the_local_queue_waits_for_room(
    conf: dict[str, Any], new_topic: TopicFactory, read_back: ReadBack
) -> None:
    topic = new_topic(1)
    async with AIOProducer({**conf, "queue.buffering.max.messages": 50}) as p:
        out = await p.produce_batch(topic, [b"%d" % i for i in range(2000)])
    assert [m.error() for m in out] == [None] * 2000
    assert len(read_back(topic, 2000)) == 2000


@pytest.mark.asyncio
async def test_the_batch_list_is_copied_before_user_code_runs(
    conf: dict[str, Any], new_topic: TopicFactory
) -> None:
    topic = new_topic(1)
    batch: list[Any] = []

    class Shrinking:
        def __buffer__(self, flags: int) -> memoryview:
            batch.clear()
            return memoryview(b"shrunk")

    batch.extend([b"a", Shrinking(), b"c"])
    async with AIOProducer(conf) as p:
        if sys.version_info < (3, 12):
            with pytest.raises(TypeError, match=r"messages\[1\]"):
                p.produce_batch(topic, batch)
            return
        out = await p.produce_batch(topic, batch)
    assert [m.value() for m in out] == [b"a", b"shrunk", b"c"]


@pytest.mark.asyncio
async def test_closed_while_building_raises_and_sends_nothing(
    conf: dict[str, Any],
) -> None:
    if sys.version_info < (3, 12):
        pytest.skip("__buffer__ (PEP 688) is 3.12+")
    p = AIOProducer(conf)
    closing: list[Any] = []

    class Closer:
        def __buffer__(self, flags: int) -> memoryview:
            closing.append(p.close())
            return memoryview(b"x")

    with pytest.raises(RuntimeError, match="clos"):
        p.produce_batch("t-closed", [b"a", Closer()])
    await closing[0]


@pytest.mark.asyncio
async def test_unreachable_broker_each_message_times_out_with_the_reason() -> None:
    async with AIOProducer(unreachable_conf()) as p:
        out = await asyncio.wait_for(p.produce_batch("t", [b"1", b"2"]), 30)
    for m in out:
        err = m.error()
        assert err is not None and err.code() == KafkaError._MSG_TIMED_OUT


@pytest.mark.asyncio
async def test_close_with_a_batch_in_flight_answers_it() -> None:
    p = AIOProducer({**unreachable_conf(), "message.timeout.ms": 60000})
    fut = p.produce_batch("t", [b"%d" % i for i in range(10)])
    await asyncio.wait_for(p.close(1), 30)
    out = await asyncio.wait_for(fut, 30)
    codes = {m.error().code() for m in out}
    assert codes <= {KafkaError._PURGE_QUEUE, KafkaError._DESTROY,
                     KafkaError._MSG_TIMED_OUT}, codes
    assert len(codes) >= 1


@pytest.mark.asyncio
async def test_failures_of_a_cancelled_batch_are_logged(
    conf: dict[str, Any], new_topic: TopicFactory
) -> None:
    topic = new_topic(1)
    logger, records = recording_logger("test.batch-cancelled")
    async with AIOProducer({**conf, "logger": logger}) as p:
        await p.produce(topic, b"warm", partition=0)
        fut = p.produce_batch(topic, [b"1", b"2", b"3"], partition=9)
        fut.cancel()
        await p.flush(10)
        await wait_until(
            lambda: any("produce_batch()" in m for m in records.messages()),
            what="the failure log line",
        )
    [line] = [m for m in records.messages() if "produce_batch()" in m]
    assert "3 of 3 messages" in line and "Unknown partition" in line


@pytest.mark.asyncio
async def test_results_hold_no_hidden_references(
    conf: dict[str, Any], new_topic: TopicFactory
) -> None:
    topic = new_topic(1)
    async with AIOProducer(conf) as p:
        await p.produce_batch(topic, [b"warm"])
        gc.collect()
        before = len(gc.get_objects())
        for _ in range(30):
            out = await p.produce_batch(topic, [b"x"] * 100)
            # the list's reference and getrefcount's argument, nothing else
            assert {sys.getrefcount(out[i]) for i in range(len(out))} == {2}
            del out
        gc.collect()
        assert len(gc.get_objects()) - before < 100


@pytest.mark.asyncio
async def test_in_a_transaction_commits_with_it(
    kafka_bootstrap: str, new_topic: TopicFactory, read_back: ReadBack
) -> None:
    topic = new_topic(1)
    conf = {"bootstrap.servers": kafka_bootstrap,
            "transactional.id": f"batch-{topic}"}
    async with AIOProducer(conf) as p:
        await p.init_transactions()
        p.begin_transaction()
        out = await p.produce_batch(topic, [b"a", b"b"])
        assert [m.error() for m in out] == [None, None]
        await p.commit_transaction()
    assert [m.value() for m in read_back(topic, 2)] == [b"a", b"b"]


_payload = st.one_of(st.none(), st.binary(max_size=20), st.text(max_size=10),
                     st.integers(), st.floats(allow_nan=False))
_headers = st.one_of(st.none(), st.lists(st.tuples(st.text(max_size=5),
                                                   _payload), max_size=3),
                     st.integers())
_element = st.one_of(
    _payload,
    st.tuples(_payload, _payload),
    st.tuples(_payload, _payload, _headers),
    st.tuples(_payload, _payload, _headers,
              st.one_of(st.none(), st.integers(-5, 2**63), st.text())),
    st.tuples(), st.tuples(_payload),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(_element, max_size=8))
def test_fuzzed_batches_raise_cleanly_or_answer_every_message(
    batch: list[Any],
) -> None:
    async def run() -> None:
        conf = {"test.mock.num.brokers": 1, "linger.ms": 0}
        async with AIOProducer(conf) as p:
            try:
                fut = p.produce_batch("fuzz", batch)
            except (TypeError, ValueError, OverflowError) as e:
                assert str(e)
                assert len(p) == 0
                return
            out = await asyncio.wait_for(fut, 30)
            assert len(out) == len(batch)
            for m in out:
                assert m.error() is None or isinstance(m.error(), KafkaError)

    asyncio.run(run())


def test_produce_batch_type_error_is_not_kafka_exception() -> None:
    assert not issubclass(TypeError, KafkaException)
