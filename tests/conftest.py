"""Shared pytest fixtures: a real Kafka broker and independent helpers.

- ``kafka_bootstrap`` (session): "host:port" of a real Kafka broker; the one
  in ``$KAFKA_BOOTSTRAP_SERVERS`` if set, else a single-node KRaft broker
  started once per session by ``tests.kafkabroker.KafkaBroker``.
- ``new_topic`` (function): ``new_topic(partitions=1) -> str`` creates a
  fresh, uniquely named topic and waits until it is usable.
- ``topic`` (function): one such fresh topic with 1 partition (one partition
  keeps message order and offsets predictable).
- ``read_back`` (function): ``read_back(topic, n, timeout=30)`` consumes the
  first ``n`` messages of ``topic`` with confluent-kafka, independently of
  the client under test.

The helpers use confluent-kafka (a test dependency), never aiokafka_c, so a
bug in our client cannot hide itself in its own checks.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Protocol

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from tests.kafkabroker import KafkaBroker

BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"


class TopicFactory(Protocol):
    """Type of the ``new_topic`` fixture."""

    def __call__(
        self, partitions: int = 1, *, name: str | None = None
    ) -> str: ...


class ReadBack(Protocol):
    """Type of the ``read_back`` fixture."""

    def __call__(
        self, topic: str, n: int, timeout: float = 30.0
    ) -> list[Message]: ...


# --------------------------------------------------------------------------
# helpers (plain functions, usable outside fixtures too)


def unique_topic_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def make_topic(
    bootstrap: str,
    partitions: int = 1,
    *,
    name: str | None = None,
    timeout: float = 30.0,
) -> str:
    """Create a topic (replication factor 1) and wait until every partition
    has a leader; return its name."""
    topic = name if name is not None else unique_topic_name()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    futures[topic].result(timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(topic, timeout=timeout).topics.get(topic)
        if (
            md is not None
            and md.error is None
            and len(md.partitions) == partitions
            and all(
                p.error is None and p.leader >= 0
                for p in md.partitions.values()
            )
        ):
            return topic
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"topic {topic!r} not ready after {timeout} s: {md}"
            )
        time.sleep(0.05)


def consume_from_beginning(
    bootstrap: str, topic: str, n: int, timeout: float = 30.0
) -> list[Message]:
    """The first ``n`` messages of ``topic`` (all partitions, from the
    beginning), sorted by (partition, offset). Fails the test on timeout or
    on a consumer error."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_topic_name("read-back"),
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "auto.offset.reset": "earliest",
        }
    )
    got: list[Message] = []
    try:
        md = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if md is None or md.error is not None or not md.partitions:
            pytest.fail(f"read_back: topic {topic!r} not found: {md}")
        consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.partitions]
        )
        deadline = time.monotonic() + timeout
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(
                    f"read_back: got {len(got)} of {n} messages from "
                    f"{topic!r} within {timeout} s"
                )
            for msg in consumer.consume(n - len(got), min(left, 1.0)):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(err)
                got.append(msg)
    finally:
        consumer.close()
    got.sort(key=lambda m: (m.partition() or 0, m.offset() or 0))
    return got


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of a real Kafka broker for the whole session."""
    external = os.environ.get(BOOTSTRAP_ENV)
    if external:
        yield external
        return
    broker = KafkaBroker()
    try:
        yield broker.start()
    finally:
        broker.stop()


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> TopicFactory:
    """Factory: ``new_topic(partitions=1, *, name=None) -> str``."""

    def factory(partitions: int = 1, *, name: str | None = None) -> str:
        return make_topic(kafka_bootstrap, partitions, name=name)

    return factory


@pytest.fixture
def topic(new_topic: TopicFactory) -> str:
    """A fresh, empty topic with one partition."""
    return new_topic(1)


@pytest.fixture
def read_back(kafka_bootstrap: str) -> ReadBack:
    """``read_back(topic, n, timeout=30) -> list[confluent_kafka.Message]``."""

    def reader(topic: str, n: int, timeout: float = 30.0) -> list[Message]:
        return consume_from_beginning(kafka_bootstrap, topic, n, timeout)

    return reader


# --------------------------------------------------------------------------
# event loops: every async test runs on asyncio's default loop and uvloop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, object]:
    import asyncio

    import uvloop

    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
