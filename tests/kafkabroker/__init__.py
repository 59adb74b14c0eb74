"""A real single-node Apache Kafka broker (KRaft mode) for tests and benches.

No Docker: the broker's jars come from Maven Central through ``pom.xml``
next to this file (``ensure_jars``), and the broker runs as a plain ``java``
process listening on 127.0.0.1 only (``KafkaBroker``).

Stdlib only, so the benchmarks and humans can use it without the test
dependencies::

    from tests.kafkabroker import KafkaBroker

    with KafkaBroker() as broker:
        print(broker.bootstrap)        # "127.0.0.1:PORT"

    $ python -m tests.kafkabroker start   # prints the bootstrap, Ctrl-C stops

``KafkaCluster`` runs several such nodes (broker and controller each) as
one cluster with a static quorum, for tests that kill brokers::

    with KafkaCluster(3) as cluster:   # RF 3, min.insync.replicas 2
        cluster.kill(2)                # SIGKILL node 2, data kept
        cluster.restart(2)             # same ports, same log dir

    $ python -m tests.kafkabroker start --nodes 3 --workdir DIR

Readiness is a real Kafka exchange (ApiVersions, then Metadata listing this
broker), not a TCP connect: the port accepts connections well before the
broker can serve requests. The process is only ever signalled by its own
PID, never by a name pattern, and an ``atexit`` hook (plus, when started
from the main thread, a parent-death signal) keeps it from outliving the
Python process that started it.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # typing.Self is 3.11+; annotations are never evaluated at run time
    # (``from __future__ import annotations``), so 3.10 needs no import and
    # this module stays stdlib-only.
    from typing_extensions import Self

__all__ = [
    "BrokerInfo",
    "KafkaBroker",
    "KafkaCluster",
    "KafkaBrokerError",
    "ensure_jars",
    "fetch_metadata",
    "free_port",
    "random_cluster_id",
]

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
LOG4J_CONFIG = HERE / "log4j2.properties"
JARS_DIR = HERE / "jars"
# Written last by ensure_jars(); holds the hash of the pom the jars came from.
_JARS_STAMP = ".complete"
# Jars that must be present for the broker to start and to log.
_REQUIRED_JAR_PREFIXES = (
    "kafka_2.13-",
    "kafka-clients-",
    "kafka-server-",
    "kafka-raft-",
    "kafka-storage-",
    "kafka-metadata-",
    "scala-library-",
    "log4j-core-",
    "log4j-slf4j-impl-",
    "slf4j-api-",
)

NODE_ID = 1
HEAP = "512m"
# A node of a KafkaCluster: three of them share two cores with the tests,
# so a smaller heap, and only the C1 JIT (much less compile work while
# starting, which is what a test cluster mostly does).
CLUSTER_HEAP = "320m"
CLUSTER_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1",)
JVM_OPTIONS = (
    "-XX:+UseSerialGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)


def _all_threads_stopped(pid: int) -> bool:
    """True once every thread of pid is in the stopped state (T)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("T", "t"):
            return False
    return True


class KafkaBrokerError(RuntimeError):
    """The broker (or its tooling) could not be set up, started or reached."""


# --------------------------------------------------------------------------
# jars


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def _jars_complete(jars: Path, digest: str) -> bool:
    stamp = jars / _JARS_STAMP
    try:
        if stamp.read_text().strip() != digest:
            return False
    except OSError:
        return False
    names = [p.name for p in jars.glob("*.jar")]
    return all(
        any(n.startswith(prefix) for n in names)
        for prefix in _REQUIRED_JAR_PREFIXES
    )


def _require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise KafkaBrokerError(
            f"`{name}` was not found on PATH; it is needed to run the test "
            f"Kafka broker ({hint})"
        )
    return path


