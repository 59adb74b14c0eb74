"""The example FastAPI app (``aiokafka_c.example``), run the way a user runs
it: a real uvicorn subprocess on a loopback port, producing to the test
suite's real Kafka broker. What it produced is read back with an
independent client (confluent-kafka), never with aiokafka_c; its live feed
(``/ws/items``) is read with the ``websockets`` client.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.conftest import ReadBack, make_topic, unique_topic_name

ROOT = Path(__file__).resolve().parents[1]

# Must match aiokafka_c.example.app (not imported here: the app runs in its
# own process, and this module must load even where the extension is not
# built yet).
MAX_NAME_BYTES = 64 * 1024
MAX_BODY_BYTES = 256 * 1024

# Environment variables the app reads; never inherited from the test run.
_APP_ENV_PREFIXES = ("KAFKA_CONFIG_",)
_APP_ENV_NAMES = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC",
    "APP_FLUSH_TIMEOUT_S",
    "APP_FEED_ENABLED",
    "APP_FEED_QUEUE_SIZE",
)


# --------------------------------------------------------------------------
# helpers


def free_port() -> int:
    """A loopback TCP port nothing listens on (right now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    what: str,
    predicate: Callable[[], bool],
    timeout: float = 30.0,
    interval: float = 0.05,
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def end_offset(bootstrap: str, topic: str) -> int:
    """How many messages ``topic`` holds (sum of high watermarks)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_topic_name("watermarks"),
            "enable.auto.commit": False,
        }
    )
    try:
        md = consumer.list_topics(topic, timeout=10).topics[topic]
        return sum(
            consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=10
            )[1]
            for p in md.partitions
        )
    finally:
        consumer.close()


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class AppProcess:
    """The example app in a subprocess: ``python -m aiokafka_c.example``
    (or another command), its output in a log file."""

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str],
        *,
        args: Sequence[str] = (),
        command: Sequence[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"app-{self.port}.log"
        base = dict(os.environ)
        for key in list(base):
            if key in _APP_ENV_NAMES or key.startswith(_APP_ENV_PREFIXES):
                del base[key]
        base["PYTHONUNBUFFERED"] = "1"
        base.update(env)
        if command is None:
            command = [sys.executable, "-m", "aiokafka_c.example"]
        argv = [*command, "--port", str(self.port), *args]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=base,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def _get(self, path: str) -> httpx.Response | None:
        try:
            return httpx.get(self.url + path, timeout=5.0)
        except httpx.TransportError:
            return None

    def wait_serving(self, timeout: float = 60.0) -> None:
        """Until the app answers /stats (lifespan startup done)."""

        def serving() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"app exited with {self.proc.returncode} before "
                    f"serving:\n{self.log()}"
                )
            response = self._get("/stats")
            return response is not None and response.status_code == 200

        wait_for(f"{self.url} to serve", serving, timeout, 0.1)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        self.wait_serving(timeout)
        last = ""

        def healthy() -> bool:
            nonlocal last
            response = self._get("/healthz")
            if response is None:
                return False
            last = response.text
            return response.status_code == 200

        try:
            wait_for(f"{self.url}/healthz to say 200", healthy, timeout, 0.1)
        except pytest.fail.Exception:
            pytest.fail(
                f"/healthz never said 200; last: {last}\napp log:\n{self.log()}"
            )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig``; the exit status (a negative signal number if the
        process died of a signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(
                f"app did not exit within {timeout} s of signal {sig}:\n"
                f"{self.log()}"
            )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


AppFactory = Callable[..., AppProcess]


@contextlib.contextmanager
def running_apps(workdir: Path) -> Iterator[AppFactory]:
    """A factory of AppProcess; whatever is still running at the end is
    killed."""
    apps: list[AppProcess] = []

    def start(
        env: Mapping[str, str] | None = None,
        *,
        args: Sequence[str] = (),
        command: Sequence[str] | None = None,
    ) -> AppProcess:
        app = AppProcess(workdir, env or {}, args=args, command=command)
        apps.append(app)
        return app

    try:
        yield start
    finally:
        for app in apps:
            app.kill()


def post(client: httpx.Client, endpoint: str, name: str) -> httpx.Response:
    return client.post(f"/{endpoint}", json={"name": name})


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[AppFactory]:
    with running_apps(tmp_path) as factory:
        yield factory


class BrokerApp:
    def __init__(self, app: AppProcess, topic: str, bootstrap: str) -> None:
        self.app = app
        self.topic = topic
        self.bootstrap = bootstrap


@pytest.fixture(scope="module")
def broker_app(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerApp]:
    """One app for the module, producing to a fresh one-partition topic of
    the real broker."""
    topic = make_topic(kafka_bootstrap, 1, name=unique_topic_name("example"))
    with running_apps(tmp_path_factory.mktemp("example-app")) as start:
        app = start(
            {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_TOPIC": topic}
        )
        app.wait_healthy()
        yield BrokerApp(app, topic, kafka_bootstrap)
        status = app.stop()
        assert status == 0, app.log()


# --------------------------------------------------------------------------
# against the real broker


def test_items1_returns_the_delivery_report(
    broker_app: BrokerApp, read_back: ReadBack
) -> None:
    name = unique_name("items1")
    before_ms = time.time() * 1000
    with broker_app.app.client() as client:
        response = post(client, "items1", name)
    after_ms = time.time() * 1000
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"timestamp", "timestamp_type", "partition", "offset"}
    assert body["partition"] == 0
    assert body["offset"] >= 0
    # The broker's topic keeps the producer's create time (type 1).
    assert body["timestamp_type"] == 1
    assert before_ms - 1000 <= body["timestamp"] <= after_ms + 1000

    messages = read_back(broker_app.topic, body["offset"] + 1)
    msg = messages[body["offset"]]
    assert msg.offset() == body["offset"]
    assert msg.value() == name.encode()
    assert msg.timestamp() == (1, body["timestamp"])


def test_all_five_endpoints(
    broker_app: BrokerApp, read_back: ReadBack
) -> None:
    """/items1-4 put the name on the topic, /items5 does not; /stats counts
    the requests and (for 1-3) the delivery reports."""
    topic, bootstrap = broker_app.topic, broker_app.bootstrap
    names = {f"items{i}": unique_name(f"items{i}") for i in range(1, 6)}
    with broker_app.app.client() as client:
        stats_before = client.get("/stats").json()["endpoints"]
        count_before = end_offset(bootstrap, topic)
        statuses = {
            endpoint: post(client, endpoint, name).status_code
            for endpoint, name in names.items()
        }
        assert statuses == {
            "items1": 200,
            "items2": 202,
            "items3": 202,
            "items4": 202,
            "items5": 200,
        }

        def delivered() -> bool:
            stats = client.get("/stats").json()["endpoints"]
            return all(
                stats[e]["deliveries"] == stats_before[e]["deliveries"] + 1
                for e in ("items1", "items2", "items3")
            )

        wait_for("delivery reports of /items1-3", delivered)
        wait_for(
            "four messages on the topic",
            lambda: end_offset(bootstrap, topic) >= count_before + 4,
        )
        stats = client.get("/stats").json()["endpoints"]

    for endpoint in names:
        assert (
            stats[endpoint]["requests"]
            == stats_before[endpoint]["requests"] + 1
        )
    for endpoint in ("items1", "items2", "items3"):
        assert (
            stats[endpoint]["failures"] == stats_before[endpoint]["failures"]
        )
    for endpoint in ("items4", "items5"):
        assert stats[endpoint]["deliveries"] is None

    # Exactly four new messages, whatever ran before this test.
    total = count_before + 4
    assert end_offset(bootstrap, topic) == total
    values = [m.value() for m in read_back(topic, total)]
    for endpoint, name in names.items():
        expected = 0 if endpoint == "items5" else 1
        assert values.count(name.encode()) == expected, endpoint


BAD_BODIES: list[tuple[str, bytes, dict[str, str], int]] = [
    ("truncated JSON", b'{"name": ', {}, 422),
    ("not JSON", b"testuser", {}, 422),
    ("empty body", b"", {}, 422),
    ("JSON array", b'["testuser"]', {}, 422),
    ("JSON string", b'"testuser"', {}, 422),
    ("missing field", b"{}", {}, 422),
    ("misspelt field", b'{"nmae": "testuser"}', {}, 422),
    ("name is a number", b'{"name": 5}', {}, 422),
    ("name is null", b'{"name": null}', {}, 422),
    ("name is a list", b'{"name": ["a"]}', {}, 422),
    ("name is an object", b'{"name": {"a": 1}}', {}, 422),
    ("name is a bool", b'{"name": true}', {}, 422),
    # FastAPI answers a body that is not UTF-8 with 400, before validation.
    ("invalid UTF-8", b'{"name": "\xff\xfe"}', {}, 400),
    ("lone surrogate", b'{"name": "\\ud800"}', {}, 422),
    (
        "name one byte too long",
        json.dumps({"name": "x" * (MAX_NAME_BYTES + 1)}).encode(),
        {},
        422,
    ),
    (
        "name too long in UTF-8 bytes, not in characters",
        json.dumps(
            {"name": "\u00e9" * (MAX_NAME_BYTES // 2 + 1)}, ensure_ascii=False
        ).encode(),
        {},
        422,
    ),
    (
        "body over the size limit",
        json.dumps({"name": "x" * MAX_BODY_BYTES}).encode(),
        {},
        413,
    ),
]


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [pytest.param(b, h, s, id=case) for case, b, h, s in BAD_BODIES],
)
def test_bad_input_is_rejected_and_never_produced(
    broker_app: BrokerApp,
    body: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    topic, bootstrap = broker_app.topic, broker_app.bootstrap
    before = end_offset(bootstrap, topic)
    with broker_app.app.client() as client:
        for i in range(1, 6):
            response = client.post(
                f"/items{i}",
                content=body,
                headers={"content-type": "application/json", **headers},
            )
            assert response.status_code == status, (i, response.text)
            assert "detail" in response.json()
        # Still alive and well.
        assert client.get("/healthz").status_code == 200
        assert post(client, "items5", "still-alive").status_code == 200
    # /items1 would have waited for delivery, /items2-4 are enqueued before
    # they answer: give librdkafka time to send anything it wrongly took.
    time.sleep(0.5)
    assert end_offset(bootstrap, topic) == before


def test_chunked_body_over_the_limit_is_rejected(
    broker_app: BrokerApp,
) -> None:
    """No Content-Length: the body is counted as it arrives."""
    topic, bootstrap = broker_app.topic, broker_app.bootstrap
    before = end_offset(bootstrap, topic)
    payload = json.dumps({"name": "x" * MAX_BODY_BYTES}).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 16 * 1024):
            yield payload[i : i + 16 * 1024]

    with broker_app.app.client() as client:
        for i in range(1, 6):
            response = client.post(
                f"/items{i}",
                content=chunks(),
                headers={"content-type": "application/json"},
            )
            assert response.status_code == 413, response.text
        assert post(client, "items5", "still-alive").status_code == 200
    time.sleep(0.5)
    assert end_offset(bootstrap, topic) == before


def test_other_wrong_requests(broker_app: BrokerApp) -> None:
    with broker_app.app.client() as client:
        assert client.get("/items1").status_code == 405
        assert client.put("/items1", json={"name": "a"}).status_code == 405
        assert client.post("/items6", json={"name": "a"}).status_code == 404
        # The interactive docs need a CDN; they are off.
        assert client.get("/docs").status_code == 404
        assert client.get("/openapi.json").status_code == 200


def test_name_at_the_size_limit_is_delivered(
    broker_app: BrokerApp, read_back: ReadBack
) -> None:
    name = "\u00e9" * (MAX_NAME_BYTES // 2)  # exactly MAX_NAME_BYTES in UTF-8
    with broker_app.app.client() as client:
        response = post(client, "items1", name)
    assert response.status_code == 200, response.text[:500]
    offset = response.json()["offset"]
    msg = read_back(broker_app.topic, offset + 1)[offset]
    assert msg.value() == name.encode()
    assert len(msg.value() or b"") == MAX_NAME_BYTES


def test_stats_and_healthz(broker_app: BrokerApp) -> None:
    with broker_app.app.client() as client:
        for i in range(20):
            response = post(client, "items1", f"stats-{i}")
            assert response.status_code == 200, response.text
        stats = client.get("/stats").json()
        health = client.get("/healthz")

    assert stats["pid"] == broker_app.app.proc.pid
    assert stats["kafka"] == {
        "embedded": False,
        "bootstrap_servers": broker_app.bootstrap,
        "topic": broker_app.topic,
    }
    assert set(stats["endpoints"]) == {f"items{i}" for i in range(1, 6)}
    assert stats["endpoints"]["items1"]["deliveries"] >= 20
    latency = stats["latency_ms"]
    assert latency["count"] >= 20
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    # A loopback broker answers well within a second.
    assert latency["p50"] < 1000
    assert stats["delivery_latency_ms"]["count"] >= 20
    assert stats["in_flight"] == 0
    assert stats["health"]["ok"] is True

    rd = stats["librdkafka"]
    assert rd is not None and rd["age_s"] < 5

    def reported() -> bool:
        # librdkafka reports once a second; wait for a report after the 20.
        nonlocal rd
        with broker_app.app.client() as client:
            rd = client.get("/stats").json()["librdkafka"]
        return bool(rd["txmsgs"] >= 20)

    wait_for("statistics counting the 20 messages", reported, timeout=10)
    assert any(b["state"] == "UP" for b in rd["brokers"]), rd["brokers"]

    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["brokers_up"]


def test_index_page_is_self_contained(broker_app: BrokerApp) -> None:
    with broker_app.app.client() as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<form" in page and 'id="send"' in page
    for marker in ("src=", "href=", "url(", "@import", "//cdn"):
        assert marker not in page, marker
    # The one URL on the page is the SVG namespace, which is never fetched.
    assert page.count("http") == page.count("http://www.w3.org/2000/svg")


# --------------------------------------------------------------------------
# lifecycle: own app processes


def test_sigterm_flushes_queued_messages_and_exits_zero(
    kafka_bootstrap: str, start_app: AppFactory, read_back: ReadBack
) -> None:
    """Messages still lingering in the producer's queue at SIGTERM reach the
    topic before the process exits 0."""
    topic = make_topic(kafka_bootstrap, 1, name=unique_topic_name("sigterm"))
    app = start_app(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC": topic,
            # Hold batches back so that they are still queued at SIGTERM.
            "KAFKA_CONFIG_LINGER_MS": "5000",
        }
    )
    app.wait_healthy()
    names = [unique_name(f"term{i}") for i in range(30)]
    with app.client() as client:
        for i, name in enumerate(names):
            response = post(client, f"items{2 + i % 3}", name)
            assert response.status_code == 202, response.text
        in_flight = client.get("/stats").json()["in_flight"]
    assert in_flight > 0, "messages were delivered before SIGTERM"

    started = time.monotonic()
    assert app.stop(signal.SIGTERM) == 0, app.log()
    assert time.monotonic() - started < 10
    log = app.log()
    assert "shutting down: flushing" in log
    assert "producer closed" in log
    assert "not delivered" not in log

    values = {m.value() for m in read_back(topic, len(names))}
    assert values == {n.encode() for n in names}


def test_sigint_exits_zero(
    kafka_bootstrap: str, start_app: AppFactory
) -> None:
    app = start_app({"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})
    app.wait_healthy()
    with app.client() as client:
        assert post(client, "items1", "sigint").status_code == 200
    assert app.stop(signal.SIGINT) == 0, app.log()
    assert "producer closed" in app.log()


def test_uvicorn_command_line(
    kafka_bootstrap: str, start_app: AppFactory
) -> None:
    """``uvicorn aiokafka_c.example.app:app`` serves the same app."""
    topic = make_topic(kafka_bootstrap, 1, name=unique_topic_name("uvicorn"))
    app = start_app(
        {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_TOPIC": topic},
        command=[
            sys.executable,
            "-m",
            "uvicorn",
            "aiokafka_c.example.app:app",
        ],
    )
    app.wait_healthy()
    with app.client() as client:
        response = post(client, "items1", "via-uvicorn")
    assert response.status_code == 200, response.text
    assert response.json()["offset"] == 0
    # uvicorn's own CLI re-raises SIGTERM after its graceful shutdown.
    assert app.stop(signal.SIGTERM) in (0, -signal.SIGTERM), app.log()
    assert "producer closed" in app.log()


def test_workers_each_have_a_producer(
    kafka_bootstrap: str, start_app: AppFactory
) -> None:
    topic = make_topic(kafka_bootstrap, 1, name=unique_topic_name("workers"))
    app = start_app(
        {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_TOPIC": topic},
        args=["--workers", "2"],
    )
    wait_for(
        "two workers to start their producers",
        lambda: app.log().count("producing to topic") == 2,
        timeout=60,
    )
    app.wait_healthy()
    pids: set[int] = set()
    deadline = time.monotonic() + 30
    while len(pids) < 2 and time.monotonic() < deadline:
        # A new connection each time, so that either worker may take it.
        response = httpx.post(
            app.url + "/items1", json={"name": "workers"}, timeout=30
        )
        assert response.status_code == 200, response.text
        pids.add(httpx.get(app.url + "/stats", timeout=30).json()["pid"])
    assert len(pids) == 2, "only one worker ever answered"
    assert app.stop(signal.SIGTERM) == 0, app.log()
    assert app.log().count("producer closed") == 2, app.log()


# --------------------------------------------------------------------------
# no broker: embedded default and unreachable cluster


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_embedded_mock_cluster_by_default(
    start_app: AppFactory, loop: str
) -> None:
    """No KAFKA_BOOTSTRAP_SERVERS: librdkafka's in-process mock cluster,
    announced in the startup log (the README's first run)."""
    app = start_app({}, args=["--loop", loop])
    app.wait_healthy()
    assert "embedded librdkafka mock cluster" in app.log()
    with app.client() as client:
        response = post(client, "items1", "testuser")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["offset"] == 0
        assert isinstance(body["timestamp"], int)
        for endpoint in ("items2", "items3", "items4", "items5"):
            assert post(client, endpoint, "testuser").status_code in (200, 202)
        stats = client.get("/stats").json()
    assert stats["kafka"]["embedded"] is True
    assert stats["loop"].startswith(f"{loop}.")
    assert stats["kafka"]["topic"] == "items"
    assert app.stop() == 0, app.log()


def test_unreachable_cluster(start_app: AppFactory) -> None:
    """A cluster that is not there: /healthz says 503 with the reason,
    /items1 fails with 503 naming the Kafka error, delivery callbacks count
    the failures, and shutdown is still prompt and clean."""
    dead = f"127.0.0.1:{free_port()}"
    app = start_app(
        {
            "KAFKA_BOOTSTRAP_SERVERS": dead,
            "KAFKA_CONFIG_MESSAGE_TIMEOUT_MS": "2000",
            "APP_FLUSH_TIMEOUT_S": "3",
        }
    )
    app.wait_serving()
    with app.client() as client:
        health: dict[str, Any] = {}

        def unhealthy_with_reason() -> bool:
            nonlocal health
            response = client.get("/healthz")
            health = response.json()
            # The reason names the broker that cannot be reached.
            return response.status_code == 503 and dead in health["reason"]

        wait_for("/healthz to report the cluster down", unhealthy_with_reason)
        assert health["status"] == "unavailable"
        assert health["brokers_up"] == []

        assert post(client, "items2", "lost-2").status_code == 202
        assert post(client, "items3", "lost-3").status_code == 202
        started = time.monotonic()
        response = post(client, "items1", "lost-1")
        waited = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.headers.get("retry-after") == "1"
        detail = response.json()["detail"]
        assert detail["error"] in ("_MSG_TIMED_OUT", "_TRANSPORT")
        assert detail["reason"]
        assert isinstance(detail["code"], int)
        assert waited < 10

        def failures_counted() -> bool:
            stats = client.get("/stats").json()["endpoints"]
            return all(
                stats[e]["failures"] == 1
                for e in ("items1", "items2", "items3")
            )

        wait_for("the delivery failures to be counted", failures_counted)
        stats = client.get("/stats").json()
        assert stats["health"]["ok"] is False

    started = time.monotonic()
    assert app.stop(signal.SIGTERM) == 0, app.log()
    assert time.monotonic() - started < 10
    log = app.log()
    assert "producer closed" in log
    assert "delivery failed" in log  # the rate-limited callback log


def test_shutdown_is_bounded_when_the_cluster_is_away(
    start_app: AppFactory,
) -> None:
    """SIGTERM with messages that can never be delivered and a request
    still waiting on one: the process exits 0 within the graceful timeout
    plus the flush timeout, and says what it dropped."""
    app = start_app(
        {
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
            "APP_FLUSH_TIMEOUT_S": "1",
        },
        args=["--graceful-timeout", "1"],
    )
    app.wait_serving()
    waiting: list[int | str] = []

    def wait_on_items1() -> None:
        try:
            response = httpx.post(
                app.url + "/items1", json={"name": "stuck"}, timeout=30
            )
            waiting.append(response.status_code)
        except httpx.TransportError as exc:
            waiting.append(type(exc).__name__)

    with app.client() as client:
        for i in range(5):
            assert post(client, "items2", f"stuck-{i}").status_code == 202
        waiter = threading.Thread(target=wait_on_items1)
        waiter.start()
        wait_for(
            "/items1 to be waiting",
            lambda: (
                client.get("/stats").json()["endpoints"]["items1"]["requests"]
                == 1
            ),
        )
    started = time.monotonic()
    assert app.stop(signal.SIGTERM) == 0, app.log()
    took = time.monotonic() - started
    waiter.join(30)
    assert took < 1 + 1 + 3, f"shutdown took {took:.1f} s"
    assert waiting and waiting[0] != 200, waiting
    log = app.log()
    assert "6 message(s) not delivered within 1.0 s" in log, log
    assert "producer closed" in log


# --------------------------------------------------------------------------
# the live feed: /ws/items


def feed_state(app: AppProcess) -> dict[str, Any]:
    feed: dict[str, Any] = httpx.get(app.url + "/stats", timeout=30).json()[
        "feed"
    ]
    return feed


def wait_feed_live(app: AppProcess) -> dict[str, Any]:
    """Until the app's consumer reads the topic: items produced from then
    on are in the feed."""
    last: dict[str, Any] = {}

    def live() -> bool:
        nonlocal last
        last = feed_state(app)
        return last["state"] == "live"

    try:
        wait_for("the live feed to start", live, timeout=60, interval=0.1)
    except pytest.fail.Exception:
        pytest.fail(f"feed never went live: {last}\napp log:\n{app.log()}")
    return last


class FeedViewer:
    """A WebSocket client of ``/ws/items`` whose thread reads every item
    as it comes."""

    def __init__(self, app: AppProcess) -> None:
        from websockets.sync.client import connect

        # Entered as a context manager (websockets asks for that), left
        # by close().
        self.ws = connect(
            f"ws://127.0.0.1:{app.port}/ws/items",
            open_timeout=30,
            max_size=None,
        ).__enter__()
        self.items: list[dict[str, Any]] = []
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            for text in self.ws:
                self.items.append(json.loads(text))
        except ConnectionClosed:
            pass
        finally:
            self.ended.set()

    def values(self) -> list[str | None]:
        return [i["value"] for i in list(self.items)]

    def wait_for_values(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """The items carrying ``names``, once all have arrived."""
        wanted = set(names)
        wait_for(
            f"{len(wanted)} item(s) on the feed",
            lambda: wanted <= set(self.values()),
        )
        return [i for i in list(self.items) if i["value"] in wanted]

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    def close(self) -> None:
        self.ws.close()
        self._thread.join(30)


def stalled_viewer(app: AppProcess) -> socket.socket:
    """A client that completes the WebSocket handshake, then never reads
    again (a small receive buffer, so that it fills up soon)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", app.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws/items HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{app.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, f"handshake cut short: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def assert_clean_exit_log(log: str) -> None:
    assert "live feed: consumer closed" in log, log
    assert "producer closed" in log, log
    for marker in ("Traceback", "never retrieved", "ERROR"):
        assert marker not in log, log


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_feed_on_the_embedded_cluster(start_app: AppFactory, loop: str) -> None:
    """Items posted to every producing endpoint reach every viewer; a
    viewer that goes away is forgotten and the others go on; SIGTERM lets
    the rest go and exits 0."""
    app = start_app({}, args=["--loop", loop])
    app.wait_healthy()
    live = wait_feed_live(app)
    assert live["topic"] == "items"
    assert live["partitions"] >= 1
    first, second, abrupt = FeedViewer(app), FeedViewer(app), FeedViewer(app)
    wait_for("three viewers", lambda: feed_state(app)["viewers"] == 3)

    names = {f"items{i}": unique_name(f"feed{i}") for i in range(1, 5)}
    with app.client() as client:
        responses = {e: post(client, e, n) for e, n in names.items()}
    assert responses["items1"].status_code == 200, responses["items1"].text
    for viewer in (first, second, abrupt):
        got = viewer.wait_for_values(list(names.values()))
        assert len(got) == 4  # each once
    delivered = responses["items1"].json()
    [doc] = [i for i in first.items if i["value"] == names["items1"]]
    assert doc["topic"] == "items"
    assert doc["key"] is None
    assert (doc["partition"], doc["offset"]) == (
        delivered["partition"],
        delivered["offset"],
    )
    assert isinstance(doc["timestamp"], int)

    # One viewer leaves politely, one drops its TCP connection.
    first.close()
    abrupt.ws.socket.shutdown(socket.SHUT_RDWR)
    abrupt.ws.socket.close()
    wait_for("the two to be forgotten", lambda: feed_state(app)["viewers"] == 1)
    last = unique_name("after")
    with app.client() as client:
        assert post(client, "items1", last).status_code == 200
    second.wait_for_values([last])
    stats = feed_state(app)
    assert stats["viewers_total"] == 3
    assert stats["viewers_dropped"] == 0
    assert stats["items_fanned_out"] >= 3 * 4 + 1
    assert stats["items_consumed"] >= 5

    assert app.stop(signal.SIGTERM) == 0, app.log()
    assert second.ended.wait(30)
    assert second.close_code in (1001, 1012)  # going away / restarting
    assert_clean_exit_log(app.log())


def test_feed_on_the_real_broker(broker_app: BrokerApp) -> None:
    app = broker_app.app
    live = wait_feed_live(app)
    assert live["topic"] == broker_app.topic and live["partitions"] == 1
    viewer = FeedViewer(app)
    try:
        wait_for("the viewer", lambda: feed_state(app)["viewers"] >= 1)
        name = unique_name("feed")
        with app.client() as client:
            response = post(client, "items1", name)
        assert response.status_code == 200, response.text
        body = response.json()
        [doc] = viewer.wait_for_values([name])
        assert doc == {
            "topic": broker_app.topic,
            "partition": 0,
            "offset": body["offset"],
            "key": None,
            "value": name,
            "timestamp": body["timestamp"],
            "timestamp_type": 1,
        }
    finally:
        viewer.close()
    wait_for("the viewer to leave", lambda: feed_state(app)["viewers"] == 0)


def test_every_worker_feeds_its_viewers_every_item(
    kafka_bootstrap: str, start_app: AppFactory
) -> None:
    """Each worker process has its own consumer: whichever worker a viewer
    is connected to, it sees every item, whichever worker produced it."""
    topic = make_topic(kafka_bootstrap, 2, name=unique_topic_name("feedw"))
    app = start_app(
        {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_TOPIC": topic},
        args=["--workers", "2"],
    )
    wait_for(
        "both workers' feeds to go live",
        lambda: app.log().count("live feed: reading topic") == 2,
        timeout=60,
    )
    viewers = [FeedViewer(app) for _ in range(6)]
    names = [unique_name(f"w{i}") for i in range(10)]
    for name in names:  # a new connection each: either worker may take it
        response = httpx.post(
            app.url + "/items1", json={"name": name}, timeout=30
        )
        assert response.status_code == 200, response.text
    for viewer in viewers:
        assert len(viewer.wait_for_values(names)) == len(names)
    assert app.stop(signal.SIGTERM) == 0, app.log()
    assert app.log().count("live feed: consumer closed") == 2, app.log()


@pytest.mark.skip(
    reason="does not reach a drop yet: the stalled client's buffers absorb "
    "the items for longer than the test's time; the drop is covered in "
    "process by test_example_feed.py"
)
def test_slow_viewer_is_dropped_and_the_others_keep_up(
    start_app: AppFactory,
) -> None:
    """A viewer that stops reading is dropped once its queue is full; a
    viewer that reads gets every item, before and after."""
    app = start_app({"APP_FEED_QUEUE_SIZE": "8"})
    app.wait_healthy()
    wait_feed_live(app)
    reader = FeedViewer(app)
    stalled = stalled_viewer(app)
    try:
        wait_for("two viewers", lambda: feed_state(app)["viewers"] == 2)
        sent: list[str] = []
        with app.client() as client:
            # Big items fill the stalled client's socket buffers and the
            # server's; then its queue fills and it is dropped.
            while feed_state(app)["viewers_dropped"] == 0:
                assert len(sent) < 2000, "the stalled viewer was never dropped"
                name = f"{len(sent):06d}-" + "x" * 32 * 1024
                assert post(client, "items1", name).status_code == 200
                sent.append(name)
                reader.wait_for_values([name])
            stats = feed_state(app)
            assert stats["viewers"] == 1
            after = unique_name("after-drop")
            assert post(client, "items1", after).status_code == 200
        assert reader.wait_for_values([after])
        assert reader.values() == [*sent, after]
        assert feed_state(app)["viewers_dropped"] == 1
    finally:
        stalled.close()
        reader.close()
    assert app.stop() == 0, app.log()
    assert_clean_exit_log(app.log())


def test_sigterm_with_viewers_connected_exits_cleanly(
    kafka_bootstrap: str, start_app: AppFactory
) -> None:
    topic = make_topic(kafka_bootstrap, 1, name=unique_topic_name("feedterm"))
    app = start_app(
        {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_TOPIC": topic}
    )
    app.wait_healthy()
    wait_feed_live(app)
    viewers = [FeedViewer(app) for _ in range(5)]
    stalled = stalled_viewer(app)
    try:
        wait_for("six viewers", lambda: feed_state(app)["viewers"] == 6)
        names = [unique_name(f"t{i}") for i in range(5)]
        with app.client() as client:
            for name in names:
                assert post(client, "items2", name).status_code == 202
        for viewer in viewers:
            viewer.wait_for_values(names)
        assert app.stop(signal.SIGTERM) == 0, app.log()
    finally:
        stalled.close()
    for viewer in viewers:
        assert viewer.ended.wait(30)
        assert viewer.close_code in (1001, 1012)
    assert_clean_exit_log(app.log())


def test_the_app_works_with_the_feed_off(
    kafka_bootstrap: str, start_app: AppFactory, read_back: ReadBack
) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    topic = make_topic(kafka_bootstrap, 1, name=unique_topic_name("nofeed"))
    app = start_app(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC": topic,
            "APP_FEED_ENABLED": "0",
        }
    )
    app.wait_healthy()
    with app.client() as client:
        assert post(client, "items1", "no-feed").status_code == 200
        assert client.get("/stats").json()["feed"]["state"] == "off"
        assert "Live feed" in client.get("/").text
    url = f"ws://127.0.0.1:{app.port}/ws/items"
    with pytest.raises(InvalidStatus) as refused:
        with connect(url, open_timeout=30):
            pass
    assert refused.value.response.status_code == 403
    assert [m.value() for m in read_back(topic, 1)] == [b"no-feed"]
    assert app.stop() == 0, app.log()
    log = app.log()
    assert "live feed" not in log
    assert "producer closed" in log


# --------------------------------------------------------------------------
# configuration (in-process, no server)


def test_settings_from_environment() -> None:
    from aiokafka_c.example.settings import Settings

    default = Settings.from_env({})
    assert default.embedded
    assert default.topic == "items"
    config = default.producer_config()
    assert config["test.mock.num.brokers"] == "1"
    assert "bootstrap.servers" not in config

    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "KAFKA_TOPIC": "orders",
        "KAFKA_CONFIG_MESSAGE_TIMEOUT_MS": "5000",
        "KAFKA_CONFIG_ENABLE_IDEMPOTENCE": "true",
        "KAFKA_CONFIG_SOME__ODD_NAME": "x",
        "APP_FLUSH_TIMEOUT_S": "2.5",
        "UNRELATED": "1",
    }
    settings = Settings.from_env(env)
    assert not settings.embedded
    assert settings.topic == "orders"
    assert settings.flush_timeout == 2.5
    config = settings.producer_config()
    assert config["bootstrap.servers"] == "127.0.0.1:9092"
    assert config["message.timeout.ms"] == "5000"
    assert config["enable.idempotence"] == "true"
    assert config["some_odd.name"] == "x"
    assert "test.mock.num.brokers" not in config
    assert "statistics.interval.ms" in config

    via_config = Settings.from_env(
        {"KAFKA_CONFIG_BOOTSTRAP_SERVERS": "127.0.0.1:9093"}
    )
    assert not via_config.embedded
    assert (
        via_config.producer_config()["bootstrap.servers"] == "127.0.0.1:9093"
    )

    with pytest.raises(ValueError, match="APP_FLUSH_TIMEOUT_S"):
        Settings.from_env({"APP_FLUSH_TIMEOUT_S": "soon"})
    with pytest.raises(ValueError, match="APP_FLUSH_TIMEOUT_S"):
        Settings.from_env({"APP_FLUSH_TIMEOUT_S": "-1"})


def test_feed_settings() -> None:
    from aiokafka_c.example.settings import Settings, SettingsError

    default = Settings.from_env({})
    assert default.feed_enabled is True
    assert default.feed_queue_size == 100
    config = default.feed_config()
    assert config["enable.auto.commit"] == "false"
    assert config["group.id"].startswith("aiokafka-c-example-feed-")
    assert config["group.id"] != default.feed_config()["group.id"]
    assert config["allow.auto.create.topics"] == "true"  # embedded only
    assert "bootstrap.servers" not in config
    assert "message.timeout.ms" not in config  # a producer default

    settings = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
            "KAFKA_CONFIG_SECURITY_PROTOCOL": "plaintext",
            "KAFKA_CONFIG_TEST_MOCK_NUM_BROKERS": "3",
            "APP_FEED_ENABLED": "off",
            "APP_FEED_QUEUE_SIZE": "7",
        }
    )
    assert settings.feed_enabled is False
    assert settings.feed_queue_size == 7
    config = settings.feed_config()
    assert config["security.protocol"] == "plaintext"
    assert "test.mock.num.brokers" not in config
    assert "allow.auto.create.topics" not in config

    assert Settings.from_env({"APP_FEED_ENABLED": "1"}).feed_enabled
    assert not Settings.from_env({"APP_FEED_ENABLED": "0"}).feed_enabled
    for bad in ({"APP_FEED_ENABLED": "maybe"}, {"APP_FEED_QUEUE_SIZE": "0"}):
        with pytest.raises(SettingsError, match=next(iter(bad))):
            Settings.from_env(bad)
    with pytest.raises(SettingsError, match="APP_FEED_QUEUE_SIZE"):
        Settings.from_env({"APP_FEED_QUEUE_SIZE": "lots"})


def test_bad_librdkafka_setting_fails_startup(start_app: AppFactory) -> None:
    app = start_app({"KAFKA_CONFIG_NO_SUCH_PROPERTY": "1"})
    status = app.proc.wait(60)
    assert status != 0
    assert "no.such.property" in app.log()


# --------------------------------------------------------------------------
# the README shows the real app


README_SECTION = "The example web app"


def rst_section(text: str, title: str) -> str | None:
    """The body of the reST section called ``title`` (up to the next title
    with the same underline), or None."""
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        under = lines[i + 1]
        if (
            line.strip() == title
            and len(under) >= len(title)
            and len(set(under)) == 1
            and not under[0].isalnum()
        ):
            mark = under[0]
            body = []
            for j in range(i + 2, len(lines)):
                nxt = lines[j + 1] if j + 1 < len(lines) else ""
                if lines[j].strip() and nxt and set(nxt.rstrip()) == {mark}:
                    break  # the next title at this level
                body.append(lines[j])
            return "\n".join(body)
    return None


def rst_code_blocks(section: str) -> list[tuple[str, list[str]]]:
    """(language, dedented lines) of each ``.. code-block::`` in order."""
    blocks: list[tuple[str, list[str]]] = []
    lines = section.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line.startswith(".. code-block::"):
            continue
        language = line.split("::", 1)[1].strip()
        body: list[str] = []
        while i < len(lines) and (not lines[i].strip() or lines[i][0] == " "):
            body.append(lines[i])
            i += 1
        text = "\n".join(body).strip("\n")
        blocks.append((language, textwrap.dedent(text).splitlines()))
    return blocks


def check_readme_section(section: str) -> None:
    from aiokafka_c.example.__main__ import _parser
    from aiokafka_c.example.app import app

    app_source = (ROOT / "aiokafka_c" / "example" / "app.py").read_text()
    settings_source = (
        ROOT / "aiokafka_c" / "example" / "settings.py"
    ).read_text()
    routes = {getattr(r, "path", None) for r in app.routes}
    blocks = rst_code_blocks(section)
    assert blocks, "no code blocks in the README's example section"

    def stripped(lines: list[str]) -> list[str]:
        return [line.strip() for line in lines if line.strip()]

    source_lines = stripped(app_source.splitlines())
    for language, lines in blocks:
        if language == "python":
            shown = stripped(lines)
            assert any(
                source_lines[k : k + len(shown)] == shown
                for k in range(len(source_lines))
            ), f"README code is not in aiokafka_c/example/app.py:\n{lines}"
            continue
        assert language == "console", language
        for line in lines:
            if not line.startswith("$ "):
                continue  # shown output
            argv = shlex.split(line[2:])
            while argv and "=" in argv[0] and not argv[0].startswith("-"):
                name = argv.pop(0).split("=", 1)[0]
                known = name.startswith("KAFKA_CONFIG_") or (
                    f'"{name}"' in settings_source
                )
                assert known, f"{name} is not read by the app"
            if argv[:3] == ["python", "-m", "aiokafka_c.example"]:
                _parser().parse_args(argv[3:])  # exits on a stale flag
            elif argv[0] == "uvicorn":
                assert argv[1] == "aiokafka_c.example.app:app"
            elif argv[0] == "curl":
                url = next(a for a in argv if "/items" in a)
                if "//" not in url:
                    url = "http://" + url
                path = urllib.parse.urlsplit(url).path
                assert path in routes, path
            elif argv[0] == "bash":
                script = ROOT / argv[1]
                assert script.is_file(), f"{argv[1]} does not exist"
                if argv[1] == "scripts/run.sh":  # passes its flags on
                    _parser().parse_args(argv[2:])
            else:
                assert argv[:2] == ["pip", "install"], line


def test_readme_example_section_matches_the_app() -> None:
    readme = ROOT / "README.rst"
    text = readme.read_text() if readme.exists() else ""
    section = rst_section(text, README_SECTION)
    if section is None:
        pytest.skip(f"README.rst has no {README_SECTION!r} section yet")
    check_readme_section(section)
