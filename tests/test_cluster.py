"""Kafka's durability promise, through aiokafka_c, against a real 3-node
KRaft cluster whose brokers are killed under load.

acks=all with idempotence over topics of replication factor 3 and
min.insync.replicas 2 promises: no acknowledged message lost, none
duplicated, call order kept per partition, across broker crashes. The
producer tests send 100k messages over 6 partitions while a chaos thread
SIGKILLs partition leaders (or restarts every node in turn), then read
every partition back with confluent-kafka (an independent client) and
account for each message. A topic that needs all three replicas, with
one node down, shows what failures look like (each future fails, with
its reason, within message.timeout.ms). The consumer test kills one of
two group members mid-stream and checks the survivor's takeover.

Each scenario prints its figures as ``CLUSTER-FIGURES {json}`` (also
appended to ``cluster-figures.jsonl`` in the session's temporary
directory, and repeated in the terminal summary).

All of this is marked ``cluster`` (through the ``kafka_cluster``
fixture): ``-m "not cluster"`` neither runs it nor starts the cluster.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvloop
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError
from confluent_kafka import KafkaException as CKKafkaException
from confluent_kafka import TopicPartition as CKTopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from aiokafka_c import AIOProducer, KafkaException, Message
from tests.conftest import record_figures, unique_topic_name
from tests.consumer_helpers import ROOT, committed, produce
from tests.kafkabroker import KafkaCluster

pytestmark = pytest.mark.cluster

PARTITIONS = 6
N_MESSAGES = 100_000
#: the producer's pace, so that the load spans the kills
CHUNK = 500
RATE = 8000.0  # messages per second
#: generous bound for a node to come back, or the ISR to fill again
NODE_TIMEOUT = 120.0
#: librdkafka gives up on a message after this; every wait is bounded by it
MESSAGE_TIMEOUT_MS = 120_000
PAD = b"." * 40


# --------------------------------------------------------------------------
# cluster helpers (confluent-kafka, not the client under test)


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def partition_state(
    bootstrap: str, topic: str
) -> dict[int, tuple[int, list[int]]]:
    """partition -> (leader, isr), as the cluster reports it now."""
    md = _admin(bootstrap).list_topics(topic, timeout=10).topics[topic]
    return {p: (m.leader, sorted(m.isrs)) for p, m in md.partitions.items()}


def wait_fully_replicated(
    cluster: KafkaCluster, topic: str, timeout: float = NODE_TIMEOUT
) -> None:
    """Until every partition has a leader and all nodes in its ISR."""
    want = sorted(cluster.nodes)
    deadline = time.monotonic() + timeout
    state: object = None
    while True:
        try:
            state = partition_state(cluster.bootstrap, topic)
            if len(state) == PARTITIONS and all(
                leader >= 0 and isr == want
                for leader, isr in state.values()
            ):
                return
        except Exception as exc:  # a node restarting, a metadata timeout
            state = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"{topic}: not fully replicated after {timeout} s: {state}"
            )
        time.sleep(0.25)


def make_replicated_topic(cluster: KafkaCluster) -> str:
    topic = unique_topic_name("cl")
    admin = _admin(cluster.bootstrap)  # alive until the result is in
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=PARTITIONS, replication_factor=3)],
        operation_timeout=30,
        request_timeout=30,
    )
    futures[topic].result(timeout=60)
    wait_fully_replicated(cluster, topic, 60)
    return topic


def read_partitions(
    bootstrap: str, topic: str, timeout: float = 120.0
) -> dict[int, list[tuple[int, bytes]]]:
    """Every message of every partition, up to its high watermark, as
    (offset, value) in offset order; read with confluent-kafka."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_topic_name("verify"),
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_uncommitted",
        }
    )
    def high_watermark(p: int) -> int:
        # Right after a leader change the new leader may answer
        # OFFSET_NOT_AVAILABLE ("high watermark is not caught up") for a
        # moment: ask again.
        deadline = time.monotonic() + 60
        while True:
            try:
                return int(c.get_watermark_offsets(
                    CKTopicPartition(topic, p), timeout=30)[1])
            except CKKafkaException as exc:
                if (exc.args[0].code() != KafkaError.OFFSET_NOT_AVAILABLE
                        or time.monotonic() > deadline):
                    raise
                time.sleep(0.5)

    try:
        ends = {p: high_watermark(p) for p in range(PARTITIONS)}
        got: dict[int, list[tuple[int, bytes]]] = {p: [] for p in ends}
        c.assign(
            [
                CKTopicPartition(topic, p, OFFSET_BEGINNING)
                for p in range(PARTITIONS)
            ]
        )
        deadline = time.monotonic() + timeout

        def done() -> bool:
            return all(
                (got[p][-1][0] + 1 if got[p] else 0) >= e
                for p, e in ends.items()
            )

        while not done():
            if time.monotonic() >= deadline:
                counts = {p: len(v) for p, v in got.items()}
                pytest.fail(
                    f"read back {counts} of {ends} within {timeout} s"
                )
            for m in c.consume(10_000, 1.0):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    pytest.fail(f"verifying consumer: {err}")
                p, o, v = m.partition(), m.offset(), m.value()
                assert p is not None and o is not None and v is not None
                got[p].append((o, v))
    finally:
        c.close()
    return got


