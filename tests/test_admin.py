"""AIOAdminClient against a real broker: every operation round-trips and is
checked with an independent client (confluent-kafka's AdminClient,
Producer and Consumer, or kcat); errors land on the right future; a broker
that is down fails operations within their timeouts and close() within
its own; bad arguments raise cleanly; a cancelled future is harmless."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import confluent_kafka
import pytest
import pytest_asyncio
from confluent_kafka.admin import AdminClient as ConfluentAdmin
from confluent_kafka.admin import ConfigResource as CConfigResource

from aiokafka_c import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AIOAdminClient,
    ClusterMetadata,
    ConfigResource,
    ConfigSource,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    DeletedRecords,
    KafkaError,
    KafkaException,
    NewPartitions,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    TopicPartition,
)
from tests.conftest import TopicFactory, unique_topic_name
from tests.helpers import unused_port

# Generous: a broker under CI load answers admin requests in well under it.
SLOW = 30.0


def _code(exc: BaseException) -> int:
    assert isinstance(exc, KafkaException), repr(exc)
    err = exc.args[0]
    assert isinstance(err, KafkaError)
    return err.code()


async def _fails_with(fut: asyncio.Future[Any], code: int) -> KafkaError:
    with pytest.raises(KafkaException) as ei:
        await asyncio.wait_for(fut, SLOW)
    assert _code(ei.value) == code, ei.value
    err: KafkaError = ei.value.args[0]
    assert err.str()
    return err


@pytest_asyncio.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[AIOAdminClient]:
    async with AIOAdminClient({"bootstrap.servers": kafka_bootstrap}) as a:
        yield a


@pytest.fixture
def other(kafka_bootstrap: str) -> ConfluentAdmin:
    """The independent view of the cluster."""
    return ConfluentAdmin({"bootstrap.servers": kafka_bootstrap})


def _partition_count(other: ConfluentAdmin, topic: str) -> int | None:
    md = other.list_topics(topic, timeout=10).topics.get(topic)
    if md is None or md.error is not None:
        return None
    return len(md.partitions)


async def _eventually(check: Any, want: Any, timeout: float = SLOW) -> None:
    """Polls check() (run in a thread: it blocks) until it returns want."""
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = await asyncio.to_thread(check)
        if got == want:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"wanted {want!r}, last saw {got!r}")


# ---- topics ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_create_topics_round_trip(
    admin: AIOAdminClient, other: ConfluentAdmin
) -> None:
    a, b = unique_topic_name("adm"), unique_topic_name("adm")
    fs = admin.create_topics(
        [
            NewTopic(a, 3, 1),
            NewTopic(b, 1, 1, config={"retention.ms": "3600000"}),
        ],
        operation_timeout=SLOW,
    )
    assert set(fs) == {a, b}
    assert all(isinstance(f, asyncio.Future) for f in fs.values())
    assert await asyncio.wait_for(asyncio.gather(*fs.values()), SLOW) == [
        None,
        None,
    ]
    await _eventually(lambda: _partition_count(other, a), 3)
    await _eventually(lambda: _partition_count(other, b), 1)
    res = CConfigResource("topic", b)
    got = other.describe_configs([res])[res].result(timeout=SLOW)
    assert got["retention.ms"].value == "3600000"
    # The topic in our own metadata view too (the consumer's type).
    md = await asyncio.wait_for(admin.list_topics(a, timeout=10), SLOW)
    assert isinstance(md, ClusterMetadata)
    assert sorted(md.topics[a].partitions) == [0, 1, 2]
    assert md.brokers and md.cluster_id
    everything = await asyncio.wait_for(admin.list_topics(), SLOW)
    assert {a, b} <= set(everything.topics)
    # confluent-kafka's spelling of "no timeout".
    again = await asyncio.wait_for(admin.list_topics(a, timeout=-1), SLOW)
    assert sorted(again.topics[a].partitions) == [0, 1, 2]


@pytest.mark.asyncio
async def test_create_topics_validate_only_creates_nothing(
    admin: AIOAdminClient, other: ConfluentAdmin
) -> None:
    t = unique_topic_name("adm")
    fs = admin.create_topics([NewTopic(t, 2, 1)], validate_only=True)
    assert await asyncio.wait_for(fs[t], SLOW) is None
    await asyncio.sleep(0.5)
    assert await asyncio.to_thread(_partition_count, other, t) is None


@pytest.mark.asyncio
async def test_create_topics_errors_land_on_their_own_future(
    admin: AIOAdminClient, topic: str
) -> None:
    fresh = unique_topic_name("adm")
    fs = admin.create_topics(
        [
            NewTopic(topic, 1, 1),  # exists
            NewTopic(fresh, 1, 1),
            NewTopic(unique_topic_name("adm"), 1, 3),  # one broker only
        ],
        operation_timeout=SLOW,
    )
    await _fails_with(fs[topic], KafkaError.TOPIC_ALREADY_EXISTS)
    assert await asyncio.wait_for(fs[fresh], SLOW) is None
    bad = next(k for k in fs if k not in (topic, fresh))
    await _fails_with(fs[bad], KafkaError.INVALID_REPLICATION_FACTOR)


@pytest.mark.asyncio
async def test_delete_topics(
    admin: AIOAdminClient, other: ConfluentAdmin, new_topic: TopicFactory
) -> None:
    t = new_topic(2)
    missing = unique_topic_name("missing")
    fs = admin.delete_topics([t, missing], operation_timeout=SLOW)
    assert await asyncio.wait_for(fs[t], SLOW) is None
    await _fails_with(fs[missing], KafkaError.UNKNOWN_TOPIC_OR_PART)
    await _eventually(lambda: _partition_count(other, t), None)


@pytest.mark.asyncio
async def test_create_partitions(
    admin: AIOAdminClient, other: ConfluentAdmin, new_topic: TopicFactory
) -> None:
    t, u = new_topic(1), new_topic(3)
    dry = admin.create_partitions([NewPartitions(t, 5)], validate_only=True)
    assert await asyncio.wait_for(dry[t], SLOW) is None
    assert await asyncio.to_thread(_partition_count, other, t) == 1
    fs = admin.create_partitions(
        [NewPartitions(t, 4), NewPartitions(u, 2)], operation_timeout=SLOW
    )
    assert await asyncio.wait_for(fs[t], SLOW) is None
    await _fails_with(fs[u], KafkaError.INVALID_PARTITIONS)  # fewer
    await _eventually(lambda: _partition_count(other, t), 4)
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if kcat is not None:
        bootstrap = other.list_topics(timeout=10).orig_broker_name
        out = await asyncio.to_thread(
            subprocess.run,
            [kcat, "-L", "-b", bootstrap.split("/")[0], "-t", t],
            capture_output=True,
            text=True,
            timeout=SLOW,
        )
        assert "4 partitions" in out.stdout, out.stdout + out.stderr


@pytest.mark.asyncio
async def test_many_requests_at_once(admin: AIOAdminClient) -> None:
    names = [unique_topic_name("many") for _ in range(100)]
    dicts = [
        admin.create_topics([NewTopic(n, 1, 1)], validate_only=True)
        for n in names
    ]
    groups = [admin.list_consumer_groups() for _ in range(20)]
    got = await asyncio.wait_for(
        asyncio.gather(*(d[n] for d, n in zip(dicts, names)), *groups), SLOW
    )
    assert got[:100] == [None] * 100
    assert all(not g.errors for g in got[100:])


# ---- configs --------------------------------------------------------------


@pytest.mark.asyncio
async def test_describe_and_alter_configs(
    admin: AIOAdminClient, other: ConfluentAdmin, topic: str
) -> None:
    res = ConfigResource(ResourceType.TOPIC, topic)
    fs = admin.describe_configs([res])
    assert list(fs) == [res]
    configs = await asyncio.wait_for(fs[res], SLOW)
    entry = configs["retention.ms"]
    assert entry.name == "retention.ms" and entry.value is not None
    assert entry.source == ConfigSource.DEFAULT_CONFIG
    assert entry.is_default and not entry.is_read_only

    change = ConfigResource("topic", topic, set_config={"retention.ms": "7"})
    dry = admin.alter_configs([change], validate_only=True)
    assert await asyncio.wait_for(dry[change], SLOW) is None
    change.set_config("retention.ms", "12345")
    fs2 = admin.alter_configs([change], request_timeout=SLOW)
    assert await asyncio.wait_for(fs2[change], SLOW) is None

    def seen() -> str:
        cres = CConfigResource("topic", topic)
        got = other.describe_configs([cres])[cres].result(timeout=SLOW)
        return str(got["retention.ms"].value)

    await _eventually(seen, "12345")
    configs = await asyncio.wait_for(admin.describe_configs([res])[res], SLOW)
    assert configs["retention.ms"].value == "12345"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG


@pytest.mark.asyncio
async def test_describe_configs_unknown_topic_and_broker(
    admin: AIOAdminClient,
) -> None:
    missing = ConfigResource("topic", unique_topic_name("missing"))
    md = await asyncio.wait_for(admin.list_topics(timeout=10), SLOW)
    broker = ConfigResource(ResourceType.BROKER, str(next(iter(md.brokers))))
    fs = admin.describe_configs([missing, broker])
    await _fails_with(fs[missing], KafkaError.UNKNOWN_TOPIC_OR_PART)
    configs = await asyncio.wait_for(fs[broker], SLOW)
    assert "log.retention.hours" in configs


# ---- records --------------------------------------------------------------


@pytest.mark.asyncio
async def test_delete_records(
    admin: AIOAdminClient, kafka_bootstrap: str, topic: str
) -> None:
    p = confluent_kafka.Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(5):
        p.produce(topic, b"%d" % i, partition=0)
    assert p.flush(SLOW) == 0
    tp = TopicPartition(topic, 0, 3)
    missing = TopicPartition(unique_topic_name("missing"), 0, 1)
    fs = admin.delete_records([tp, missing], operation_timeout=SLOW)
    assert set(fs) == {tp, missing}
    got = await asyncio.wait_for(fs[tp], SLOW)
    assert isinstance(got, DeletedRecords) and got.low_watermark == 3
    with pytest.raises(KafkaException):
        await asyncio.wait_for(fs[missing], SLOW)
    c = confluent_kafka.Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": "wm"}
    )
    try:
        lo, hi = c.get_watermark_offsets(
            confluent_kafka.TopicPartition(topic, 0), timeout=SLOW
        )
    finally:
        c.close()
    assert (lo, hi) == (3, 5)


# ---- consumer groups ------------------------------------------------------


def _commit_group(bootstrap: str, group: str, topic: str, offset: int) -> None:
    """Makes an empty group with a committed offset (confluent-kafka)."""
    c = confluent_kafka.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group}
    )
    try:
        c.commit(
            offsets=[confluent_kafka.TopicPartition(topic, 0, offset)],
            asynchronous=False,
        )
    finally:
        c.close()


def _committed(bootstrap: str, group: str, topic: str) -> int:
    c = confluent_kafka.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group}
    )
    try:
        got = c.committed(
            [confluent_kafka.TopicPartition(topic, 0)], timeout=SLOW
        )
    finally:
        c.close()
    return int(got[0].offset)


@pytest.mark.asyncio
async def test_consumer_group_operations(
    admin: AIOAdminClient, kafka_bootstrap: str, topic: str
) -> None:
    group = f"g-{uuid.uuid4().hex}"
    await asyncio.to_thread(_commit_group, kafka_bootstrap, group, topic, 2)

    listed = await asyncio.wait_for(
        admin.list_consumer_groups(request_timeout=SLOW), SLOW
    )
    assert not listed.errors
    mine = [g for g in listed.valid if g.group_id == group]
    assert len(mine) == 1 and mine[0].state == ConsumerGroupState.EMPTY
    stable = await asyncio.wait_for(
        admin.list_consumer_groups(states={ConsumerGroupState.STABLE}), SLOW
    )
    assert group not in {g.group_id for g in stable.valid}

    desc = await asyncio.wait_for(
        admin.describe_consumer_groups([group])[group], SLOW
    )
    assert desc.group_id == group and desc.members == []
    assert desc.state == ConsumerGroupState.EMPTY
    assert desc.coordinator is not None and desc.coordinator.port > 0

    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])
    got = await asyncio.wait_for(
        admin.list_consumer_group_offsets([req])[group], SLOW
    )
    assert got.group_id == group
    assert got.topic_partitions is not None
    got_parts = got.topic_partitions
    assert [(p.topic, p.partition, p.offset) for p in got_parts] == [
        (topic, 0, 2)
    ]
    everything = await asyncio.wait_for(
        admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], require_stable=True
        )[group],
        SLOW,
    )
    assert everything.topic_partitions is not None
    assert [p.offset for p in everything.topic_partitions] == [2]

    alter = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 1)])
    altered = await asyncio.wait_for(
        admin.alter_consumer_group_offsets([alter])[group], SLOW
    )
    assert altered.topic_partitions is not None
    assert [p.error for p in altered.topic_partitions] == [None]
    assert (
        await asyncio.to_thread(_committed, kafka_bootstrap, group, topic) == 1
    )

    deleted = await asyncio.wait_for(
        admin.delete_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])]
        )[group],
        SLOW,
    )
    assert deleted.topic_partitions is not None
    assert [p.error for p in deleted.topic_partitions] == [None]
    assert (
        await asyncio.to_thread(_committed, kafka_bootstrap, group, topic)
        == confluent_kafka.OFFSET_INVALID
    )

    missing = f"g-{uuid.uuid4().hex}"
    fs = admin.delete_consumer_groups([group, missing])
    assert await asyncio.wait_for(fs[group], SLOW) is None
    await _fails_with(fs[missing], KafkaError.GROUP_ID_NOT_FOUND)
    after = await asyncio.wait_for(admin.list_consumer_groups(), SLOW)
    assert group not in {g.group_id for g in after.valid}


# ---- ACLs -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_acls_on_a_broker_without_authorizer(
    admin: AIOAdminClient, topic: str
) -> None:
    acl = AclBinding(
        ResourceType.TOPIC,
        topic,
        ResourcePatternType.LITERAL,
        "User:alice",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    fs = admin.create_acls([acl])
    assert list(fs) == [acl]
    await _fails_with(fs[acl], KafkaError.SECURITY_DISABLED)
    anything = AclBindingFilter(
        ResourceType.ANY,
        None,
        ResourcePatternType.ANY,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    try:
        described = await asyncio.wait_for(admin.describe_acls(anything), SLOW)
    except KafkaException as exc:
        assert _code(exc) == KafkaError.SECURITY_DISABLED
    else:
        assert described == []
    fs2 = admin.delete_acls([anything])
    assert list(fs2) == [anything]
    try:
        assert await asyncio.wait_for(fs2[anything], SLOW) == []
    except KafkaException as exc:
        assert _code(exc) == KafkaError.SECURITY_DISABLED


# ---- a broker that is down, close, cancel, GC -----------------------------


def _down_conf() -> dict[str, Any]:
    return {
        "bootstrap.servers": f"127.0.0.1:{unused_port()}",
        "reconnect.backoff.max.ms": 100,
    }


@pytest.mark.asyncio
async def test_broker_down_ops_fail_within_their_timeout() -> None:
    admin = AIOAdminClient(_down_conf())
    t0 = time.monotonic()
    fs = admin.create_topics([NewTopic("t", 1, 1)], request_timeout=1)
    groups = admin.list_consumer_groups(request_timeout=1)
    md = admin.list_topics(timeout=1)
    # As in confluent-kafka, a broker that cannot be asked is an entry of
    # the listing's errors.
    listed = await asyncio.wait_for(groups, SLOW)
    assert listed.valid == []
    assert [e.code() for e in listed.errors] == [KafkaError._TIMED_OUT]
    for fut in (fs["t"], md):
        with pytest.raises(KafkaException) as ei:
            await asyncio.wait_for(fut, SLOW)
        assert _code(ei.value) in (
            KafkaError._TIMED_OUT,
            KafkaError._TRANSPORT,
            KafkaError.REQUEST_TIMED_OUT,
        ), ei.value
    assert time.monotonic() - t0 < 15
    t0 = time.monotonic()
    await asyncio.wait_for(admin.close(timeout=2), SLOW)
    assert time.monotonic() - t0 < 10


@pytest.mark.asyncio
async def test_close_fails_requests_in_flight_within_its_timeout() -> None:
    admin = AIOAdminClient(_down_conf())
    fs = admin.delete_topics(["t"], request_timeout=60)
    md = admin.list_topics(timeout=60)
    t0 = time.monotonic()
    await asyncio.wait_for(admin.close(timeout=1), SLOW)
    assert time.monotonic() - t0 < 10
    await _fails_with(fs["t"], KafkaError._DESTROY)
    with pytest.raises(KafkaException):
        await asyncio.wait_for(md, SLOW)
    with pytest.raises(RuntimeError, match="closed"):
        admin.delete_topics(["t"])
    await admin.close()  # again: fine


@pytest.mark.asyncio
async def test_close_waits_for_requests_in_flight(
    kafka_bootstrap: str, other: ConfluentAdmin
) -> None:
    admin = AIOAdminClient({"bootstrap.servers": kafka_bootstrap})
    t = unique_topic_name("adm")
    fs = admin.create_topics([NewTopic(t, 1, 1)], operation_timeout=SLOW)
    await asyncio.wait_for(admin.close(), SLOW)
    assert fs[t].done()
    assert fs[t].result() is None  # answered, not failed by the close
    await _eventually(lambda: _partition_count(other, t), 1)


def test_close_off_the_loop_and_twice() -> None:
    admin = AIOAdminClient(_down_conf())
    t0 = time.monotonic()
    # No running loop: close() waits for the close to finish.
    asyncio.run(_await(admin.close(timeout=1)))
    admin.close(timeout=1)
    assert time.monotonic() - t0 < 10
    with pytest.raises(RuntimeError):
        admin.list_topics()


async def _await(aw: Any) -> None:
    await aw


@pytest.mark.asyncio
async def test_close_from_another_thread_while_the_loop_runs() -> None:
    admin = AIOAdminClient(_down_conf())
    fut = admin.delete_consumer_groups(["g"], request_timeout=60)["g"]
    t0 = time.monotonic()
    await asyncio.wait_for(
        asyncio.to_thread(lambda: admin.close(timeout=1)), SLOW
    )
    assert time.monotonic() - t0 < 10
    await _fails_with(fut, KafkaError._DESTROY)
    await asyncio.wait_for(_await(admin.close()), SLOW)  # and on the loop


@pytest.mark.asyncio
async def test_cancelling_a_pending_future_is_safe(
    admin: AIOAdminClient, other: ConfluentAdmin
) -> None:
    loop = asyncio.get_running_loop()
    problems: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: problems.append(ctx))
    t = unique_topic_name("adm")
    fs = admin.create_topics([NewTopic(t, 1, 1)], operation_timeout=SLOW)
    assert fs[t].cancel()
    groups = admin.list_consumer_groups()
    groups.cancel()
    # The request still runs to its end; its result is dropped.
    await _eventually(lambda: _partition_count(other, t), 1)
    await asyncio.sleep(0.2)
    assert fs[t].cancelled() and groups.cancelled()
    assert problems == []
    # And the client keeps working.
    await asyncio.wait_for(admin.delete_topics([t])[t], SLOW)


@pytest.mark.asyncio
async def test_dropped_without_close_fails_what_is_in_flight() -> None:
    admin = AIOAdminClient(_down_conf())
    fut = admin.describe_consumer_groups(["g"], request_timeout=60)["g"]
    md = admin.list_topics(timeout=2)
    del admin
    gc.collect()
    await _fails_with(fut, KafkaError._DESTROY)
    with pytest.raises(KafkaException):  # its own timeout, or _DESTROY
        await asyncio.wait_for(md, SLOW)


@pytest.mark.asyncio
async def test_the_loop_never_waits_on_a_broker_that_is_down() -> None:
    errors: list[KafkaError] = []
    conf = _down_conf()
    conf["error_cb"] = errors.append  # config callbacks work as elsewhere
    admin = AIOAdminClient(conf)
    loop = asyncio.get_running_loop()
    gaps: list[float] = []

    async def ticker() -> None:
        last = loop.time()
        while True:
            await asyncio.sleep(0.01)
            now = loop.time()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    try:
        pending = [
            admin.list_topics(timeout=2),
            admin.create_topics([NewTopic("t", 1, 1)], request_timeout=2)[
                "t"
            ],
            admin.describe_configs(
                [ConfigResource("broker", "1")], request_timeout=2
            )[ConfigResource("broker", "1")],
        ]
        done = await asyncio.wait_for(
            asyncio.gather(*pending, return_exceptions=True), SLOW
        )
        assert all(isinstance(r, KafkaException) for r in done), done
    finally:
        task.cancel()
        await admin.close(timeout=2)
    # Each call blocks librdkafka for 2 s; the loop never stalled for it.
    assert max(gaps) < 1.0
    assert errors and all(isinstance(e, KafkaError) for e in errors)


FORK_CHILD = """
import asyncio, os, sys
from aiokafka_c import AIOAdminClient, NewTopic
bs = sys.argv[1]

