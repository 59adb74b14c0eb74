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
- ``kafka_cluster`` (session): a 3-node KRaft cluster
  (``tests.kafkabroker.KafkaCluster``), started only when a selected test
  asks for it; such tests are marked ``cluster`` here automatically (so
  ``-m "not cluster"`` never starts it). ``cluster`` (function): the same
  cluster, with any node a previous test left down started again.
- ``kafka_secure`` (session): a single-node broker with TLS, SASL
  (SCRAM-SHA-512, PLAIN) and ACLs (``tests.securebroker.SecureBroker``),
  its certificates made by ``openssl`` in its own directory; started only
  when a selected test asks for it, and such tests are marked ``security``.

The helpers use confluent-kafka (a test dependency), never aiokafka_c, so a
bug in our client cannot hide itself in its own checks.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
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

from tests.kafkabroker import KafkaBroker, KafkaCluster
from tests.securebroker import SecureBroker

BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
#: where the cluster tests append their figures (one JSON object a line),
#: under the session's base temporary directory
FIGURES_FILE = "cluster-figures.jsonl"
FIGURES_PREFIX = "CLUSTER-FIGURES"


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


_TRANSIENT_CREATE_ERRORS = (
    KafkaError.INVALID_REPLICATION_FACTOR,
    KafkaError._TIMED_OUT,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NOT_CONTROLLER,
)


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
    # A starved machine can stall the single broker's controller for tens
    # of seconds (seen in CI: "Failed while waiting for controller", or no
    # answer at all): such a stall is retried up to three timeouts in all.
    deadline = time.monotonic() + 3 * timeout
    retried = False
    while True:
        futures = admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        try:
            futures[topic].result(timeout=timeout)
            break
        except (TimeoutError, FutureTimeout):  # the same on 3.11+
            if time.monotonic() > deadline:
                raise
        except KafkaException as exc:
            # On a starved machine the single broker can miss its 4 s
            # session with its own controller and be fenced for a moment
            # ("All brokers are currently fenced"): it comes back at its
            # next heartbeat.
            err = exc.args[0]
            if retried and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                break  # the stalled attempt made it after all
            if (err.code() not in _TRANSIENT_CREATE_ERRORS
                    or time.monotonic() > deadline):
                raise
        retried = True
        time.sleep(0.5)
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


@pytest.fixture(scope="session")
def kafka_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KafkaCluster]:
    """A 3-node KRaft cluster for the whole session (only if asked for);
    its node directories are under the session's temporary directory, so
    the broker logs of a failed run can be looked at."""
    cluster = KafkaCluster(3, tmp_path_factory.mktemp("kafka-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(kafka_cluster: KafkaCluster) -> KafkaCluster:
    """The session cluster with every node up (a failed test may have left
    one killed)."""
    down = [i for i, n in kafka_cluster.nodes.items() if not n.running]
    for node_id in down:
        kafka_cluster.restart(node_id)
    if down:
        kafka_cluster.wait_all_registered(120)
    return kafka_cluster


@pytest.fixture(scope="session")
def kafka_secure(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SecureBroker]:
    """A broker with SSL, SASL_SSL and ACLs for the whole session (only if
    asked for); its certificates, data and logs are under the session's
    temporary directory."""
    secure = SecureBroker(tmp_path_factory.mktemp("kafka-secure"))
    try:
        secure.start()
        yield secure
    finally:
        secure.stop()


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    # Marks every test that uses the cluster (or the secure broker),
    # however indirectly, so that -m "not cluster" (-m "not security")
    # deselects exactly the tests that would start it.
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "kafka_cluster" in names:
            item.add_marker(pytest.mark.cluster)
        if "kafka_secure" in names:
            item.add_marker(pytest.mark.security)


def record_figures(
    tmp_path_factory: pytest.TempPathFactory, figures: dict[str, object]
) -> None:
    """Prints ``CLUSTER-FIGURES {json}`` and appends it to the session's
    figures file (shown again in the terminal summary)."""
    line = json.dumps(figures, sort_keys=True)
    print(f"{FIGURES_PREFIX} {line}", flush=True)
    path = tmp_path_factory.getbasetemp() / FIGURES_FILE
    with open(path, "a") as f:
        f.write(line + "\n")


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter,
    exitstatus: int,
    config: pytest.Config,
) -> None:
    # Only a base temporary directory the session made (asking for one
    # here would create it).
    factory = getattr(config, "_tmp_path_factory", None)
    basetemp = getattr(factory, "_basetemp", None)
    if basetemp is None:
        return
    try:
        path = Path(basetemp) / FIGURES_FILE
        lines = path.read_text().splitlines()
    except OSError:
        return
    terminalreporter.section("cluster figures")
    for line in lines:
        terminalreporter.write_line(f"{FIGURES_PREFIX} {line}")
    terminalreporter.write_line(f"(also in {path})")


# --------------------------------------------------------------------------
# event loops: every async test runs on asyncio's default loop and uvloop
# (AIOKAFKA_C_TEST_LOOPS=asyncio narrows that: the other-Python legs of CI
# run asyncio's loop only, the main and ASan legs run both)


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, object]:
    import asyncio
    import os

    import uvloop

    every = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    wanted = os.environ.get("AIOKAFKA_C_TEST_LOOPS", "asyncio,uvloop")
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    unknown = [n for n in names if n not in every]
    if unknown or not names:
        raise pytest.UsageError(
            f"AIOKAFKA_C_TEST_LOOPS={wanted!r}: name asyncio and/or uvloop"
        )
    return {n: every[n] for n in names}