# --------------------------------------------------------------------------
# the load and the chaos


@dataclass
class Progress:
    """Shared by the producing coroutine and the chaos thread."""

    gate: int  # the producer may send messages [0, gate)
    sent: int = 0
    error: BaseException | None = None
    done: bool = False
    events: list[str] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)

    def log(self, text: str) -> None:
        line = f"{time.monotonic() - self.t0:7.1f} s  sent={self.sent}  {text}"
        self.events.append(line)
        print(line, flush=True)

    def wait_sent(self, n: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.sent < n:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"producer stuck at {self.sent} < {n}")
            time.sleep(0.02)


Chaos = Callable[[KafkaCluster, str, Progress], None]


def pick_leader(
    cluster: KafkaCluster, topic: str, partition: int, avoid: set[int]
) -> int:
    """The leader of ``partition``, or if that is in ``avoid``, the node
    not in ``avoid`` that leads the most partitions."""
    state = partition_state(cluster.bootstrap, topic)
    leader = state[partition][0]
    if leader >= 0 and leader not in avoid:
        return leader
    counts = Counter(
        ld for ld, _ in state.values() if ld >= 0 and ld not in avoid
    )
    if counts:
        return counts.most_common(1)[0][0]
    return min(set(cluster.nodes) - avoid)


def kill_leaders_twice(
    cluster: KafkaCluster, topic: str, progress: Progress
) -> None:
    """SIGKILL the leader of partition 0, later that of partition 1 (or
    the busiest other leader), each while messages are in flight; the
    node is down for a few seconds of load, then restarted, and the next
    kill waits until every partition is fully replicated again."""
    killed: set[int] = set()
    for cycle, partition in enumerate((0, 1)):
        progress.wait_sent(N_MESSAGES * (2 * cycle + 1) // 6)
        victim = pick_leader(cluster, topic, partition, killed)
        led = [
            p
            for p, (ld, _) in partition_state(cluster.bootstrap, topic).items()
            if ld == victim
        ]
        cluster.kill(victim)
        killed.add(victim)
        progress.log(f"SIGKILL node {victim} (leader of partitions {led})")
        time.sleep(4)  # leaders move; the producer goes on meanwhile
        t = time.monotonic()
        cluster.restart(victim, NODE_TIMEOUT)
        progress.log(f"node {victim} restarted ({time.monotonic() - t:.1f} s)")
        wait_fully_replicated(cluster, topic)
        progress.log("fully replicated again")
        progress.gate = N_MESSAGES * (cycle + 2) // 3


def rolling_restart(
    cluster: KafkaCluster, topic: str, progress: Progress
) -> None:
    """Stop (SIGTERM: a controlled shutdown) and restart each node in
    turn, the next only once every partition is fully replicated."""
    nodes = sorted(cluster.nodes)
    for k, node_id in enumerate(nodes):
        progress.wait_sent(N_MESSAGES * (2 * k + 1) // (2 * len(nodes) + 2))
        t = time.monotonic()
        cluster.stop_node(node_id)
        progress.log(
            f"node {node_id} stopped (controlled, "
            f"{time.monotonic() - t:.1f} s)"
        )
        cluster.restart(node_id, NODE_TIMEOUT)
        progress.log(f"node {node_id} restarted")
        wait_fully_replicated(cluster, topic)
        progress.log("fully replicated again")
        progress.gate = N_MESSAGES * (k + 2) // (len(nodes) + 1)


def run_chaos(
    chaos: Chaos, cluster: KafkaCluster, topic: str, progress: Progress
) -> threading.Thread:
    def target() -> None:
        try:
            chaos(cluster, topic, progress)
        except BaseException as exc:
            progress.error = exc
            progress.log(f"chaos failed: {exc!r}")
        finally:
            progress.gate = N_MESSAGES
            progress.done = True

    thread = threading.Thread(target=target, name="chaos", daemon=True)
    thread.start()
    return thread


def value_of(i: int) -> bytes:
    return b"%07d" % i + PAD


def index_of(value: bytes) -> int:
    assert value.endswith(PAD), value
    return int(value[:7])


@dataclass
class Outcome:
    """What the producer was told about each message i (partition i % 6)."""

    delivered: dict[int, tuple[int, int]] = field(default_factory=dict)
    failed: dict[int, KafkaException] = field(default_factory=dict)
    other: dict[int, BaseException] = field(default_factory=dict)


def position(msg: Message) -> tuple[int, int]:
    p, o = msg.partition(), msg.offset()
    assert p is not None and o is not None, msg
    return p, o


def producer_config(bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": MESSAGE_TIMEOUT_MS,
        # Find the new leaders soon after a kill.
        "topic.metadata.refresh.interval.ms": 5000,
        "retry.backoff.ms": 100,
    }


async def produce_under_chaos(
    cluster: KafkaCluster,
    topic: str,
    chaos: Chaos,
    mode: str,
    progress: Progress,
) -> Outcome:
    """Sends N_MESSAGES (``produce()`` futures or ``produce_nowait()`` with
    ``on_delivery``) at RATE, up to the chaos thread's gate, and waits
    (bounded) for every outcome."""
    out = Outcome()
    futures: list[asyncio.Future[Message]] = []
    reported = 0
    all_reported = asyncio.Event()

    def on_delivery(err: Any, msg: Message, i: int) -> None:
        nonlocal reported
        if err is None:
            out.delivered[i] = position(msg)
        else:
            out.failed[i] = KafkaException(err)
        reported += 1
        if reported == N_MESSAGES:
            all_reported.set()

    producer = AIOProducer(producer_config(cluster.bootstrap))
    thread = run_chaos(chaos, cluster, topic, progress)
    try:
        i = 0
        while i < N_MESSAGES:
            if progress.error is not None:
                break
            if i >= progress.gate:
                await asyncio.sleep(0.05)
                continue
            hi = min(N_MESSAGES, progress.gate, i + CHUNK)
            for j in range(i, hi):
                if mode == "future":
                    futures.append(
                        producer.produce(
                            topic, value_of(j), partition=j % PARTITIONS
                        )
                    )
                else:
                    producer.produce_nowait(
                        topic,
                        value_of(j),
                        partition=j % PARTITIONS,
                        on_delivery=functools.partial(on_delivery, i=j),
                    )
            i = hi
            progress.sent = i
            await asyncio.sleep(CHUNK / RATE)
        progress.log("all sent")
        bound = MESSAGE_TIMEOUT_MS / 1000 + 60
        if mode == "future":
            results = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), bound
            )
            for j, r in enumerate(results):
                if isinstance(r, Message):
                    out.delivered[j] = position(r)
                elif isinstance(r, KafkaException):
                    out.failed[j] = r
                else:
                    out.other[j] = r
        elif progress.sent == N_MESSAGES:
            await asyncio.wait_for(all_reported.wait(), bound)
        progress.log("every outcome known")
    finally:
        await asyncio.wait_for(producer.close(30), 60)
        await asyncio.get_running_loop().run_in_executor(
            None, thread.join, NODE_TIMEOUT * 3
        )
    if progress.error is not None:
        raise progress.error
    assert not thread.is_alive(), "the chaos thread did not finish"
    return out