async def main():
    admin = AIOAdminClient({"bootstrap.servers": bs})
    await admin.list_topics(timeout=10)
    pid = os.fork()
    if pid == 0:
        async def child():
            try:
                admin.create_topics([NewTopic("t", 1, 1)])
            except RuntimeError as exc:
                print("child refused", "fork" in str(exc), flush=True)
            await admin.close(timeout=1)
            if sys.argv[2] == "asan":
                return
            async with AIOAdminClient({"bootstrap.servers": bs}) as fresh:
                md = await fresh.list_topics(timeout=10)
                print("child fresh", bool(md.brokers), flush=True)
        asyncio.run(child())
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    print("child status", status, flush=True)
    md = await admin.list_topics(timeout=10)
    print("parent still works", bool(md.topics), flush=True)
    await admin.close(timeout=5)

asyncio.run(main())
"""


def test_fork_child_refuses_the_parents_client(kafka_bootstrap: str) -> None:
    # Under AddressSanitizer the child makes no client of its own: glibc
    # hands the child's new threads the stacks of the parent's threads
    # (which do not exist in the child), and ASan still marks their old
    # frames' redzones, so librdkafka's first clock_gettime() there is
    # reported as a stack-buffer-overflow.
    asan = "libasan" in os.environ.get("LD_PRELOAD", "")
    r = subprocess.run(
        [
            sys.executable,
            "-X",
            "dev",
            "-c",
            FORK_CHILD,
            kafka_bootstrap,
            "asan" if asan else "plain",
        ],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = r.stdout.splitlines()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "child refused True" in out, r.stdout + r.stderr
    assert asan or "child fresh True" in out, r.stdout + r.stderr
    assert "child status 0" in out, r.stdout + r.stderr
    assert "parent still works True" in out, r.stdout + r.stderr


# ---- arguments and construction --------------------------------------------


@pytest.mark.asyncio
async def test_bad_arguments_raise_cleanly(admin: AIOAdminClient) -> None:
    with pytest.raises(TypeError):
        admin.create_topics("t")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="NewTopic"):
        admin.create_topics(["t"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="empty"):
        admin.create_topics([])
    with pytest.raises(ValueError, match="twice"):
        admin.create_topics([NewTopic("t", 1, 1), NewTopic("t", 2, 1)])
    with pytest.raises(ValueError):
        admin.create_topics([NewTopic("t", -5, 1)])
    with pytest.raises(ValueError, match="timeout"):
        admin.create_topics([NewTopic("t", 1, 1)], request_timeout=-1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        admin.create_topics(
            [NewTopic("t", 1, 1)], nope=1  # type: ignore[call-arg]
        )
    with pytest.raises(TypeError):
        admin.delete_topics([1])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        admin.delete_topics(["a\0b"])
    with pytest.raises(TypeError):
        admin.delete_records([("t", 0)])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        NewTopic(1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ResourceType"):
        ConfigResource("nope", "x")
    with pytest.raises(ValueError, match="exactly one"):
        admin.list_consumer_group_offsets(
            [
                ConsumerGroupTopicPartitions("a"),
                ConsumerGroupTopicPartitions("b"),
            ]
        )
    with pytest.raises(ValueError, match="required"):
        admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions("a")])
    with pytest.raises(ValueError):
        admin.list_consumer_groups(states=[99])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="AclBindingFilter"):
        admin.delete_acls(
            [
                AclBinding(  # type: ignore[list-item]
                    "topic", "t", "literal", "User:a", "*", "read", "allow"
                )
            ]
        )
    with pytest.raises(ValueError):
        admin.describe_acls(
            AclBindingFilter(
                ResourceType.UNKNOWN, None, "any", None, None, "any", "any"
            )
        )
    # librdkafka 2.0.2 corrupts its heap when a DeleteRecords request
    # expires while it is set up: too short a timeout is refused.
    with pytest.raises(ValueError, match="at least 100 ms"):
        admin.delete_records([TopicPartition("t", 0, 1)], request_timeout=0)
    with pytest.raises(OverflowError):
        admin.create_topics([NewTopic("t", 2**40, 1)])
    with pytest.raises(ValueError, match="broker id"):
        admin.create_topics([NewTopic("t", replica_assignment=[[2**32 + 1]])])
    # Nothing above reached librdkafka: the client still works.
    md = await asyncio.wait_for(admin.list_topics(timeout=10), SLOW)
    assert md.brokers
    # A name librdkafka refuses is an error, never every topic.
    with pytest.raises(KafkaException):
        await asyncio.wait_for(admin.list_topics("x" * 600, timeout=10), SLOW)


@pytest.mark.asyncio
async def test_user_code_that_changes_the_list_while_it_is_read(
    admin: AIOAdminClient, kafka_bootstrap: str
) -> None:
    """A str subclass whose __hash__ grows the list, and a NewTopic whose
    attribute getter clears it: the call works on what was passed (it
    used to overflow the heap and use freed items)."""
    groups: list[str] = []

    class Growing(str):
        def __hash__(self) -> int:
            if len(groups) < 500:
                groups.extend(Growing(f"g-{len(groups)}") for _ in range(50))
            return str.__hash__(self)

        __eq__ = str.__eq__

    groups.append(Growing(f"no-such-group-{uuid.uuid4().hex[:6]}"))
    fs = admin.delete_consumer_groups(groups)
    assert len(fs) == 1
    await _fails_with(next(iter(fs.values())),
                      KafkaError.GROUP_ID_NOT_FOUND)

    topics: list[NewTopic] = []
    name = f"t-clear-{uuid.uuid4().hex[:6]}"

    class Clearing(NewTopic):
        @property  # type: ignore[override]
        def num_partitions(self) -> int:
            topics.clear()
            return 1

        @num_partitions.setter
        def num_partitions(self, value: int) -> None:
            pass

    topics.append(Clearing(name, 1, 1))
    fs2 = admin.create_topics(topics)
    assert list(fs2) == [name]
    await asyncio.wait_for(fs2[name], SLOW)


@pytest.mark.asyncio
async def test_construction_errors_are_clear() -> None:
    with pytest.raises(KafkaException, match="no.such.property"):
        AIOAdminClient({"no.such.property": "x"})
    with pytest.raises(TypeError):
        AIOAdminClient(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        AIOAdminClient()  # type: ignore[call-arg]


def test_used_from_a_second_loop_raises() -> None:
    admin = AIOAdminClient(_down_conf())
    loop1, loop2 = asyncio.new_event_loop(), asyncio.new_event_loop()

    async def groups() -> None:
        listed = await admin.list_consumer_groups(request_timeout=0.2)
        assert listed.errors

    try:
        loop1.run_until_complete(groups())
        with pytest.raises(RuntimeError, match="loop"):
            loop2.run_until_complete(groups())
        loop1.run_until_complete(admin.close(timeout=2))
    finally:
        loop1.close()
        loop2.close()
