"""TLS, SASL and ACLs through aiokafka_c, against a real broker
(``kafka_secure``: tests/securebroker.py) whose certificates are made by
``openssl`` in the test setup.

What a user must be able to rely on: the client works over TLS and SASL;
a certificate that cannot be trusted (wrong CA, expired, issued for
another host) or a wrong password is reported by name through
``error_cb``, every future still fails within ``message.timeout.ms``,
nothing retries so fast that the report drowns, and ``close()`` returns
promptly; an ACL that denies a topic or a group fails each call with the
broker's authorization error (not a timeout), and granting the ACL at
run time lets the same client carry on.

Everything here is marked ``security`` (through the ``kafka_secure``
fixture): ``-m "not security"`` neither runs it nor starts that broker.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin._acl import AclOperation
from confluent_kafka.admin._resource import ResourceType

import aiokafka_c
from aiokafka_c import AIOConsumer, AIOProducer, KafkaError, KafkaException
from tests.conftest import make_topic, unique_topic_name
from tests.securebroker import (
    DAVE_TOPIC,
    PLAIN_USERS,
    SCRAM_USERS,
    SecureBroker,
    acl,
)

pytestmark = pytest.mark.security

#: how long librdkafka keeps trying a message in the failure tests
MESSAGE_TIMEOUT_MS = 5000
#: slack on top of it for the failure to reach the future (2 cores,
#: shared): generous on purpose, the point is "bounded", not "fast"
SLACK = 15.0
#: generous bound for anything that should take a second or two
SLOW = 60.0
#: close() with the broker unreachable (or refusing us) must be this quick
CLOSE_BOUND = 15.0


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(".")[:3])


LIBRDKAFKA = _version(aiokafka_c.librdkafka_version()[0])


# --------------------------------------------------------------------------
# configs


def tls_conf(sb: SecureBroker, listener: str = "SSL", **extra: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": sb.address(listener),
        "security.protocol": "ssl",
        "ssl.ca.location": str(sb.pki.ca),
    }
    conf.update(extra)
    return conf


def sasl_conf(
    sb: SecureBroker, mechanism: str, user: str, password: str
) -> dict[str, Any]:
    return {
        "bootstrap.servers": sb.address("SASL_SSL"),
        "security.protocol": "sasl_ssl",
        "ssl.ca.location": str(sb.pki.ca),
        "sasl.mechanisms": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }


def consumer_extra(group: str | None = None) -> dict[str, Any]:
    return {
        "group.id": group or unique_topic_name("g"),
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 200,
        "topic.metadata.refresh.interval.ms": 1000,
    }


class Errors:
    """An ``error_cb`` that keeps what it is given, with the time."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.got: list[tuple[float, KafkaError]] = []

    def __call__(self, err: KafkaError) -> None:
        self.got.append((time.monotonic() - self.t0, err))

    def names(self) -> set[str]:
        return {e.name() for _, e in self.got}

    def texts(self) -> list[str]:
        return [f"{e.name()}: {e.str()}" for _, e in self.got]

    def first(self, codes: set[int]) -> KafkaError | None:
        return next((e for _, e in self.got if e.code() in codes), None)

    def count_between(self, a: float, b: float) -> int:
        return sum(1 for t, _ in self.got if a <= t < b)


def error_of(result: object) -> KafkaError:
    assert isinstance(result, KafkaException), result
    err = result.args[0]
    assert isinstance(err, KafkaError)
    return err


# --------------------------------------------------------------------------
# round trips


async def round_trip(conf: dict[str, Any], topic: str, n: int = 20) -> None:
    """Produce n messages with AIOProducer and read them back with
    AIOConsumer, both with ``conf``."""
    errors = Errors()
    async with AIOProducer({**conf, "error_cb": errors}) as producer:
        msgs = await asyncio.wait_for(
            asyncio.gather(
                *(producer.produce(topic, b"v%d" % i) for i in range(n))
            ),
            SLOW,
        )
    assert [m.offset() for m in msgs] == list(range(n))
    got: list[bytes | None] = []
    async with AIOConsumer(
        {**conf, **consumer_extra(), "error_cb": errors}
    ) as consumer:
        await consumer.subscribe([topic])

        async def read() -> None:
            async for msg in consumer:
                got.append(msg.value())
                if len(got) == n:
                    return

        await asyncio.wait_for(read(), SLOW)
    assert got == [b"v%d" % i for i in range(n)]
    assert not errors.got, errors.texts()


@pytest.mark.asyncio
async def test_tls_produce_and_consume(kafka_secure: SecureBroker) -> None:
    topic = make_topic(kafka_secure.plaintext)
    await round_trip(tls_conf(kafka_secure), topic)