def check_and_report(
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    scenario: str,
    cluster: KafkaCluster,
    topic: str,
    out: Outcome,
    progress: Progress,
    seconds: float,
    *,
    allow_failures: bool,
) -> None:
    assert not out.other, list(out.other.items())[:5]
    assert len(out.delivered) + len(out.failed) == N_MESSAGES, (
        "some messages got no outcome: "
        f"{N_MESSAGES - len(out.delivered) - len(out.failed)}"
    )
    on_broker = read_partitions(cluster.bootstrap, topic)
    found: Counter[int] = Counter()
    where: dict[int, tuple[int, int]] = {}
    order_breaks = []
    for p, msgs in on_broker.items():
        last = -1
        for offset, value in msgs:
            i = index_of(value)
            assert i % PARTITIONS == p, (i, p)
            found[i] += 1
            where[i] = (p, offset)
            if i <= last:
                order_breaks.append((p, offset, last, i))
            last = i
    lost = sorted(i for i in out.delivered if found[i] == 0)
    duplicated = sorted(i for i, c in found.items() if c > 1)
    misplaced = sorted(
        i for i, pos in out.delivered.items() if found[i] and where[i] != pos
    )
    unknown = sorted(i for i in found if not 0 <= i < N_MESSAGES)
    failed_but_written = sorted(i for i in out.failed if found[i])
    reasons = Counter(
        e.args[0].name() if e.args and hasattr(e.args[0], "name") else "?"
        for e in out.failed.values()
    )
    examples = {
        e.args[0].name(): e.args[0].str()
        for e in out.failed.values()
        if e.args and hasattr(e.args[0], "str")
    }
    figures = {
        "scenario": scenario,
        "sent": N_MESSAGES,
        "acknowledged": len(out.delivered),
        "failed": len(out.failed),
        "failure_reasons": dict(reasons),
        "failure_examples": examples,
        "found_on_broker": sum(found.values()),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "failed_but_on_broker": len(failed_but_written),
        "order_breaks": len(order_breaks),
        "seconds": round(seconds, 1),
    }
    record_figures(tmp_path_factory, figures)
    (tmp_path / "figures.json").write_text(
        json.dumps({**figures, "events": progress.events}, indent=2)
    )

    assert lost == [], f"{len(lost)} acknowledged messages lost: {lost[:20]}"
    assert duplicated == [], f"duplicates on the broker: {duplicated[:20]}"
    assert order_breaks == [], f"call order broken: {order_breaks[:10]}"
    assert misplaced == [], (
        f"future/callback offset differs from the broker: {misplaced[:10]}"
    )
    assert unknown == []
    for i, exc in out.failed.items():
        err = exc.args[0] if exc.args else None
        assert err is not None and hasattr(err, "str") and err.str(), (
            f"message {i} failed without a reason: {exc!r}"
        )
    if not allow_failures:
        assert out.failed == {}, f"failures: {dict(reasons)}"


