"""Faults a real broker cannot produce on demand, injected into librdkafka's
embedded mock cluster: a broker error in the ProduceResponse, retriable
errors that must stay invisible, and a broker going down at a chosen
moment.  Everything else is tested against the real broker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiokafka_c import AIOProducer, KafkaError, KafkaException
from tests.helpers import wait_until

PRODUCE = 0  # Kafka API key of ProduceRequest


def mock_conf(**extra: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "test.mock.num.brokers": 1,
        "linger.ms": 0,
        "retry.backoff.ms": 10,
    }
    conf.update(extra)
    return conf


@pytest.mark.asyncio
async def test_broker_error_in_produce_response_fails_the_future() -> None:
    async with AIOProducer(mock_conf(**{"enable.idempotence": False})) as p:
        await p.produce("t", b"warm-up", partition=0)
        # A non-retriable error: not retried, so one injection is used up.
        p._mock_push_errors([KafkaError.TOPIC_AUTHORIZATION_FAILED], PRODUCE)
        with pytest.raises(KafkaException) as info:
            await asyncio.wait_for(p.produce("t", b"denied", partition=0), 30)
        err = info.value.args[0]
        assert err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        assert err.name() == "TOPIC_AUTHORIZATION_FAILED"
        assert not err.retriable()
        # The producer is still usable afterwards (librdkafka keeps the
        # denied topic marked as failed until its metadata is refreshed).
        ok = await p.produce("other", b"after", partition=0)
        assert ok.error() is None


@pytest.mark.asyncio
async def test_retriable_errors_are_retried_in_order() -> None:
    async with AIOProducer(mock_conf()) as p:
        await p.produce("t", b"warm-up", partition=0)
        p._mock_push_errors(
            [KafkaError.NOT_ENOUGH_REPLICAS, KafkaError.NOT_ENOUGH_REPLICAS],
            PRODUCE,
        )
        msgs = await asyncio.wait_for(
            asyncio.gather(
                *[p.produce("t", str(i), partition=0) for i in range(50)]
            ),
            30,
        )
    assert all(m.error() is None for m in msgs)
    # A retried batch the broker had already written comes back persisted
    # with its offset unknown (None); the known ones must keep call order.
    known = [off for m in msgs if (off := m.offset()) is not None]
    assert known == sorted(known) and len(set(known)) == len(known)
    assert len(msgs) == 50


@pytest.mark.asyncio
async def test_broker_down_at_a_chosen_moment() -> None:
    errors: list[KafkaError] = []
    conf = mock_conf(
        **{"message.timeout.ms": 1500, "reconnect.backoff.max.ms": 100},
        error_cb=errors.append,
    )
    p = AIOProducer(conf)
    assert (await p.produce("t", b"up")).error() is None
    p._mock_set_broker_up(1, False)
    with pytest.raises(KafkaException) as info:
        await asyncio.wait_for(p.produce("t", b"while down"), 30)
    assert info.value.args[0].code() == KafkaError._MSG_TIMED_OUT
    await wait_until(lambda: errors, what="an error_cb call")
    assert {e.code() for e in errors} & {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
    }
    p._mock_set_broker_up(1, True)
    back = await asyncio.wait_for(p.produce("t", b"up again"), 30)
    assert back.error() is None
    await p.close(5)
    with pytest.raises(RuntimeError, match="mock cluster"):
        p._mock_set_broker_up(1, True)


def test_fault_hooks_need_a_mock_cluster() -> None:
    p = AIOProducer({"bootstrap.servers": "127.0.0.1:1"})
    with pytest.raises(RuntimeError, match="mock cluster"):
        p._mock_push_errors([1])
    p.close()
