"""The README's usage example is code that runs, and its two commands are
the ones CI uses."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.rst").read_text()


def python_blocks() -> list[str]:
    blocks = []
    for m in re.finditer(
        r"^\.\. code-block:: python\n\n((?:    .*\n|\n)+)", README, re.MULTILINE
    ):
        lines = m.group(1).splitlines()
        blocks.append("\n".join(line[4:] for line in lines) + "\n")
    return blocks


def test_usage_example_runs_against_the_broker(kafka_bootstrap: str) -> None:
    [usage] = [
        b
        for b in python_blocks()
        if "AIOProducer(" in b and "transaction" not in b
    ]
    code = usage.replace("127.0.0.1:9092", kafka_bootstrap)
    assert code != usage
    r = subprocess.run(
        [sys.executable, "-X", "dev", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    partition, offset, timestamp = r.stdout.split(maxsplit=2)
    assert partition.isdigit() and offset.isdigit()
    assert timestamp.startswith("(1, ")  # create time, set by the client
    assert "failed" not in r.stdout


def test_the_two_commands_are_what_ci_runs() -> None:
    commands = re.findall(r"^    (bash scripts/\S+)$", README, re.MULTILINE)
    assert commands == ["bash scripts/run.sh", "bash scripts/test.sh"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh\n" in ci


def test_consumer_example_runs_against_the_broker(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    [example] = [
        b
        for b in python_blocks()
        if "AIOConsumer(" in b and "transaction" not in b
    ]
    topic = new_topic(partitions=2)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(600):
        producer.produce(topic, b"%d" % i, partition=i % 2)
    assert producer.flush(30) == 0
    code = example.replace("127.0.0.1:9092", kafka_bootstrap).replace(
        '"items"', repr(topic)
    ).replace('"readme"', repr("readme-" + topic))
    assert code.count(topic) == 2  # the topic and the group id
    r = subprocess.run(
        [sys.executable, "-X", "dev", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    got, committed = map(int, r.stdout.split())
    assert 10 < got <= 600
    assert committed == 2  # both partitions had something to commit


def test_admin_example_runs_against_the_broker(kafka_bootstrap: str) -> None:
    [example] = [b for b in python_blocks() if "AIOAdminClient(" in b]
    topic = f"readme-admin-{uuid.uuid4().hex}"
    code = example.replace("127.0.0.1:9092", kafka_bootstrap).replace(
        '"readme-admin"', repr(topic)
    )
    assert code.count(topic) == 1
    r = subprocess.run(
        [sys.executable, "-X", "dev", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["4", "delete"]
    other = AdminClient({"bootstrap.servers": kafka_bootstrap})
    deadline = time.monotonic() + 30
    while topic in other.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, "the example left its topic"
        time.sleep(0.2)


def test_transactions_example_runs_against_the_broker(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    [example] = [b for b in python_blocks() if "transaction()" in b]
    src, dst = new_topic(partitions=1), new_topic(partitions=1)
    group, tid = f"readme-{uuid.uuid4().hex}", f"readme-{uuid.uuid4().hex}"
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(10):
        producer.produce(src, b"v%d" % i)
    assert producer.flush(30) == 0
    code = (
        example.replace("127.0.0.1:9092", kafka_bootstrap)
        .replace('"in"', repr(src))
        .replace('"out"', repr(dst))
        .replace('"upper"', repr(group))
        .replace('"upper-1"', repr(tid))
    )
    for name in (src, dst, group, tid):
        assert code.count(name) == 1
    r = subprocess.run(
        [sys.executable, "-X", "dev", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["10"]
    # An independent read_committed consumer sees each output once, and
    # the group's offsets were committed with them.
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": group,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        [tp] = consumer.committed([TopicPartition(src, 0)], timeout=30)
        assert tp.offset == 10
        consumer.assign([TopicPartition(dst, 0, 0)])
        got: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(got) < 10 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
        assert got == [b"V%d" % i for i in range(10)]
    finally:
        consumer.close()