def _child_env() -> dict[str, str]:
    """The environment for java and maven: ours, less LD_PRELOAD (the
    AddressSanitizer test leg preloads libasan, which must not reach a
    JVM)."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


def ensure_jars() -> Path:
    """Return the directory with the broker's jars, fetching them if needed.

    Runs Maven only when the jars directory is missing, incomplete or was
    made from a different ``pom.xml``. The copy goes to a temporary sibling
    directory that is renamed into place, under a file lock, so an
    interrupted or concurrent run never leaves a half-filled directory that
    looks complete.
    """
    digest = _pom_digest()
    if _jars_complete(JARS_DIR, digest):
        return JARS_DIR
    # target/ is gitignored: the lock and the staging dir live there.
    scratch = HERE / "target"
    scratch.mkdir(exist_ok=True)
    with open(scratch / "jars.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _jars_complete(JARS_DIR, digest):  # another process did it
            return JARS_DIR
        mvn = _require_tool(
            "mvn", "Apache Maven resolves the broker's jars from Maven Central"
        )
        staging = Path(tempfile.mkdtemp(prefix="jars-", dir=scratch))
        try:
            cmd = [
                mvn,
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ]
            res = subprocess.run(
                cmd,
                env=_child_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
            )
            if res.returncode != 0:
                raise KafkaBrokerError(
                    f"maven could not fetch the Kafka broker jars "
                    f"(exit {res.returncode}): {' '.join(cmd)}\n"
                    f"{_tail_text(res.stdout, 40)}"
                )
            (staging / _JARS_STAMP).write_text(digest + "\n")
            if not _jars_complete(staging, digest):
                raise KafkaBrokerError(
                    f"maven finished but jars are missing in {staging}: "
                    f"expected {', '.join(_REQUIRED_JAR_PREFIXES)}"
                )
            if JARS_DIR.exists():
                shutil.rmtree(JARS_DIR)
            staging.rename(JARS_DIR)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return JARS_DIR


# --------------------------------------------------------------------------
# small helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def random_cluster_id() -> str:
    """A cluster id in the form of Kafka's ``Uuid.randomUuid().toString()``.

    That is 16 random bytes in unpadded URL-safe base64 (22 characters).
    Like Kafka, skip ids starting with '-' (they read as CLI options) and the
    two reserved ids (all zero bits, and the metadata topic's id 0...01).
    """
    while True:
        raw = uuid.uuid4().bytes
        text = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
        if text.startswith("-") or int.from_bytes(raw, "big") in (0, 1):
            continue
        return text


def _tail_text(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _tail_file(path: Path, lines: int = 60) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return _tail_text(data, lines) or "<empty>"


# --------------------------------------------------------------------------
# a minimal Kafka protocol client: ApiVersions v0 + Metadata v1..v8


API_METADATA = 3
API_VERSIONS = 18
_CLIENT_ID = b"aiokafka_c-test-harness"


@dataclass(frozen=True)
class BrokerInfo:
    """One broker as listed by a Metadata response."""

    node_id: int
    host: str
    port: int
    rack: str | None = None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def int16(self) -> int:
        return self._take(">h")

    def int32(self) -> int:
        return self._take(">i")

    def nullable_string(self) -> str | None:
        n = self.int16()
        if n < 0:
            return None
        if self.pos + n > len(self.data):
            raise struct.error("string runs past the end of the response")
        text = self.data[self.pos : self.pos + n].decode("utf-8")
        self.pos += n
        return text

    def string(self) -> str:
        text = self.nullable_string()
        if text is None:
            raise struct.error("unexpected null string")
        return text


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the peer")
        buf += chunk
    return bytes(buf)


def _request(
    sock: socket.socket,
    api_key: int,
    api_version: int,
    correlation_id: int,
    body: bytes,
) -> _Reader:
    # Request header v1: api_key, api_version, correlation_id, client_id.
    header = (
        struct.pack(
            ">hhih", api_key, api_version, correlation_id, len(_CLIENT_ID)
        )
        + _CLIENT_ID
    )
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    if not 4 <= size <= 64 * 1024 * 1024:
        raise ConnectionError(f"implausible Kafka response size {size}")
    reader = _Reader(_recv_exact(sock, size))
    got = reader.int32()  # response header v0: correlation_id
    if got != correlation_id:
        raise ConnectionError(
            f"correlation id mismatch: sent {correlation_id}, got {got}"
        )
    return reader


def _api_versions(sock: socket.socket) -> dict[int, tuple[int, int]]:
    r = _request(sock, API_VERSIONS, 0, 1, b"")
    error = r.int16()
    if error != 0:
        raise ConnectionError(f"ApiVersions failed with error code {error}")
    ranges: dict[int, tuple[int, int]] = {}
    for _ in range(r.int32()):
        key, lo, hi = r.int16(), r.int16(), r.int16()
        ranges[key] = (lo, hi)
    return ranges


def _metadata(sock: socket.socket, version: int) -> list[BrokerInfo]:
    # Request: topics = empty array (brokers only, no topic is created).
    body = struct.pack(">i", 0)
    if version >= 4:
        body += b"\x00"  # allow_auto_topic_creation = false
    if version >= 8:
        body += b"\x00\x00"  # include cluster/topic authorized operations
    r = _request(sock, API_METADATA, version, 2, body)
    if version >= 3:
        r.int32()  # throttle_time_ms
    brokers = []
    for _ in range(r.int32()):
        node_id = r.int32()
        host = r.string()
        port = r.int32()
        rack = r.nullable_string()
        brokers.append(BrokerInfo(node_id, host, port, rack))
    return brokers


def fetch_metadata(
    host: str, port: int, timeout: float = 5.0
) -> list[BrokerInfo]:
    """Ask the Kafka broker at host:port for the list of brokers it knows.

    Sends ApiVersions v0, then the highest non-flexible Metadata version
    (1..8) the broker supports. Raises ``OSError`` (``ConnectionError``,
    ``socket.timeout``) or ``struct.error`` when the peer does not answer
    like a Kafka broker.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        lo, hi = _api_versions(sock).get(API_METADATA, (-1, -1))
        version = min(hi, 8)
        if version < max(lo, 1):
            raise ConnectionError(
                f"broker supports Metadata v{lo}..v{hi}, need one of v1..v8"
            )
        return _metadata(sock, version)


# --------------------------------------------------------------------------
# the broker


# Brokers with a java process, strongly held so that even an abandoned
# KafkaBroker object is stopped at exit.
_LIVE: set[KafkaBroker] = set()


@atexit.register
def _stop_live_brokers() -> None:
    for broker in list(_LIVE):
        with contextlib.suppress(Exception):
            broker.stop()


def _parent_death_signal() -> Callable[[], None] | None:
    """preexec_fn that kills the child when the starting thread dies.

    Linux delivers PR_SET_PDEATHSIG when the *thread* that forked exits, so
    this is only used when starting from the main thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # parent already gone
            os._exit(1)

    return preexec


class KafkaBroker:
    """A single-node Kafka broker+controller in KRaft mode on 127.0.0.1.

    ``workdir`` holds server.properties, the data (``data/``) and the logs
    (``server.log``, ``java.out``); when not given a temporary directory is
    created and removed again by ``stop()``. ``port`` is the client
    (PLAINTEXT) port; it and the controller port are picked automatically
    when not given. ``config`` adds or overrides server properties.

    Lifecycle: ``start()`` -> (``pause()``/``resume()``,
    ``stop_broker_process()``/``kill()`` + ``restart()``)* -> ``stop()``.
    Only ``stop()`` removes data; the others keep the log dir so a restart
    finds its topics and committed offsets again.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        port: int | None = None,
        *,
        config: Mapping[str, str | int | bool] | None = None,
        node_id: int = NODE_ID,
        controller_port: int | None = None,
        quorum_voters: str | None = None,
        cluster_id: str | None = None,
        heap: str = HEAP,
        jvm_options: tuple[str, ...] = (),
        format_args: tuple[str, ...] = (),
    ) -> None:
        """``node_id``, ``controller_port``, ``quorum_voters`` (the
        ``controller.quorum.voters`` of every node) and ``cluster_id``
        (the same for every node) are for the nodes of a KafkaCluster; by
        default the broker is its own single-voter quorum.
        ``format_args`` go to the storage format tool after the cluster id
        and config (``("--add-scram", "SCRAM-SHA-512=[name=u,password=p]")``
        creates a SCRAM user before the first start)."""
        self.node_id = node_id
        self._format_args = tuple(format_args)
        self._cluster_id = cluster_id
        self._heap = heap
        self._jvm_options = tuple(jvm_options)
        self._own_workdir = workdir is None
        self._workdir = (
            Path(tempfile.mkdtemp(prefix="aiokafka_c-broker-"))
            if workdir is None
            else Path(workdir).resolve()
        )
        self.port = port if port is not None else free_port()
        if controller_port is None:
            controller_port = free_port()
            while controller_port == self.port:
                controller_port = free_port()
        self.controller_port = controller_port
        self._quorum_voters = (
            quorum_voters
            if quorum_voters is not None
            else f"{node_id}@127.0.0.1:{controller_port}"
        )
        self._extra_config = dict(config or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._removed = False
        self.start_seconds: float | None = None

    # -- properties --------------------------------------------------------

    @property
    def workdir(self) -> Path:
        return self._workdir

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self._workdir / "data"

    @property
    def properties_path(self) -> Path:
        return self._workdir / "server.properties"

    @property
    def log_path(self) -> Path:
        """The broker's log4j log (see log4j2.properties)."""
        return self._workdir / "server.log"

    @property
    def stdout_path(self) -> Path:
        """The JVM's own stdout/stderr (crashes before log4j is up)."""
        return self._workdir / "java.out"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- configuration -----------------------------------------------------

    def server_properties(self) -> dict[str, str]:
        props: dict[str, str | int | bool] = {
            "process.roles": "broker,controller",
            "node.id": self.node_id,
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},"
                f"CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "listener.security.protocol.map": (
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
            ),
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "controller.quorum.voters": self._quorum_voters,
            "log.dirs": str(self.data_dir),
            "num.partitions": 1,
            "default.replication.factor": 1,
            "min.insync.replicas": 1,
            "auto.create.topics.enable": True,
            "delete.topic.enable": True,
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "transaction.state.log.num.partitions": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            # After a crash (kill()) the restarted broker cannot register
            # until the controller expires its old session (default 9 s).
            "broker.session.timeout.ms": 4000,
            "broker.heartbeat.interval.ms": 500,
            # Small thread counts: this is one broker on a shared machine.
            "num.network.threads": 2,
            "num.io.threads": 2,
            "background.threads": 2,
            "num.recovery.threads.per.data.dir": 1,
            "num.replica.fetchers": 1,
            "log.cleaner.threads": 1,
            "group.coordinator.threads": 1,
            "share.coordinator.threads": 1,
        }
        props.update(self._extra_config)
        return {k: _prop_value(v) for k, v in props.items()}

    def _write_properties(self) -> None:
        lines = [
            "# written by tests/kafkabroker (aiokafka_c test harness)",
            *(f"{k}={v}" for k, v in self.server_properties().items()),
        ]
        self.properties_path.write_text("\n".join(lines) + "\n")

    def _java_command(self, jars: Path, main: str, *args: str) -> list[str]:
        java = _require_tool("java", "Java 17+ runs the Kafka broker")
        return [
            java,
            f"-Xmx{self._heap}",
            *JVM_OPTIONS,
            *self._jvm_options,
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self._workdir}",
            "-cp",
            f"{jars}/*",
            main,
            *args,
        ]

    def _format_storage(self, jars: Path) -> None:
        if (self.data_dir / "meta.properties").exists():
            return  # formatted before: keep the data (restart)
        if self.data_dir.exists():  # half-formatted leftovers
            shutil.rmtree(self.data_dir)
        cmd = self._java_command(
            jars,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            self._cluster_id or random_cluster_id(),
            "-c",
            str(self.properties_path),
            *self._format_args,
        )
        res = subprocess.run(
            cmd,
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            timeout=120,
        )
        if res.returncode != 0:
            raise KafkaBrokerError(
                f"formatting the Kafka storage failed (exit "
                f"{res.returncode}): {' '.join(cmd)}\n"
                f"{_tail_text(res.stdout, 40)}"
            )

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float = 60) -> str:
        """Start the broker and wait until it serves metadata; return the
        bootstrap address "127.0.0.1:PORT"."""
        if self._removed:
            raise KafkaBrokerError("this KafkaBroker was stopped for good")
        if self.running:
            return self.bootstrap
        t0 = time.monotonic()
        self.launch()
        try:
            self._wait_ready(t0 + timeout, timeout)
        except BaseException:
            self._terminate(grace=5.0)
            raise
        self.start_seconds = time.monotonic() - t0
        return self.bootstrap

    def launch(self) -> None:
        """Format the storage if needed and start the java process without
        waiting for it to be ready (``wait_ready()`` does). The nodes of a
        cluster are launched together: none is ready before a quorum of
        controllers is up."""
        if self._removed:
            raise KafkaBrokerError("this KafkaBroker was stopped for good")
        if self.running:
            return
        jars = ensure_jars()
        self._workdir.mkdir(parents=True, exist_ok=True)
        self._write_properties()
        self._format_storage(jars)
        cmd = self._java_command(
            jars, "kafka.Kafka", str(self.properties_path)
        )
        with open(self.stdout_path, "ab") as out:
            self._proc = subprocess.Popen(
                cmd,
                env=_child_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self._workdir,
                # Ctrl-C in a terminal must not kill the broker before the
                # harness stops it in order.
                start_new_session=True,
                # Only prctl() + getppid() run between fork and exec.
                preexec_fn=_parent_death_signal(),  # noqa: PLW1509
            )
        self._paused = False
        _LIVE.add(self)

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        proc = self._proc
        assert proc is not None
        last_error: BaseException | None = None
        while True:
            code = proc.poll()
            if code is not None:
                raise KafkaBrokerError(
                    f"the Kafka broker exited with code {code} during "
                    f"startup\n{self._diagnostics()}"
                )
            try:
                brokers = fetch_metadata("127.0.0.1", self.port, timeout=2.0)
            except (OSError, struct.error, UnicodeDecodeError) as exc:
                last_error = exc
            else:
                if any(
                    b.node_id == self.node_id and b.port == self.port
                    for b in brokers
                ):
                    return
                last_error = KafkaBrokerError(
                    f"metadata does not list this broker yet: {brokers}"
                )
            if time.monotonic() >= deadline:
                raise KafkaBrokerError(
                    f"the Kafka broker was not ready after {timeout:.0f} s "
                    f"(last check: {last_error!r})\n{self._diagnostics()}"
                )
            time.sleep(0.1)

    def _diagnostics(self) -> str:
        return (
            f"--- tail of {self.log_path} ---\n"
            f"{_tail_file(self.log_path)}\n"
            f"--- tail of {self.stdout_path} ---\n"
            f"{_tail_file(self.stdout_path, 20)}"
        )

    def _terminate(self, grace: float) -> int | None:
        """SIGTERM (a controlled shutdown), SIGKILL after ``grace`` s."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            if self._paused:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._paused = False
        _LIVE.discard(self)
        return proc.returncode

    def stop_broker_process(self, grace: float = 20.0) -> int | None:
        """Stop the java process (SIGTERM, then SIGKILL after ``grace`` s)
        but keep the data; ``restart()`` brings it back. Returns the exit
        code, or None if it was never started."""
        return self._terminate(grace)

    def kill(self) -> int | None:
        """SIGKILL the broker (a crash), keeping the data."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._paused = False
        _LIVE.discard(self)
        return proc.returncode

    def restart(self, timeout: float = 60) -> str:
        """Stop the broker process if running and start it again with the
        same ports and data."""
        self.stop_broker_process()
        return self.start(timeout)

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing
        answers. ``resume()`` continues it."""
        if not self.running or self._proc is None:
            raise KafkaBrokerError("the broker is not running")
        os.kill(self._proc.pid, signal.SIGSTOP)
        self._paused = True
        # kill() returns before every JVM thread has stopped: until they
        # all have, a network thread may still answer.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _all_threads_stopped(
            self._proc.pid
        ):
            time.sleep(0.01)

    def resume(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGCONT)
        self._paused = False

    def stop(self, grace: float = 20.0) -> None:
        """Stop the broker for good and remove the workdir if this object
        created it. Idempotent."""
        try:
            self._terminate(grace)
        finally:
            if self._own_workdir and not self._removed:
                shutil.rmtree(self._workdir, ignore_errors=True)
            self._removed = self._own_workdir

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait until the running broker serves metadata again (after
        ``resume()``, for example)."""
        self._wait_ready(time.monotonic() + timeout, timeout)

    # -- context manager ---------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (
            f"<KafkaBroker {self.bootstrap} pid={self.pid} {state} "
            f"workdir={self._workdir}>"
        )