# --------------------------------------------------------------------------
# the producer scenarios


@pytest.mark.parametrize(
    ("mode", "loop"),
    [("future", "asyncio"), ("nowait", "uvloop")],
    ids=["produce-futures", "produce_nowait-on_delivery"],
)
def test_leader_sigkill_under_load_loses_and_duplicates_nothing(
    cluster: KafkaCluster,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    mode: str,
    loop: str,
) -> None:
    topic = make_replicated_topic(cluster)
    progress = Progress(gate=N_MESSAGES // 3)
    t0 = time.monotonic()
    factory = uvloop.new_event_loop if loop == "uvloop" else None
    coro = produce_under_chaos(
        cluster, topic, kill_leaders_twice, mode, progress
    )
    if factory is None:
        out = asyncio.run(coro)
    else:
        ev_loop = factory()
        try:
            out = ev_loop.run_until_complete(coro)
        finally:
            ev_loop.run_until_complete(ev_loop.shutdown_asyncgens())
            ev_loop.close()
    check_and_report(
        tmp_path_factory,
        tmp_path,
        f"leader-sigkill-x2/{mode}",
        cluster,
        topic,
        out,
        progress,
        time.monotonic() - t0,
        allow_failures=True,
    )


def test_rolling_restart_under_load_loses_nothing(
    cluster: KafkaCluster,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    topic = make_replicated_topic(cluster)
    progress = Progress(gate=N_MESSAGES // 4)
    t0 = time.monotonic()
    out = asyncio.run(
        produce_under_chaos(
            cluster, topic, rolling_restart, "future", progress
        )
    )
    check_and_report(
        tmp_path_factory,
        tmp_path,
        "rolling-restart/future",
        cluster,
        topic,
        out,
        progress,
        time.monotonic() - t0,
        allow_failures=False,
    )


# --------------------------------------------------------------------------
# consumer group failover

PER_PARTITION = 2000
SESSION_TIMEOUT_MS = 6000

#: one group member: records every message it processed ("m p o t"), each
#: commit that succeeded ("c p o"), its assignments ("a p,p t"), unbuffered,
#: so that what a SIGKILL leaves behind is exactly what it had done
MEMBER = """
import asyncio, os, sys, time
from aiokafka_c import AIOConsumer, KafkaException

BOOTSTRAP, GROUP, TOPIC, OUT = {bootstrap!r}, {group!r}, {topic!r}, {out!r}
ENDS = {ends!r}

async def main():
    fd = os.open(OUT, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    def log(text):
        os.write(fd, text.encode() + b"\\n")
    c = AIOConsumer({{
        "bootstrap.servers": BOOTSTRAP,
        "group.id": GROUP,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": {session_ms},
        "heartbeat.interval.ms": 500,
    }})
    def on_assign(consumer, partitions):
        log("a %s %.3f" % (",".join(str(tp.partition) for tp in partitions),
                           time.time()))
    async def commit():
        try:
            for tp in await c.commit():
                log("c %d %d" % (tp.partition, tp.offset))
        except KafkaException as exc:  # a rebalance under way: next time
            log("x %s" % exc)
    async def on_revoke(consumer, partitions):
        await commit()
        log("r %s" % ",".join(str(tp.partition) for tp in partitions))
    await c.subscribe([TOPIC], on_assign=on_assign, on_revoke=on_revoke)
    last = {{}}
    uncommitted = 0
    deadline = time.monotonic() + 150
    while any(last.get(p, -1) < e - 1 for p, e in ENDS.items()):
        assert time.monotonic() < deadline, ("stuck", last)
        batch = await c.consume(100, timeout=1.0)
        for m in batch:
            if m.error() is not None:
                raise KafkaException(m.error())
            log("m %d %d %.3f" % (m.partition(), m.offset(), time.time()))
            last[m.partition()] = m.offset()
        uncommitted += len(batch)
        if batch:
            await asyncio.sleep(0.05)  # "processing": about 2000 msg/s
        if uncommitted >= 300:
            await commit()
            uncommitted = 0
    await commit()
    await asyncio.wait_for(c.close(), 60)
    log("done")

asyncio.run(main())
"""


def start_member(**params: Any) -> subprocess.Popen[str]:
    source = MEMBER.format(session_ms=SESSION_TIMEOUT_MS, **params)
    return subprocess.Popen(
        [sys.executable, "-X", "dev", "-X", "faulthandler", "-c", source],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def member_log(path: Path) -> list[list[str]]:
    try:
        return [line.split() for line in path.read_text().splitlines()]
    except FileNotFoundError:
        return []


def wait_for(
    what: str, cond: Callable[[], bool], timeout: float = 90.0
) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} after {timeout} s")
        time.sleep(0.05)


def test_group_member_sigkill_survivor_takes_over(
    cluster: KafkaCluster,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    """Two AIOConsumer processes share a group on a 6-partition RF-3
    topic; one is SIGKILLed mid-stream. The survivor gets its partitions
    once the group's session timeout drops it, resumes each from the
    killed member's last commit, and finishes: every message processed at
    least once, and the only ones processed twice are those the killed
    member had processed after its last commit."""
    topic = make_replicated_topic(cluster)
    bootstrap = cluster.bootstrap
    group = unique_topic_name("g")
    ends = {p: PER_PARTITION for p in range(PARTITIONS)}
    paths = {name: tmp_path / f"{name}.log" for name in ("a", "b")}
    procs = {
        name: start_member(
            bootstrap=bootstrap, group=group, topic=topic, out=str(path),
            ends=ends,
        )
        for name, path in paths.items()
    }
    try:
        def assignments() -> dict[str, set[int]]:
            now: dict[str, set[int]] = {}
            for name, path in paths.items():
                now[name] = set()
                for rec in member_log(path):
                    if rec[0] == "a":
                        now[name] = set(map(int, rec[1].split(",")))
                    elif rec[0] == "r":
                        now[name] = set()
            return now

        # Produce only once the group is settled with both members, so that
        # no message is taken over by an ordinary rebalance.
        def settled() -> bool:
            a = assignments()
            return (
                all(a.values())
                and not a["a"] & a["b"]
                and a["a"] | a["b"] == set(range(PARTITIONS))
            )

        wait_for("the two members never shared the partitions", settled)
        owned = assignments()
        produce(bootstrap, topic, PER_PARTITION * PARTITIONS,
                partitions=PARTITIONS)

        def processed(name: str) -> int:
            return sum(rec[0] == "m" for rec in member_log(paths[name]))

        target = PER_PARTITION * len(owned["a"]) // 4
        wait_for("member a processed too little", lambda: processed("a")
                 >= target)
        procs["a"].send_signal(signal.SIGKILL)
        killed_at = time.time()
        procs["a"].communicate(timeout=30)
        assert procs["a"].returncode == -signal.SIGKILL
        out, err = procs["b"].communicate(timeout=150)
        assert procs["b"].returncode == 0, f"{out}\n{err}"
        for bad in ("Traceback", "Fatal Python error", "Segmentation"):
            assert bad not in err, err
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None and not stream.closed:
                    stream.close()
            proc.wait()

    log_a, log_b = member_log(paths["a"]), member_log(paths["b"])
    assert log_b[-1] == ["done"]
    seen_a = [(int(r[1]), int(r[2])) for r in log_a if r[0] == "m"]
    seen_b = [(int(r[1]), int(r[2]), float(r[3])) for r in log_b
              if r[0] == "m"]
    assert len(seen_a) == len(set(seen_a)), "a processed a message twice"
    pos_b = [(p, o) for p, o, _ in seen_b]
    assert len(pos_b) == len(set(pos_b)), "b processed a message twice"
    everything = {(p, o) for p, e in ends.items() for o in range(e)}
    assert set(seen_a) | set(pos_b) == everything, "a message was missed"

    # a's last successful commit per partition (the offset to resume at;
    # a commit with nothing new to commit reports an invalid offset)
    commit_a: dict[int, int] = {}
    for r in log_a:
        if r[0] == "c" and int(r[2]) >= 0:
            commit_a[int(r[1])] = max(commit_a.get(int(r[1]), 0), int(r[2]))
    taken_over = owned["a"]
    duplicated = set(seen_a) & set(pos_b)
    mid_stream = 0
    for p in range(PARTITIONS):
        offs_a = sorted(o for q, o in seen_a if q == p)
        offs_b = [o for q, o in pos_b if q == p]
        if p not in taken_over:
            assert offs_a == [], (p, offs_a[:5])
            assert offs_b == list(range(PER_PARTITION))
            continue
        assert offs_a == list(range(len(offs_a))), p
        mid_stream += 0 < len(offs_a) < PER_PARTITION
        if not offs_b:  # a finished it, and committed the end
            assert len(offs_a) == PER_PARTITION, p
            continue
        # b resumes at or after a's last logged commit (a commit that
        # succeeded as a was killed may be missing from a's log), and
        # before anything a had not processed: no gap.
        start = offs_b[0]
        assert commit_a.get(p, 0) <= start <= len(offs_a), (
            p, commit_a.get(p), start, len(offs_a))
        assert offs_b == list(range(start, PER_PARTITION))
        dups = {o for q, o in duplicated if q == p}
        assert dups == set(range(start, len(offs_a))), p
    assert mid_stream, "a was not killed in the middle of any partition"

    firsts = [t for p, o, t in seen_b if p in taken_over]
    takeover = min(firsts) - killed_at
    figures = {
        "scenario": "group-member-sigkill",
        "messages": len(everything),
        "processed_by_killed": len(seen_a),
        "processed_by_survivor": len(pos_b),
        "lost": len(everything - set(seen_a) - set(pos_b)),
        "duplicated": len(duplicated),
        "duplicated_after_last_commit": sum(
            1 for p, o in duplicated if o >= commit_a.get(p, 0)),
        "takeover_seconds": round(takeover, 1),
        "session_timeout_seconds": SESSION_TIMEOUT_MS / 1000,
    }
    record_figures(tmp_path_factory, figures)
    (tmp_path / "figures.json").write_text(json.dumps(figures, indent=2))
    # The group drops a after session.timeout.ms, then rebalances; the
    # bound is generous (a noisy machine), the figure says how long it was.
    assert 0 < takeover < SESSION_TIMEOUT_MS / 1000 + 30, takeover
    assert committed(bootstrap, group, topic, PARTITIONS) == ends


# --------------------------------------------------------------------------
# failures say why, within message.timeout.ms


def test_not_enough_replicas_fails_each_message_with_a_reason(
    cluster: KafkaCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A topic that needs all 3 replicas in sync (min.insync.replicas 3)
    while one node is down: acks=all cannot be met, so every future and
    every ``on_delivery`` fails with a KafkaException naming the reason,
    within message.timeout.ms (nothing hangs); once the node is back the
    same producer delivers again."""
    topic = unique_topic_name("isr3")
    admin = _admin(cluster.bootstrap)
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=PARTITIONS, replication_factor=3,
                  config={"min.insync.replicas": "3"})],
        operation_timeout=30,
        request_timeout=30,
    )
    futures[topic].result(timeout=60)
    wait_fully_replicated(cluster, topic, 60)
    timeout_ms = 8000
    n = 600

    async def scenario() -> dict[str, Any]:
        conf = producer_config(cluster.bootstrap)
        conf["message.timeout.ms"] = timeout_ms
        async with AIOProducer(conf) as producer:
            # Warm up: metadata and the producer id, with every node up.
            await producer.produce(topic, b"warm-up", partition=0)
            cluster.kill(3)
            try:
                # Until the controller fences node 3 and shrinks the ISRs
                # (broker.session.timeout.ms), writes may still block on
                # it; either way they cannot be acknowledged.
                t0 = time.monotonic()
                futs = [producer.produce(topic, value_of(i),
                                         partition=i % PARTITIONS)
                        for i in range(n)]
                cb_errors: list[Any] = []
                cb_done = asyncio.Event()

                def on_delivery(err: Any, msg: Message) -> None:
                    cb_errors.append(err)
                    if len(cb_errors) == n:
                        cb_done.set()

                for i in range(n):
                    producer.produce_nowait(topic, value_of(i),
                                            partition=i % PARTITIONS,
                                            on_delivery=on_delivery)
                bound = timeout_ms / 1000 + 30
                results = await asyncio.wait_for(
                    asyncio.gather(*futs, return_exceptions=True), bound)
                await asyncio.wait_for(cb_done.wait(), bound)
                waited = time.monotonic() - t0
            finally:
                await asyncio.get_running_loop().run_in_executor(
                    None, cluster.restart, 3, NODE_TIMEOUT)
            await asyncio.get_running_loop().run_in_executor(
                None, wait_fully_replicated, cluster, topic)
            # The same producer goes on once the ISR is whole again.
            after = await asyncio.wait_for(
                producer.produce(topic, b"after", partition=0), 60)
        return {"results": results, "cb_errors": cb_errors,
                "waited": waited, "after": after}

    got = asyncio.run(scenario())
    results, cb_errors = got["results"], got["cb_errors"]
    reasons: Counter[str] = Counter()
    for r in results:
        assert isinstance(r, KafkaException), r
        err = r.args[0]
        assert err.str(), r
        reasons[err.name()] += 1
    for err in cb_errors:
        assert err is not None and err.str(), err
        reasons[err.name()] += 1
    allowed = {"_MSG_TIMED_OUT", "NOT_ENOUGH_REPLICAS",
               "NOT_ENOUGH_REPLICAS_AFTER_APPEND"}
    assert set(reasons) <= allowed, reasons
    assert got["after"].error() is None
    record_figures(tmp_path_factory, {
        "scenario": "min-isr-3-one-node-down",
        "sent": 2 * n,
        "acknowledged": 0,
        "failed": sum(reasons.values()),
        "failure_reasons": dict(reasons),
        "failure_example": results[0].args[0].str(),
        "seconds_until_all_failed": round(got["waited"], 1),
        "message_timeout_seconds": timeout_ms / 1000,
    })