@pytest.mark.asyncio
async def test_sasl_plain_produce_and_consume(
    kafka_secure: SecureBroker,
) -> None:
    topic = make_topic(kafka_secure.plaintext)
    conf = sasl_conf(kafka_secure, "PLAIN", "carol", PLAIN_USERS["carol"])
    await round_trip(conf, topic)


def test_scram_users_exist_for_a_current_librdkafka(
    kafka_secure: SecureBroker,
) -> None:
    """The SCRAM user works with confluent-kafka's bundled librdkafka
    (2.6.1 or later): the broker side of the SCRAM test below is right."""
    topic = make_topic(kafka_secure.plaintext)
    conf = sasl_conf(
        kafka_secure, "SCRAM-SHA-512", "alice", SCRAM_USERS["alice"]
    )
    errors: list[str] = []
    reports: list[object] = []
    p = Producer(
        {
            **conf,
            "message.timeout.ms": 30000,
            "error_cb": lambda e: errors.append(str(e)),
        }
    )
    p.produce(topic, b"x", on_delivery=lambda err, msg: reports.append(err))
    assert p.flush(SLOW) == 0
    assert reports == [None], (reports, errors)


@pytest.mark.xfail(
    LIBRDKAFKA < (2, 6, 1),
    strict=True,
    raises=KafkaException,  # the produce futures: _MSG_TIMED_OUT
    reason=(
        "librdkafka < 2.6.1 sends the client nonce twice in SCRAM's "
        "client-final-message (librdkafka#4895); Kafka >= 3.8.1 (and 4.x) "
        "checks the nonce strictly (CVE-2024-56128) and refuses every "
        "SCRAM login from it as invalid credentials"
    ),
)
@pytest.mark.asyncio
async def test_sasl_scram_sha512_produce_and_consume(
    kafka_secure: SecureBroker,
) -> None:
    topic = make_topic(kafka_secure.plaintext)
    conf = sasl_conf(
        kafka_secure, "SCRAM-SHA-512", "alice", SCRAM_USERS["alice"]
    )
    # Without the fix this would wait for message.timeout.ms (300 s).
    await round_trip({**conf, "message.timeout.ms": 8000}, topic)


# --------------------------------------------------------------------------
# failures that never reach Kafka: TLS and authentication


async def failing_client(
    conf: dict[str, Any], topic: str, n: int = 5
) -> tuple[Errors, list[KafkaError], float, float, Errors, float]:
    """A producer and a consumer with ``conf`` that cannot get through.
    Returns the producer's error_cb record, the futures' errors, the time
    until the last future failed, the producer's close() time, the
    consumer's error_cb record and its close() time."""
    perr, cerr = Errors(), Errors()
    producer = AIOProducer(
        {**conf, "message.timeout.ms": MESSAGE_TIMEOUT_MS, "error_cb": perr}
    )
    consumer = AIOConsumer({**conf, **consumer_extra(), "error_cb": cerr})
    t0 = time.monotonic()
    futures = [producer.produce(topic, b"v%d" % i) for i in range(n)]
    await consumer.subscribe([topic])
    polled = await consumer.poll(timeout=3.0)
    results = await asyncio.wait_for(
        asyncio.gather(*futures, return_exceptions=True),
        MESSAGE_TIMEOUT_MS / 1000 + SLACK,
    )
    failed_after = time.monotonic() - t0
    t1 = time.monotonic()
    await asyncio.wait_for(producer.close(), CLOSE_BOUND + 5)
    producer_close = time.monotonic() - t1
    t2 = time.monotonic()
    await asyncio.wait_for(consumer.close(), CLOSE_BOUND + 5)
    consumer_close = time.monotonic() - t2
    assert polled is None or polled.error() is not None, polled
    return (
        perr,
        [error_of(r) for r in results],
        failed_after,
        producer_close,
        cerr,
        consumer_close,
    )


def assert_failed_in_time(
    errs: list[KafkaError], failed_after: float
) -> None:
    # librdkafka fails a message that never got to a broker with
    # _MSG_TIMED_OUT; aiokafka_c adds the reason error_cb got (TLS, SASL,
    # transport) to the error's text.
    assert {e.code() for e in errs} == {KafkaError._MSG_TIMED_OUT}, [
        e.str() for e in errs
    ]
    assert all("the last broker error" in e.str() and
               any(n in e.str() for n in ("_SSL", "_TRANSPORT",
                                          "_AUTHENTICATION"))
               for e in errs), [e.str() for e in errs]
    assert failed_after < MESSAGE_TIMEOUT_MS / 1000 + SLACK


