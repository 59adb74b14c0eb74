"""Tests of the test harness itself: the real Kafka broker and the fixtures.

If these fail, every other test against the broker is meaningless, so they
check the harness against Kafka itself (metadata, a produced message coming
back intact) and check that no java process outlives the harness.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message, Producer

from tests.conftest import (
    BOOTSTRAP_ENV,
    ReadBack,
    TopicFactory,
    consume_from_beginning,
)
from tests.kafkabroker import (
    JARS_DIR,
    KafkaBroker,
    KafkaBrokerError,
    KafkaCluster,
    ensure_jars,
    fetch_metadata,
    random_cluster_id,
)

REPO = Path(__file__).resolve().parent.parent


def _split(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    return host, int(port)


Headers = list[tuple[str, str | bytes | None]]


def _produce(
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes | None, bytes | None, Headers]],
    partition: int = -1,
) -> None:
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for key, value, headers in messages:
        producer.produce(
            topic,
            value,
            key,
            partition=partition,
            headers=headers,
            on_delivery=on_delivery,
        )
    assert producer.flush(30) == 0, "messages left undelivered after 30 s"
    assert errors == []


def _java_pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live (non-zombie) java process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return b"java" in cmdline and stat.rsplit(")", 1)[1].split()[0] != "Z"


# --------------------------------------------------------------------------
# the session broker and the fixtures


def test_metadata_lists_the_broker(kafka_bootstrap: str) -> None:
    host, port = _split(kafka_bootstrap)
    brokers = fetch_metadata(host, port)
    assert brokers, "metadata lists no broker"
    if not os.environ.get(BOOTSTRAP_ENV):
        assert [(b.node_id, b.host, b.port) for b in brokers] == [
            (1, "127.0.0.1", port)
        ]


def test_message_round_trip_keeps_key_value_headers(
    kafka_bootstrap: str, topic: str, read_back: ReadBack
) -> None:
    headers: Headers = [("trace", b"1"), ("empty", b""), ("trace", b"2")]
    _produce(
        kafka_bootstrap,
        topic,
        [(b"key-1", b"value-1", headers), (None, b"\x00\xff" * 100, [])],
    )
    first, second = read_back(topic, 2)
    assert first.error() is None
    assert (first.topic(), first.partition(), first.offset()) == (topic, 0, 0)
    assert first.key() == b"key-1"
    assert first.value() == b"value-1"
    assert first.headers() == headers
    assert second.key() is None
    assert second.value() == b"\x00\xff" * 100
    assert second.offset() == 1


def test_new_topic_has_the_partitions_asked_for(
    kafka_bootstrap: str, new_topic: TopicFactory, read_back: ReadBack
) -> None:
    topic = new_topic(3)
    for p in range(3):
        _produce(
            kafka_bootstrap, topic, [(b"k", str(p).encode(), [])], partition=p
        )
    got = read_back(topic, 3)
    assert [(m.partition(), m.value()) for m in got] == [
        (0, b"0"),
        (1, b"1"),
        (2, b"2"),
    ]


def test_new_topics_are_fresh(new_topic: TopicFactory) -> None:
    assert new_topic() != new_topic()


def test_read_back_fails_clearly_on_timeout(
    topic: str, read_back: ReadBack
) -> None:
    t0 = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="got 0 of 1 messages"):
        read_back(topic, 1, timeout=1.0)
    assert time.monotonic() - t0 < 10


# --------------------------------------------------------------------------
# pieces of the harness


def test_cluster_id_has_kafkas_uuid_form() -> None:
    ids = {random_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cid in ids:
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_ensure_jars_is_idempotent() -> None:
    assert ensure_jars() == JARS_DIR
    stamp = JARS_DIR / ".complete"
    before = stamp.stat().st_mtime_ns
    t0 = time.monotonic()
    assert ensure_jars() == JARS_DIR
    assert time.monotonic() - t0 < 1.0, "second call ran maven again"
    assert stamp.stat().st_mtime_ns == before
    assert list(JARS_DIR.glob("kafka_2.13-*.jar"))


@pytest.fixture
def fake_server() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server that accepts, answers garbage and closes: something a
    TCP-connect readiness check would take for a broker."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)
    stop = threading.Event()
    replies = [b"", struct.pack(">i", 8) + b"\x00" * 8, b"HTTP/1.1 400\r\n"]

    def serve() -> None:
        i = 0
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(4096)
                    conn.sendall(replies[i % len(replies)])
                except OSError:
                    pass
            i += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield srv.getsockname()[1], replies
    finally:
        stop.set()
        thread.join()
        srv.close()


def test_readiness_check_is_not_a_tcp_connect(
    fake_server: tuple[int, list[bytes]],
) -> None:
    port, replies = fake_server
    for _ in replies:
        with pytest.raises((OSError, struct.error)):
            fetch_metadata("127.0.0.1", port, timeout=2.0)


# --------------------------------------------------------------------------
# broker processes of our own (never the session broker)


def test_broker_lifecycle_leaves_no_java_process() -> None:
    broker = KafkaBroker()
    workdir = broker.workdir
    pids: list[int] = []
    try:
        bootstrap = broker.start()
        assert bootstrap == f"127.0.0.1:{broker.port}"
        assert broker.pid is not None and _java_pid_alive(broker.pid)
        pids.append(broker.pid)
        topic = "lifecycle"  # auto-created on first produce
        _produce(bootstrap, topic, [(b"k", b"before restart", [])])

        # Frozen: the port still accepts but nothing answers.
        broker.pause()
        with pytest.raises(OSError):
            fetch_metadata("127.0.0.1", broker.port, timeout=1.0)
        broker.resume()
        broker.wait_ready(timeout=30)

        # Stopped and restarted: same address, data kept.
        # SIGTERM runs Kafka's shutdown hook; the JVM then exits with 143.
        assert broker.stop_broker_process() in (0, 143, -signal.SIGTERM)
        assert not _java_pid_alive(pids[-1])
        assert workdir.is_dir()
        assert broker.restart() == bootstrap
        assert broker.pid is not None and broker.pid not in pids
        pids.append(broker.pid)
        (msg,) = consume_from_beginning(bootstrap, topic, 1)
        assert msg.value() == b"before restart"

        # Crash (SIGKILL) and restart: still the same data.
        broker.kill()
        assert not _java_pid_alive(pids[-1])
        broker.start()
        assert broker.pid is not None
        pids.append(broker.pid)
        (msg,) = consume_from_beginning(bootstrap, topic, 1)
        assert msg.value() == b"before restart"
    finally:
        broker.stop()
    for pid in pids:
        assert not _java_pid_alive(pid), f"java pid {pid} outlived stop()"
    assert not workdir.exists()
    assert not broker.running
    broker.stop()  # idempotent


def test_start_failure_raises_with_the_broker_log(tmp_path: Path) -> None:
    # The client port is taken, so the broker cannot bind it and exits.
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        broker = KafkaBroker(tmp_path / "broker", port=port)
        with pytest.raises(KafkaBrokerError) as info:
            broker.start(timeout=60)
    pid = broker.pid
    broker.stop()
    text = str(info.value)
    assert "tail of" in text and str(broker.log_path) in text
    assert "Address already in use" in text or "BindException" in text
    assert pid is not None and not _java_pid_alive(pid)
    # A workdir given by the caller is theirs: kept, with the log in it.
    assert broker.log_path.is_file()


def test_cli_start_prints_bootstrap_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.kafkabroker", "start"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    java_pid = None
    try:
        assert proc.stdout is not None and proc.stderr is not None
        bootstrap = proc.stdout.readline().strip()
        info = proc.stderr.readline()
        assert bootstrap.startswith("127.0.0.1:"), (bootstrap, info)
        java_pid = int(info.split("pid ", 1)[1].split()[0])
        assert _java_pid_alive(java_pid)
        host, port = _split(bootstrap)
        assert [b.port for b in fetch_metadata(host, port)] == [port]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if java_pid is not None and _java_pid_alive(java_pid):
            os.kill(java_pid, signal.SIGKILL)
            pytest.fail(f"java pid {java_pid} outlived the CLI")
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.skipif(
    shutil.which("kcat") is None, reason="kcat (system librdkafka) missing"
)
def test_system_librdkafka_produces_and_consumes_in_a_group(
    kafka_bootstrap: str, topic: str, read_back: ReadBack
) -> None:
    """The distribution's librdkafka (2.0.2 on Debian bookworm, through
    kcat) speaks this broker's protocol: produce, then a consumer group
    that commits, and a second run of the group that resumes after it."""
    kcat = ["kcat", "-b", kafka_bootstrap, "-q"]
    lines = "".join(f"k{i}:v{i}\n" for i in range(5))
    run = subprocess.run(
        [*kcat, "-P", "-t", topic, "-K:", "-H", "h=1"],
        input=lines,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert [
        (m.key(), m.value(), m.headers()) for m in read_back(topic, 5)
    ] == [
        (f"k{i}".encode(), f"v{i}".encode(), [("h", b"1")]) for i in range(5)
    ]
    group = f"g-{topic}"
    consume = [*kcat, "-G", group, "-X", "auto.offset.reset=earliest"]
    consume += ["-e", "-f", "%s\n"]
    first = subprocess.run(
        [*consume, topic],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == [f"v{i}" for i in range(5)]
    run = subprocess.run(
        [*kcat, "-P", "-t", topic],
        input="v5\n",
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    second = subprocess.run(
        [*consume, topic],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["v5"]


# --------------------------------------------------------------------------
# the 3-node cluster (marked ``cluster``: only runs when that group does)


def test_cluster_node_kill_and_restart_keeps_address_and_data(
    cluster: KafkaCluster,
) -> None:
    """Every node is in every node's metadata; a SIGKILLed node comes back
    at the same port, from the same log dir (its meta.properties, so the
    same cluster id), with a new PID in node-<id>.pid; RF 3 and min ISR 2
    are the defaults."""
    ports = {i: n.port for i, n in cluster.nodes.items()}
    for node in cluster.nodes.values():
        brokers = fetch_metadata("127.0.0.1", node.port)
        assert sorted((b.node_id, b.port) for b in brokers) == sorted(
            ports.items()
        )
        props = node.server_properties()
        assert props["min.insync.replicas"] == "2"
        assert props["default.replication.factor"] == "3"
        assert len(props["controller.quorum.voters"].split(",")) == 3
        assert int(cluster.pid_path(node.node_id).read_text()) == node.pid
    victim = cluster.nodes[2]
    old_pid = victim.pid
    meta = (victim.data_dir / "meta.properties").read_text()
    assert f"cluster.id={cluster.cluster_id}" in meta
    cluster.kill(2)
    assert old_pid is not None and not _java_pid_alive(old_pid)
    assert not victim.running
    cluster.restart(2)
    assert victim.pid != old_pid and _java_pid_alive(victim.pid or 0)
    assert int(cluster.pid_path(2).read_text()) == victim.pid
    assert victim.port == ports[2]
    assert (victim.data_dir / "meta.properties").read_text() == meta
    cluster.wait_all_registered(120)


@pytest.mark.cluster
def test_cli_start_nodes_writes_pids_and_stops_every_node(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "cluster"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.kafkabroker", "start", "--nodes", "3",
         "--workdir", str(workdir)],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids: list[int] = []
    try:
        assert proc.stdout is not None and proc.stderr is not None
        bootstrap = proc.stdout.readline().strip()
        info = proc.stderr.readline()
        servers = bootstrap.split(",")
        assert len(servers) == 3, (bootstrap, info)
        pids = [
            int((workdir / f"node-{i}.pid").read_text()) for i in (1, 2, 3)
        ]
        assert all(_java_pid_alive(pid) for pid in pids), pids
        for server in servers:
            host, port = _split(server)
            assert host == "127.0.0.1"
            assert sorted(b.node_id for b in fetch_metadata(host, port)) == [
                1, 2, 3
            ]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 0
        alive = [pid for pid in pids if _java_pid_alive(pid)]
        assert alive == [], f"java pids {alive} outlived the CLI"
        # The workdir was given: kept, with each node's log dir.
        for i in (1, 2, 3):
            assert (workdir / f"node-{i}" / "data").is_dir()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids:
            if _java_pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