def _prop_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------
# a cluster of brokers


class KafkaCluster:
    """``nodes`` combined broker+controller KRaft nodes on 127.0.0.1.

    Node ``i`` (1..nodes) has its own client and controller ports, picked
    once so that a restarted node comes back at the same address, and its
    own directory ``workdir/node-<i>`` (properties, data, logs); its PID is
    written to ``workdir/node-<i>.pid`` each time it starts. The quorum is
    static (``controller.quorum.voters`` lists every node; each storage is
    formatted with the same cluster id). Replication defaults make the
    cluster a durable one: replication factor 3 (``nodes``, at most 3) and
    ``min.insync.replicas`` 2, for test topics and the internal ones.

    Lifecycle: ``start()`` -> (``kill(i)``/``stop_node(i)`` +
    ``restart(i)``)* -> ``stop()``; as ``KafkaBroker``, only ``stop()``
    removes data, and only from a workdir this object created.
    """

    def __init__(
        self,
        nodes: int = 3,
        workdir: Path | None = None,
        *,
        config: Mapping[str, str | int | bool] | None = None,
        heap: str = CLUSTER_HEAP,
    ) -> None:
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self._own_workdir = workdir is None
        self._workdir = (
            Path(tempfile.mkdtemp(prefix="aiokafka_c-cluster-"))
            if workdir is None
            else Path(workdir).resolve()
        )
        ports: set[int] = set()
        while len(ports) < 2 * nodes:
            ports.add(free_port())
        plist = sorted(ports)
        client_ports = plist[:nodes]
        controller_ports = plist[nodes:]
        ids = list(range(1, nodes + 1))
        voters = ",".join(
            f"{i}@127.0.0.1:{p}" for i, p in zip(ids, controller_ports)
        )
        rf = min(nodes, 3)
        isr = min(rf, 2)
        props: dict[str, str | int | bool] = {
            "default.replication.factor": rf,
            "min.insync.replicas": isr,
            "num.partitions": 1,
            "offsets.topic.replication.factor": rf,
            "offsets.topic.num.partitions": 3,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": isr,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": isr,
            # Never elect an out-of-sync replica: acks=all must mean it.
            "unclean.leader.election.enable": False,
            # A follower that stops fetching leaves the ISR in 10 s (the
            # default 30 s is long for tests that restart nodes).
            "replica.lag.time.max.ms": 10000,
            # Give leadership back to the preferred replica soon after a
            # restart, so leaders spread again between the kills.
            "leader.imbalance.check.interval.seconds": 5,
        }
        props.update(config or {})
        self._cluster_id = random_cluster_id()
        self.nodes: dict[int, KafkaBroker] = {
            i: KafkaBroker(
                self._workdir / f"node-{i}",
                port,
                config=props,
                node_id=i,
                controller_port=cport,
                quorum_voters=voters,
                cluster_id=self._cluster_id,
                heap=heap,
                jvm_options=CLUSTER_JVM_OPTIONS,
            )
            for i, port, cport in zip(ids, client_ports, controller_ports)
        }
        self._removed = False

    @property
    def workdir(self) -> Path:
        return self._workdir

    @property
    def cluster_id(self) -> str:
        return self._cluster_id

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes.values())

    def pid_path(self, node_id: int) -> Path:
        return self._workdir / f"node-{node_id}.pid"

    def pids(self) -> dict[int, int | None]:
        return {i: n.pid for i, n in self.nodes.items()}

    def _write_pid(self, node: KafkaBroker) -> None:
        tmp = self.pid_path(node.node_id).with_suffix(".pid.tmp")
        tmp.write_text(f"{node.pid}\n")
        tmp.rename(self.pid_path(node.node_id))

    def _launch(self, node: KafkaBroker) -> None:
        node.launch()
        self._write_pid(node)

    def start(self, timeout: float = 180) -> str:
        """Start every node that is not running and wait until each one
        serves metadata listing all nodes; return the bootstrap servers."""
        if self._removed:
            raise KafkaBrokerError("this KafkaCluster was stopped for good")
        t0 = time.monotonic()
        deadline = t0 + timeout
        self._workdir.mkdir(parents=True, exist_ok=True)
        try:
            for node in self.nodes.values():
                if not node.running:
                    self._launch(node)
            for node in self.nodes.values():
                node.wait_ready(max(1.0, deadline - time.monotonic()))
            self.wait_all_registered(max(1.0, deadline - time.monotonic()))
        except BaseException:
            self.stop_processes(grace=5.0)
            raise
        self.start_seconds = time.monotonic() - t0
        return self.bootstrap

    def wait_all_registered(self, timeout: float = 60) -> None:
        """Wait until every running node lists every node in its
        metadata (a restarted node is back in the cluster)."""
        want = set(self.nodes)
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            ok = True
            for node in self.nodes.values():
                if not node.running:
                    continue
                try:
                    got = {
                        b.node_id
                        for b in fetch_metadata(
                            "127.0.0.1", node.port, timeout=2.0
                        )
                    }
                except (OSError, struct.error, UnicodeDecodeError) as exc:
                    ok, last = False, exc
                    break
                if got != want:
                    ok, last = False, (node.node_id, sorted(got))
                    break
            if ok:
                return
            if time.monotonic() >= deadline:
                raise KafkaBrokerError(
                    f"the cluster did not list nodes {sorted(want)} after "
                    f"{timeout:.0f} s (last: {last!r})"
                )
            time.sleep(0.2)

    def kill(self, node_id: int) -> int | None:
        """SIGKILL node ``node_id`` (a crash); its data stays."""
        return self.nodes[node_id].kill()

    def stop_node(self, node_id: int, grace: float = 30.0) -> int | None:
        """SIGTERM node ``node_id`` (a controlled shutdown: it hands its
        leaderships over first); SIGKILL after ``grace`` s."""
        return self.nodes[node_id].stop_broker_process(grace)

    def restart(self, node_id: int, timeout: float = 120) -> None:
        """Start node ``node_id`` again (stopping it first if running),
        same ports and data, and wait until it serves metadata."""
        node = self.nodes[node_id]
        if node.running:
            node.stop_broker_process()
        self._launch(node)
        try:
            node.wait_ready(timeout)
        except BaseException:
            node.kill()
            raise

    def stop_processes(self, grace: float = 20.0) -> None:
        """Stop every node (all get SIGTERM at once, so no one waits for
        the controllers the others already took down)."""
        for node in self.nodes.values():
            proc = node._proc
            if proc is not None and proc.poll() is None:
                node.resume()
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        for node in self.nodes.values():
            node.stop_broker_process(grace)

    def stop(self, grace: float = 20.0) -> None:
        """Stop every node for good; remove the workdir if ours.
        Idempotent."""
        try:
            self.stop_processes(grace)
        finally:
            if self._own_workdir and not self._removed:
                shutil.rmtree(self._workdir, ignore_errors=True)
            self._removed = self._own_workdir

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<KafkaCluster {self.bootstrap} workdir={self._workdir}>"