def assert_no_storm(errors: Errors, seconds: float) -> None:
    # librdkafka reconnects with a growing backoff and folds identical
    # errors ("N identical error(s) suppressed"): a handful per second at
    # most, so the first report stays readable.
    assert len(errors.got) <= 10 * seconds + 10, errors.texts()


def _verify(pki_ca: str, cert: str, *args: str) -> str:
    res = subprocess.run(
        ["openssl", "verify", "-CAfile", pki_ca, *args, cert],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return res.stdout + res.stderr


def test_each_bad_certificate_is_bad_for_its_own_reason(
    kafka_secure: SecureBroker,
) -> None:
    """What openssl itself says of the certificates the cases use (the
    client's message does not tell these apart: see the README)."""
    pki = kafka_secure.pki
    ca, other = str(pki.ca), str(pki.other_ca)
    ip = ("-verify_ip", "127.0.0.1")
    assert ": OK" in _verify(ca, str(pki.good), *ip)
    assert "unable to get local issuer certificate" in _verify(
        other, str(pki.good), *ip
    )
    assert "certificate has expired" in _verify(ca, str(pki.expired), *ip)
    assert "IP address mismatch" in _verify(ca, str(pki.wrong_host), *ip)
    assert ": OK" in _verify(ca, str(pki.wrong_host))  # only the name


TLS_CASES = {
    # name: (listener, the Pki attribute used as ssl.ca.location, extra config)
    "wrong-ca": ("SSL", "other_ca", {}),
    "expired": ("EXPIRED", "ca", {}),
    "hostname-mismatch": (
        "BADHOST",
        "ca",
        {"ssl.endpoint.identification.algorithm": "https"},
    ),
}


@pytest.mark.parametrize("case", sorted(TLS_CASES))
@pytest.mark.asyncio
async def test_untrusted_broker_certificate_is_reported(
    kafka_secure: SecureBroker, case: str
) -> None:
    listener, ca, extra = TLS_CASES[case]
    topic = make_topic(kafka_secure.plaintext)
    conf = tls_conf(
        kafka_secure,
        listener,
        **{"ssl.ca.location": str(getattr(kafka_secure.pki, ca)), **extra},
    )
    perr, errs, failed_after, pclose, cerr, cclose = await failing_client(
        conf, topic
    )
    assert_failed_in_time(errs, failed_after)
    for errors in (perr, cerr):
        first = errors.first({KafkaError._SSL, KafkaError._TRANSPORT})
        assert first is not None, errors.texts()
        assert "certificate verify failed" in first.str(), first.str()
        assert kafka_secure.address(listener) in first.str()
        assert errors.got[0][0] < SLACK, errors.texts()
        assert_no_storm(errors, failed_after)
    assert pclose < CLOSE_BOUND and cclose < CLOSE_BOUND, (pclose, cclose)
    print(
        f"TLS {case}: futures failed after {failed_after:.1f} s; "
        f"error_cb {len(perr.got)}/{len(cerr.got)} (producer/consumer) "
        f"calls; close {pclose:.2f}/{cclose:.2f} s; first: {perr.texts()[0]}"
    )


@pytest.mark.asyncio
async def test_hostname_check_is_what_refuses_the_other_name(
    kafka_secure: SecureBroker,
) -> None:
    """The BADHOST certificate is signed by the trusted CA: with the
    endpoint check off, the same listener works (so the mismatch test
    above fails for the name, not the chain)."""
    topic = make_topic(kafka_secure.plaintext)
    conf = tls_conf(
        kafka_secure,
        "BADHOST",
        **{"ssl.endpoint.identification.algorithm": "none"},
    )
    await round_trip(conf, topic, n=3)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
@pytest.mark.asyncio
async def test_wrong_password_is_an_authentication_error(
    kafka_secure: SecureBroker, mechanism: str
) -> None:
    user = "carol" if mechanism == "PLAIN" else "alice"
    topic = make_topic(kafka_secure.plaintext)
    conf = sasl_conf(kafka_secure, mechanism, user, "not-the-password")
    perr, errs, failed_after, pclose, cerr, cclose = await failing_client(
        conf, topic
    )
    assert_failed_in_time(errs, failed_after)
    for errors in (perr, cerr):
        first = errors.first({KafkaError._AUTHENTICATION})
        assert first is not None, errors.texts()
        assert "Authentication failed" in first.str(), first.str()
        assert mechanism != "SCRAM-SHA-512" or mechanism in first.str()
        assert errors.got[0][0] < SLACK, errors.texts()
        assert_no_storm(errors, failed_after)
        # The authentication error is what is reported, not drowned by
        # others (besides _ALL_BROKERS_DOWN, which says the same).
        assert errors.names() <= {"_AUTHENTICATION", "_ALL_BROKERS_DOWN"}, (
            errors.texts()
        )
    assert pclose < CLOSE_BOUND and cclose < CLOSE_BOUND, (pclose, cclose)
    print(
        f"SASL {mechanism}: futures failed after {failed_after:.1f} s; "
        f"error_cb {len(perr.got)}/{len(cerr.got)} (producer/consumer) "
        f"calls; close {pclose:.2f}/{cclose:.2f} s; first: {perr.texts()[0]}"
    )


# --------------------------------------------------------------------------
# ACLs: dave (PLAIN) may write only to DAVE_TOPIC until granted more


def dave(sb: SecureBroker) -> dict[str, Any]:
    return sasl_conf(sb, "PLAIN", "dave", PLAIN_USERS["dave"])


async def retry_until(
    attempt: Callable[[], Any], timeout: float = SLOW
) -> Any:
    """Awaits ``attempt()`` until it does not raise KafkaException (ACLs
    reach the broker's authorizer a moment after CreateAcls returns)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await attempt()
        except KafkaException:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.5)


@pytest.mark.asyncio
async def test_produce_without_write_acl_fails_each_future_then_grant(
    kafka_secure: SecureBroker,
) -> None:
    topic = make_topic(kafka_secure.plaintext)
    errors = Errors()
    # A long message timeout: a failure well before it is the broker's
    # answer, not librdkafka giving up.
    conf = {
        **dave(kafka_secure),
        "message.timeout.ms": 120_000,
        "topic.metadata.refresh.interval.ms": 1000,
        "error_cb": errors,
    }
    async with AIOProducer(conf) as producer:
        # dave's own topic works (InitProducerId is allowed).
        await asyncio.wait_for(producer.produce(DAVE_TOPIC, b"mine"), SLOW)
        t0 = time.monotonic()
        results = await asyncio.wait_for(
            asyncio.gather(
                *(producer.produce(topic, b"v%d" % i) for i in range(10)),
                return_exceptions=True,
            ),
            SLOW,
        )
        denied_after = time.monotonic() - t0
        errs = [error_of(r) for r in results]
        assert {e.code() for e in errs} == {
            KafkaError.TOPIC_AUTHORIZATION_FAILED
        }, [e.str() for e in errs]
        assert not any(e.retriable() for e in errs)
        assert denied_after < 30, denied_after
        print(f"ACL write: {errs[0].name()}: {errs[0].str()}")

        kafka_secure.create_acls(
            [acl("dave", ResourceType.TOPIC, topic, AclOperation.WRITE)]
        )
        first = await retry_until(
            lambda: asyncio.wait_for(producer.produce(topic, b"after"), SLOW)
        )
        msgs = await asyncio.wait_for(
            asyncio.gather(
                *(producer.produce(topic, b"w%d" % i) for i in range(10))
            ),
            SLOW,
        )
    assert [m.offset() for m in msgs] == [
        first.offset() + 1 + i for i in range(10)
    ]
    # The producer itself never had a client-wide problem.
    assert not errors.got, errors.texts()


async def denied_then_granted(
    sb: SecureBroker, grant_first: ResourceType, code: int
) -> None:
    """dave's consumer with only ``grant_first`` allowed (READ on the
    topic, or on the group): its iterator raises ``code``; once the
    other is granted too, the same consumer reads the topic."""
    topic = make_topic(sb.plaintext)
    group = unique_topic_name("g")
    names = {ResourceType.TOPIC: topic, ResourceType.GROUP: group}
    missing = (
        ResourceType.GROUP
        if grant_first == ResourceType.TOPIC
        else ResourceType.TOPIC
    )
    sb.create_acls(
        [acl("dave", grant_first, names[grant_first], AclOperation.READ)]
    )
    ck = Producer({"bootstrap.servers": sb.plaintext})
    for i in range(5):
        ck.produce(topic, b"m%d" % i)
    assert ck.flush(SLOW) == 0

    errors = Errors()
    conf = {**dave(sb), **consumer_extra(group), "error_cb": errors}
    async with AIOConsumer(conf) as consumer:
        await consumer.subscribe([topic])
        it = consumer.__aiter__()
        t0 = time.monotonic()
        with pytest.raises(KafkaException) as info:
            await asyncio.wait_for(it.__anext__(), SLOW)
        err = info.value.args[0]
        assert err.code() == code, err.str()
        assert time.monotonic() - t0 < SLOW
        print(f"ACL read ({missing.name} missing): {err.name()}: {err.str()}")

        sb.create_acls(
            [acl("dave", missing, names[missing], AclOperation.READ)]
        )
        got: list[bytes | None] = []
        deadline = time.monotonic() + SLOW
        while len(got) < 5:
            assert time.monotonic() < deadline, (got, errors.texts())
            try:
                msg = await asyncio.wait_for(it.__anext__(), SLOW)
            except KafkaException as exc:
                # the old denial, until the grant has reached the broker
                assert exc.args[0].code() == code, exc.args[0].str()
                await asyncio.sleep(0.5)
                continue
            got.append(msg.value())
    assert got == [b"m%d" % i for i in range(5)]


@pytest.mark.asyncio
async def test_consume_without_topic_read_acl_raises_then_grant(
    kafka_secure: SecureBroker,
) -> None:
    await denied_then_granted(
        kafka_secure, ResourceType.GROUP, KafkaError.TOPIC_AUTHORIZATION_FAILED
    )


@pytest.mark.asyncio
async def test_consume_without_group_acl_raises_then_grant(
    kafka_secure: SecureBroker,
) -> None:
    await denied_then_granted(
        kafka_secure, ResourceType.TOPIC, KafkaError.GROUP_AUTHORIZATION_FAILED
    )


@pytest.mark.asyncio
async def test_idempotent_producer_without_any_write_acl_is_fatal(
    kafka_secure: SecureBroker,
) -> None:
    """erin may DESCRIBE the topic but WRITE nothing (and has no
    IdempotentWrite): the broker refuses the idempotent producer's
    InitProducerId, which librdkafka makes a fatal error. error_cb says
    why (CLUSTER_AUTHORIZATION_FAILED, fatal); the waiting futures fail
    at once with _PURGE_QUEUE (librdkafka purges the queue on a fatal
    error), later calls with _FATAL; nothing waits for a timeout. Such a
    producer is done for: grant WRITE (or IdempotentWrite on the
    cluster) and make a new one."""
    topic = make_topic(kafka_secure.plaintext)
    kafka_secure.create_acls(
        [acl("erin", ResourceType.TOPIC, topic, AclOperation.DESCRIBE)]
    )
    errors = Errors()
    conf = {
        **sasl_conf(kafka_secure, "PLAIN", "erin", PLAIN_USERS["erin"]),
        "message.timeout.ms": 120_000,
        "error_cb": errors,
    }

    async def attempt() -> list[object]:
        return await asyncio.wait_for(
            asyncio.gather(
                *(producer.produce(topic, b"v%d" % i) for i in range(5)),
                return_exceptions=True,
            ),
            SLOW,
        )

    t0 = time.monotonic()
    producer = AIOProducer(conf)
    try:
        results = await attempt()
        # The DESCRIBE grant may not have reached the authorizer yet:
        # then the topic itself is refused, as for dave above.
        deadline = time.monotonic() + SLOW
        while {error_of(r).code() for r in results} == {
            KafkaError.TOPIC_AUTHORIZATION_FAILED
        }:
            assert time.monotonic() < deadline
            await producer.close()
            await asyncio.sleep(0.5)
            errors.got.clear()
            t0 = time.monotonic()
            producer = AIOProducer(conf)
            results = await attempt()
        failed_after = time.monotonic() - t0
        codes = {error_of(r).code() for r in results}
        assert codes <= {KafkaError._PURGE_QUEUE, KafkaError._FATAL}, [
            error_of(r).str() for r in results
        ]
        assert failed_after < 30, failed_after
        fatal = errors.first({KafkaError.CLUSTER_AUTHORIZATION_FAILED})
        assert fatal is not None, errors.texts()
        assert fatal.fatal()
        assert "idempotence PID" in fatal.str(), fatal.str()
        with pytest.raises(KafkaException) as info:
            await asyncio.wait_for(producer.produce(topic, b"again"), SLOW)
        assert info.value.args[0].code() == KafkaError._FATAL
        print(
            f"ACL no WRITE anywhere: error_cb {fatal.name()} "
            f"(fatal): {fatal.str()}; futures "
            f"{sorted({error_of(r).name() for r in results})}; then "
            f"{info.value.args[0].name()}: {info.value.args[0].str()}"
        )
    finally:
        t1 = time.monotonic()
        await asyncio.wait_for(producer.close(), CLOSE_BOUND + 5)
        assert time.monotonic() - t1 < CLOSE_BOUND
