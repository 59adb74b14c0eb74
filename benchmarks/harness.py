"""``python -m benchmarks``: every client, every scenario, one run, one table.

Sets up what it needs (the project's real single-node Kafka broker unless
``--bootstrap``/``KAFKA_BOOTSTRAP_SERVERS`` names one; the C ceiling built
with gcc + pkg-config), then runs each (client, scenario group, setting,
repeat) in its own process against a fresh topic, in alternating order, and
writes ``<out>/<date>.json``, ``<out>/<date>.md`` and PNG charts (plus
``latest.*`` copies).  Numbers are only comparable within one run: read the
ratios, not the absolute values.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import plan as _plan
from benchmarks.stats import summarize

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = HERE / "build"
NATIVE_SRC = HERE / "native" / "bench_native.c"
NATIVE_BIN = BUILD / "bench_native"
NATIVE_CONSUMER_SRC = HERE / "native" / "bench_native_consumer.c"
NATIVE_CONSUMER_BIN = BUILD / "bench_native_consumer"
# A release build of aiokafka_c from this tree (see build_extension):
# workers run with this directory as cwd and first on sys.path, so a debug
# or sanitizer build lying in the source tree is never what gets measured.
EXT_LIB = BUILD / "lib"


def log(msg: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[bench {stamp}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# set-up: broker, native build, client availability, topics
# --------------------------------------------------------------------------


@contextlib.contextmanager
def broker(bootstrap: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
    if bootstrap:
        yield bootstrap, {"source": "given", "bootstrap": bootstrap}
        return
    sys.path.insert(0, str(ROOT))
    try:
        from tests.kafkabroker import KafkaBroker, ensure_jars
    except ImportError as exc:  # pragma: no cover - depends on checkout
        raise SystemExit(
            "benchmarks: no broker given (--bootstrap or "
            "KAFKA_BOOTSTRAP_SERVERS) and tests.kafkabroker is not "
            f"importable: {exc}"
        )
    log("fetching broker jars (first run downloads from Maven Central)")
    jars = ensure_jars()
    kafka_jar = sorted(p.name for p in Path(jars).glob("kafka_2.13-*.jar"))
    # Deleted topics' files go away quickly: every run uses a fresh topic.
    b = KafkaBroker(config={"file.delete.delay.ms": 1000})
    log("starting the Kafka broker")
    addr = b.start()
    info = {
        "source": "tests.kafkabroker (single node, KRaft, 127.0.0.1)",
        "bootstrap": addr,
        "kafka_jar": kafka_jar[0] if kafka_jar else None,
        "pid": b.pid,
    }
    log(f"broker ready at {addr} (pid {b.pid})")
    try:
        yield addr, info
    finally:
        log("stopping the broker")
        b.stop()


def build_native(src: Path = NATIVE_SRC,
                 binary: Path = NATIVE_BIN) -> tuple[bool, str]:
    """Compile a C ceiling into benchmarks/build/ (rebuilt when stale)."""
    try:
        BUILD.mkdir(exist_ok=True)
        if (
            binary.exists()
            and binary.stat().st_mtime > src.stat().st_mtime
        ):
            return True, "up to date"
        flags = subprocess.run(
            ["pkg-config", "--cflags", "--libs", "rdkafka"],
            check=True, capture_output=True, text=True,
        ).stdout.split()
        cmd = ["gcc", "-O2", "-Wall", "-pthread", "-o", str(binary),
               str(src), *flags]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        return True, " ".join(cmd)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        return False, f"build failed: {detail.strip()[:500]}"


def build_extension(lib: Path = EXT_LIB,
                    defines: tuple[str, ...] = ()) -> tuple[bool, str]:
    """Build aiokafka_c._core from the current tree, release flags (plus
    ``-D`` defines, e.g. the latency probe's), into ``lib`` (default
    benchmarks/build/lib), next to a copy of the package's Python files."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("AIOKAFKA_C_DEBUG", "AIOKAFKA_C_ASAN", "CFLAGS",
                        "LDFLAGS")}
    if defines:
        env["CFLAGS"] = " ".join(f"-D{d}" for d in defines)
    temp = BUILD / ("tmp" if lib == EXT_LIB else f"tmp-{lib.name}")
    cmd = [sys.executable, "setup.py", "-q", "build_ext",
           "--build-lib", str(lib), "--build-temp", str(temp)]
    try:
        r = subprocess.run(cmd, check=False, cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"build failed: {exc}"
    if r.returncode != 0:
        return False, ("build failed: " + (r.stderr or r.stdout).strip()
                       .splitlines()[-1][:400])
    shutil.copytree(
        ROOT / "aiokafka_c", lib / "aiokafka_c", dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("*.so", "__pycache__"),
    )
    return True, " ".join(cmd[1:])


def tree_revision() -> str | None:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                             check=True, cwd=ROOT, capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src",
                                "aiokafka_c"], check=True, cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return rev + (" (src/ or aiokafka_c/ modified)" if dirty else "")


def worker_env_cwd(use_build: bool) -> tuple[dict[str, str], Path]:
    """Environment and cwd for a worker or app process: the release build
    first on the path (``python -m`` also puts the cwd first)."""
    env = dict(os.environ)
    paths = ([str(EXT_LIB)] if use_build else []) + [str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env, (EXT_LIB if use_build else ROOT)


# What each client needs importable for its producer and its consumer.
PRODUCER_PROBES = {
    "aiokafka_c": "import aiokafka_c; aiokafka_c.AIOProducer",
    "blog": "import confluent_kafka",
    "confluent_aio": "from confluent_kafka.aio import AIOProducer",
    "confluent_sync": "import confluent_kafka",
    "aiokafka": "import aiokafka",
    "asyncio_floor": "import asyncio",
}
CONSUMER_PROBES = {
    "aiokafka_c": "import aiokafka_c; aiokafka_c.AIOConsumer",
    "confluent_aio": "from confluent_kafka.aio import AIOConsumer",
    "confluent_sync": "from confluent_kafka import Consumer",
    "aiokafka": "from aiokafka import AIOKafkaConsumer",
}


def _build_aiokafka_c(info: dict[str, Any]) -> bool:
    """Build the extension under test into EXT_LIB and note how in info;
    False (and info says why) when the build failed."""
    ok, detail = build_extension()
    info["build"] = detail
    info["revision"] = tree_revision()
    if not ok:
        info.update(available=False, reason=detail)
    return ok


def _check_producer(name: str, info: dict[str, Any],
                    use_build: bool) -> None:
    if name == "native":
        ok, detail = build_native()
        info.update(available=ok, reason=None if ok else detail)
    else:
        ok, reason = _probe(PRODUCER_PROBES[name], use_build)
        info.update(available=ok, reason=reason)


def _check_consumer(name: str, info: dict[str, Any],
                    use_build: bool) -> None:
    info["consumer_note"] = _plan.CONSUMER_NOTES[name]
    if not info["available"]:
        ok, reason = False, info["reason"]
    elif name == "native":
        ok, reason = build_native(NATIVE_CONSUMER_SRC, NATIVE_CONSUMER_BIN)
        reason = None if ok else reason
    else:
        ok, reason = _probe(CONSUMER_PROBES[name], use_build)
    info.update(consumer_available=ok, consumer_reason=reason)
    if not ok:
        log(f"consumer {name} unavailable: {reason}")


def check_clients(wanted: list[str], use_build: bool = False,
                  want_consumers: bool = False) -> dict[str, dict[str, Any]]:
    """Which of the wanted clients (and their consumers) can run here:
    per client its label, note, ``available`` and ``reason``, plus the
    ``consumer_*`` fields when consumers are wanted."""
    out: dict[str, dict[str, Any]] = {}
    for name in wanted:
        info: dict[str, Any] = {
            "label": _plan.CLIENT_LABELS[name],
            "note": _plan.CLIENT_NOTES[name],
        }
        out[name] = info
        if name == "aiokafka_c" and use_build and not _build_aiokafka_c(info):
            log(f"client {name} unavailable: {info['reason']}")
            continue
        _check_producer(name, info, use_build)
        if want_consumers and name in CONSUMER_PROBES | {"native": ""}:
            _check_consumer(name, info, use_build)
        if not info["available"]:
            log(f"client {name} unavailable: {info['reason']}")
    return out


def _probe(code: str, use_build: bool) -> tuple[bool, str | None]:
    env, cwd = worker_env_cwd(use_build)
    r = subprocess.run([sys.executable, "-c", code], check=False,
                       capture_output=True, text=True, cwd=cwd, env=env)
    if r.returncode == 0:
        return True, None
    lines = r.stderr.strip().splitlines()
    return False, lines[-1] if lines else f"exit {r.returncode}"


class Topics:
    """Fresh single-partition topic per process; deleted right after."""

    def __init__(self, bootstrap: str) -> None:
        self._admin = None
        try:
            from confluent_kafka.admin import AdminClient

            self._admin = AdminClient({"bootstrap.servers": bootstrap})
        except ImportError:  # broker auto-creates topics then
            pass

    def close(self) -> None:
        # Drop the admin client before the broker goes away, so it does not
        # log connection failures at shutdown.
        self._admin = None

    def create(self, name: str, partitions: int = 1) -> None:
        if self._admin is None:
            return
        from confluent_kafka.admin import NewTopic

        fs = self._admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1)],
            operation_timeout=30,
        )
        for f in fs.values():
            f.result(timeout=60)

    def delete(self, name: str) -> None:
        if self._admin is None:
            return
        try:
            for f in self._admin.delete_topics([name]).values():
                f.result(timeout=30)
        except Exception as exc:  # best effort: disk space only
            log(f"could not delete topic {name}: {exc}")


def topic_name(*parts: str) -> str:
    safe = ".".join(re.sub(r"[^A-Za-z0-9-]", "-", p) for p in parts)
    return f"bench.{safe}.{uuid.uuid4().hex[:6]}"


# --------------------------------------------------------------------------
# one process
# --------------------------------------------------------------------------


def _timeout_for(plan: _plan.Plan, groups: list[str]) -> float:
    per = {
        "ff": plan.seconds + plan.warmup_seconds,
        "gather": len(plan.gather_ns) * (plan.seconds + plan.warmup_seconds),
        "tasks": len(plan.task_ks) * (plan.seconds + plan.warmup_seconds),
        "window": len(plan.window_ns) * (plan.seconds + plan.warmup_seconds),
        "latency": plan.latency_seconds,
        "lag": plan.lag_seconds + plan.warmup_seconds,
    }
    return 90.0 + 4 * sum(per[g] for g in groups)


def _run_and_collect(cmd: list[str], env: dict[str, str], cwd: Path,
                     timeout: float, record: dict[str, Any]) -> None:
    """Run one benchmark process; merge its RESULT line into record."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, check=False, capture_output=True, text=True,
            timeout=timeout, cwd=cwd,
            env=env,
        )
        stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = (exc.stdout or b"").decode() if isinstance(
            exc.stdout, bytes) else (exc.stdout or "")
        stderr = (exc.stderr or b"").decode() if isinstance(
            exc.stderr, bytes) else (exc.stderr or "")
        rc = None
        record["error"] = f"timed out after {timeout:.0f} s"
    record["wall_seconds"] = round(time.perf_counter() - t0, 3)
    record["returncode"] = rc
    result = None
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            try:
                result = json.loads(line[len("RESULT "):])
            except json.JSONDecodeError as exc:
                record["error"] = f"bad RESULT line: {exc}"
    if result is None:
        record["ok"] = False
        record.setdefault("error", f"no result (exit {rc})")
        record["stderr_tail"] = stderr[-3000:]
    else:
        record.update(result)
        record["ok"] = bool(result.get("ok")) and rc == 0
        if record["ok"] and result.get("delivery_errors"):
            # the sync floor and the C ceiling count failed deliveries
            # instead of raising: a run that lost messages is no result
            record["ok"] = False
            record["error"] = (f"{result['delivery_errors']} messages "
                               "failed delivery")
        if not record["ok"]:
            record["stderr_tail"] = stderr[-3000:]


def _native_cmd(groups: list[str], setting: _plan.Setting, plan: _plan.Plan,
                bootstrap: str, topic: str) -> list[str]:
    """The C ceiling's command line for the same spec as a worker's."""
    return [
        str(NATIVE_BIN),
        "--bootstrap", bootstrap, "--topic", topic,
        "--value-size", str(setting.value_size),
        "--acks", setting.acks, "--linger", str(setting.linger_ms),
        "--groups", ",".join(groups),
        "--count", str(plan.count), "--seconds", str(plan.seconds),
        "--warmup", str(plan.warmup_seconds),
        "--latency-count", str(plan.latency_count),
        "--latency-seconds", str(plan.latency_seconds),
        "--gather", ",".join(map(str, plan.gather_ns)),
        "--tasks", ",".join(map(str, plan.task_ks)),
        "--window", ",".join(map(str, plan.window_ns)),
    ]


def run_process(
    client: str,
    groups: list[str],
    setting: _plan.Setting,
    plan: _plan.Plan,
    bootstrap: str,
    topics: Topics,
    loop: str,
    repeat: int,
    use_build: bool = False,
) -> dict[str, Any]:
    """One client through the scenario groups in its own process, against
    a fresh topic; returns the run's record (``ok``, measurements...)."""
    topic = topic_name(client, "+".join(groups), setting.id, str(repeat))
    record: dict[str, Any] = {
        "client": client,
        "groups": groups,
        "setting": setting.id,
        "repeat": repeat,
        "topic": topic,
    }
    try:
        topics.create(topic)
    except Exception as exc:
        record.update(ok=False, error=f"create topic: {exc}")
        return record
    spec = {
        "client": client,
        "groups": groups,
        "topic": topic,
        "bootstrap": bootstrap,
        "value_size": setting.value_size,
        "acks": setting.acks,
        "linger_ms": setting.linger_ms,
        "loop": loop,
        **plan.spec_fields(),
    }
    record["cmd"] = "python -m benchmarks.worker '" + json.dumps(spec) + "'"
    if client == "native":
        cmd = _native_cmd(groups, setting, plan, bootstrap, topic)
        record["cmd"] = " ".join(cmd)
    else:
        cmd = [sys.executable, "-m", "benchmarks.worker", json.dumps(spec)]
    env, cwd = worker_env_cwd(use_build)
    _run_and_collect(cmd, env, cwd, _timeout_for(plan, groups), record)
    topics.delete(topic)
    return record


# --------------------------------------------------------------------------
# consumer scenarios: one pre-filled topic, one process per consumer
# --------------------------------------------------------------------------


def consumer_setting(plan: _plan.Plan) -> dict[str, Any]:
    size = plan.consumer_value_size
    return {
        "id": f"consume-{size}B-{plan.consumer_partitions}p",
        "value_size": size,
        "partitions": plan.consumer_partitions,
        "messages": plan.consumer_messages,
        "count": plan.consumer_count,
        "seconds": plan.consumer_seconds,
    }


def _watermarks(bootstrap: str, topic: str,
                partitions: int) -> list[int] | None:
    """Messages per partition (high - low watermark), None if unknown."""
    try:
        from confluent_kafka import Consumer, TopicPartition
    except ImportError:
        return None
    c = Consumer({"bootstrap.servers": bootstrap,
                  "group.id": f"bench-watermarks-{uuid.uuid4().hex[:6]}"})
    try:
        out = []
        for p in range(partitions):
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p),
                                             timeout=30)
            out.append(hi - lo)
        return out
    finally:
        c.close()


def _prefill_native(bootstrap: str, topic: str, n: int, size: int,
                    info: dict[str, Any]) -> bool:
    """n messages into topic with bench_native's ff (chunks of 1000 plus 10
    warm-up messages); False (info says why) if it failed."""
    cmd = [str(NATIVE_BIN), "--bootstrap", bootstrap, "--topic", topic,
           "--value-size", str(size), "--acks", "1", "--linger", "5",
           "--groups", "ff", "--count", str(n), "--seconds", "1e9",
           "--warmup", "0"]
    info["method"] = " ".join(cmd)
    info["producer"] = "the C producer (bench_native)"
    r = subprocess.run(cmd, check=False, capture_output=True, text=True,
                       timeout=120 + n / 50_000)
    if r.returncode != 0:
        info["error"] = (r.stderr or r.stdout)[-500:]
        return False
    return True


def _prefill_confluent(bootstrap: str, topic: str, n: int, size: int,
                       info: dict[str, Any]) -> bool:
    """n messages into topic with confluent_kafka.Producer in this
    process; False (info says why) if the flush timed out."""
    from confluent_kafka import Producer

    info["method"] = "confluent_kafka.Producer, acks=1, linger.ms=5"
    info["producer"] = "confluent_kafka.Producer"
    p = Producer({"bootstrap.servers": bootstrap, "acks": "1",
                  "linger.ms": 5,
                  "queue.buffering.max.messages": 1_000_000})
    value = b"x" * size
    for i in range(n):
        while True:
            try:
                p.produce(topic, value)
                break
            except BufferError:
                p.poll(0.01)
        if not i % 1000:
            p.poll(0)
    if p.flush(120):
        info["error"] = "prefill flush timed out"
        return False
    return True


def prefill(plan: _plan.Plan, bootstrap: str, topics: Topics,
            native_ok: bool) -> dict[str, Any]:
    """Create the consumers' topic and fill it: the C producer when built
    (seconds for millions), else confluent_kafka.Producer in this process.
    Keyless messages: librdkafka spreads them over the partitions."""
    topic = topic_name("consume", f"{plan.consumer_partitions}p")
    info: dict[str, Any] = {"topic": topic, "ok": False}
    topics.create(topic, plan.consumer_partitions)
    n, size = plan.consumer_messages, plan.consumer_value_size
    t0 = time.perf_counter()
    fill = _prefill_native if native_ok else _prefill_confluent
    if not fill(bootstrap, topic, n, size, info):
        return info
    info["seconds"] = round(time.perf_counter() - t0, 3)
    per = _watermarks(bootstrap, topic, plan.consumer_partitions)
    info["per_partition"] = per
    info["messages"] = sum(per) if per is not None else n
    info["ok"] = info["messages"] >= n
    if not info["ok"]:
        info["error"] = f"only {info['messages']} of {n} messages in {topic}"
    return info


def run_consumer_process(
    client: str, variant: str, plan: _plan.Plan, bootstrap: str, topic: str,
    available_msgs: int, loop: str, repeat: int, use_build: bool,
) -> dict[str, Any]:
    setting = consumer_setting(plan)
    group = f"bench-{client}-{variant}-{repeat}-{uuid.uuid4().hex[:6]}"
    count = min(plan.consumer_count, available_msgs)
    record: dict[str, Any] = {
        "client": client,
        "variant": variant,
        "groups": ["consume"],
        "setting": setting["id"],
        "repeat": repeat,
        "topic": topic,
        "group_id": group,
    }
    spec = {
        "client": client,
        "variant": variant,
        "topic": topic,
        "bootstrap": bootstrap,
        "group_id": group,
        "loop": loop,
        "extra_conf": _plan.consumer_extra_conf(variant),
        **plan.consumer_spec_fields(),
        "count": count,
    }
    if client == "native":
        cmd = [str(NATIVE_CONSUMER_BIN), "--bootstrap", bootstrap,
               "--topic", topic, "--group", group,
               "--variant", _plan.consumer_shape(variant),
               "--count", str(count), "--batch", "1000",
               "--seconds", str(plan.consumer_seconds),
               "--join-timeout", str(plan.consumer_join_timeout)]
        record["cmd"] = " ".join(cmd)
    else:
        cmd = [sys.executable, "-m", "benchmarks.consumer", json.dumps(spec)]
        record["cmd"] = ("python -m benchmarks.consumer '" + json.dumps(spec)
                         + "'")
    env, cwd = worker_env_cwd(use_build)
    timeout = 60.0 + 3 * plan.consumer_join_timeout + 4 * plan.consumer_seconds
    _run_and_collect(cmd, env, cwd, timeout, record)
    return record


CONSUMER_RUN_NOTES = [
    "confluent-kafka's bundled librdkafka (2.1 and later) stops "
    "fetching a partition for fetch.queue.backoff.ms (default "
    "1000 ms) once its prefetch queue holds queued.min.messages "
    "(default 100000): on a backlog like this one that, not the "
    "client, bounds its default rows. The `fetch.queue.backoff.ms"
    "=10` rows show it without that pause. The system librdkafka "
    "2.0.2 (aiokafka_c, the C ceiling) predates the setting.",
    "C `rd_kafka_consumer_poll()` on librdkafka 2.0.2 with its "
    "defaults: once a partition's prefetch queue holds "
    "queued.min.messages (100000) the fetcher idles for a while "
    "(the process is mostly idle, not CPU-bound) and this "
    "backlog is read at a fraction of the batch API's rate; "
    "`rd_kafka_consume_batch_queue()` drains the same queues "
    "without that pause. The C ceiling column divides by the "
    "batch row.",
    "aiokafka's getmany() runs with its default max_records "
    "(everything fetched so far), so its batches can be larger than "
    "the other clients'.",
]


def _prefill_logged(plan: _plan.Plan, bootstrap: str, topics: Topics,
                    clients: dict[str, dict[str, Any]],
                    runs: list[dict[str, Any]]) -> dict[str, Any]:
    """prefill(), logged; a failure is also recorded as a failed run and
    its topic deleted."""
    log(f"consumers: pre-filling {plan.consumer_messages} x "
        f"{plan.consumer_value_size} B into {plan.consumer_partitions} "
        "partitions")
    native_ok = bool(clients.get("native", {}).get("available")) or \
        build_native()[0]
    try:
        fill = prefill(plan, bootstrap, topics, native_ok)
    except Exception as exc:
        fill = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    if not fill.get("ok"):
        log(f"  prefill FAILED: {fill.get('error')}")
        runs.append({"client": "prefill", "groups": ["consume"],
                     "setting": consumer_setting(plan)["id"], "repeat": 0,
                     "ok": False, "error": f"prefill: {fill.get('error')}"})
        if fill.get("topic"):
            topics.delete(fill["topic"])
        return fill
    log(f"  {fill['messages']} messages in {fill['seconds']} s "
        f"({fill['topic']})")
    return fill


def run_consumers(plan: _plan.Plan, bootstrap: str, topics: Topics,
                  clients: dict[str, dict[str, Any]], wanted: list[str],
                  loop: str, use_build: bool,
                  runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every available consumer, repeated in alternating order, against
    one pre-filled topic; the runs go to ``runs``, the returned dict
    describes the setting, the consumers and the prefill."""
    setting = consumer_setting(plan)
    units = [(c, v) for c, v in _plan.CONSUMERS
             if c in wanted and clients[c].get("consumer_available")]
    out: dict[str, Any] = {
        "setting": setting,
        "consumers": [{"client": c, "variant": v,
                       "label": _plan.CONSUMER_LABELS[(c, v)],
                       "extra_conf": _plan.consumer_extra_conf(v)}
                      for c, v in units],
        "notes": list(CONSUMER_RUN_NOTES),
    }
    if not units:
        out["skipped"] = "no consumer client available"
        return out
    fill = out["prefill"] = _prefill_logged(plan, bootstrap, topics,
                                            clients, runs)
    if not fill.get("ok"):
        return out
    keys = [_plan.consumer_key(c, v) for c, v in units]
    for rep in range(plan.repeats):
        for key in _plan.alternate(keys, rep):
            client, variant = key.split(":", 1)
            log(f"rep {rep + 1}/{plan.repeats} {setting['id']} consume: "
                f"{_plan.CONSUMER_LABELS[(client, variant)]}")
            rec = run_consumer_process(client, variant, plan, bootstrap,
                                       fill["topic"], fill["messages"], loop,
                                       rep, use_build)
            if not rec["ok"]:
                log(f"  FAILED: {rec.get('error')}\n"
                    f"{rec.get('stderr_tail', '')[-1500:]}")
            runs.append(rec)
    topics.delete(fill["topic"])
    return out


# --------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------


SUMMARY_FIELDS = (
    "rate", "enqueue_rate", "msgs", "cpu_proc_us", "cpu_loop_us", "p50_ms",
    "p99_ms",
    "p999_ms", "mean_ms", "max_ms", "lag_p50_ms", "lag_p99_ms", "lag_max_ms",
    "ticks",
)


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """summary[setting][measurement][client][field] = median/min/max/n."""
    acc: dict[str, dict[str, dict[str, dict[str, list[float]]]]] = {}
    for r in runs:
        if not r.get("ok"):
            continue
        for m in r.get("measurements", []):
            slot = (
                acc.setdefault(r["setting"], {})
                .setdefault(m["name"], {})
                .setdefault(r["client"], {})
            )
            for f in SUMMARY_FIELDS:
                if m.get(f) is not None:
                    slot.setdefault(f, []).append(m[f])
    return {
        s: {
            name: {
                c: {f: summarize(v) for f, v in fields.items()}
                for c, fields in per_client.items()
            }
            for name, per_client in per_name.items()
        }
        for s, per_name in acc.items()
    }


def machine_info() -> dict[str, Any]:
    cpu = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        mem = f"{int(first.split()[1]) // 1024} MiB"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "loadavg_start": os.getloadavg(),
    }


def package_versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for dist in ("aiokafka_c", "confluent-kafka", "aiokafka", "uvloop",
                 "fastapi", "uvicorn", "httptools", "pydantic",
                 "matplotlib"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out["system librdkafka"] = subprocess.run(
            ["pkg-config", "--modversion", "rdkafka"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    with contextlib.suppress(Exception):
        import confluent_kafka

        out["confluent-kafka bundled librdkafka"] = (
            confluent_kafka.libversion()[0]
        )
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out["wrk"] = (
            subprocess.run(["wrk", "-v"], check=False, capture_output=True,
                           text=True)
            .stdout.splitlines()[0]
            .strip()
        ) or None
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="aiokafka_c against every peer, side by side.",
    )
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_const", dest="mode",
                      const="smoke", help="seconds; what the test suite runs")
    mode.add_argument("--quick", action="store_const", dest="mode",
                      const="quick", help="one setting, short measurements")
    mode.add_argument("--full", action="store_const", dest="mode",
                      const="full", help="the whole settings matrix")
    ap.add_argument("--out", default=str(HERE / "results"),
                    help="output directory (default benchmarks/results)")
    ap.add_argument("--bootstrap",
                    default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
                    help="use this broker instead of starting one")
    ap.add_argument("--clients", default=",".join(_plan.CLIENTS),
                    help="comma list, default all: " + ",".join(_plan.CLIENTS))
    ap.add_argument("--scenarios", default=None,
                    help="comma list of "
                    "ff,gather,tasks,window,latency,lag,consume,web")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio",
                    help="event loop for the producer and consumer "
                    "scenarios")
    ap.add_argument("--web-loop", choices=["auto", "asyncio", "uvloop"],
                    default="auto", help="uvicorn --loop for the web test")
    ap.add_argument("--aiokafka-c", choices=["build", "installed"],
                    default="build",
                    help="build: a release build of this tree into "
                    "benchmarks/build/lib (default); installed: whatever "
                    "`import aiokafka_c` finds")
    ap.add_argument("--no-web", action="store_true")
    ap.add_argument("--web-seconds", type=float, default=None,
                    help="seconds per wrk point (mode default otherwise)")
    ap.add_argument("--web-concurrency", default=None,
                    help="comma list, default 1,10,100,400")
    ap.add_argument("--web-linger", type=int, default=None,
                    help="linger.ms of the web apps' producers (default 5)")
    ap.add_argument("--web-apps", default=None,
                    help="comma list of web apps (default all)")
    ap.add_argument("--no-charts", action="store_true")
    ap.add_argument("--name", default=None,
                    help="basename of the output files (default: date-time)")
    ns = ap.parse_args(argv)
    ns.mode = ns.mode or "default"
    return ns


def _plan_from_args(args: argparse.Namespace) -> _plan.Plan:
    """The mode's plan with the command line's overrides applied."""
    plan = _plan.make_plan(args.mode)
    if args.repeats:
        plan.repeats = args.repeats
        plan.web_repeats = min(plan.web_repeats, args.repeats)
    if args.web_seconds:
        plan.web_seconds = args.web_seconds
    if args.web_linger is not None:
        plan.web_linger_ms = args.web_linger
    if args.web_concurrency:
        plan.web_concurrency = tuple(
            int(c) for c in args.web_concurrency.split(","))
    return plan


def _wanted_clients(args: argparse.Namespace) -> list[str]:
    wanted = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = set(wanted) - set(_plan.CLIENTS)
    if unknown:
        raise SystemExit(f"unknown clients: {sorted(unknown)}")
    return wanted


def _wanted_scenarios(args: argparse.Namespace) -> list[str]:
    scenarios = (
        [s.strip() for s in args.scenarios.split(",")]
        if args.scenarios else list(_plan.GROUPS) + ["consume", "web"]
    )
    unknown = set(scenarios) - set(_plan.GROUPS) - {"consume", "web"}
    if unknown:
        raise SystemExit(f"unknown scenarios: {sorted(unknown)}")
    return scenarios


Matrix = list[tuple[_plan.Setting, list[str]]]


def _producer_matrix(plan: _plan.Plan, scenarios: list[str]) -> Matrix:
    """The plan's (setting, groups) pairs cut down to the scenarios asked
    for; settings left without a group are dropped."""
    matrix = [
        (s, [g for g in groups if g in scenarios]) for s, groups in plan.matrix
    ]
    return [(s, g) for s, g in matrix if g]


RUN_NOTES = [
    (
        "confluent-kafka's wheel bundles its own librdkafka "
        "(see versions); aiokafka_c and the C ceiling use the system "
        "librdkafka."
    ),
    (
        "All processes share one machine with the broker: compare "
        "ratios within this run, not absolute numbers across runs."
    ),
]


def _new_result(args: argparse.Namespace, argv: list[str] | None,
                plan: _plan.Plan, matrix: Matrix,
                clients: dict[str, dict[str, Any]],
                started: _dt.datetime) -> dict[str, Any]:
    """The results document before any run: what, where, with what."""
    return {
        "schema": 1,
        "started": started.isoformat(timespec="seconds"),
        "command": "python -m benchmarks " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "mode": args.mode,
        "loop": args.loop,
        "machine": machine_info(),
        "versions": package_versions(),
        "plan": plan.as_dict(),
        "settings": [s.as_dict() for s, _ in matrix],
        "clients": clients,
        "notes": list(RUN_NOTES),
        "runs": [],
    }


def _run_producers(plan: _plan.Plan, matrix: Matrix, available: list[str],
                   bootstrap: str, topics: Topics, loop: str,
                   use_build: bool, runs: list[dict[str, Any]]) -> None:
    """Every repeat of every (setting, groups) for every available
    client, a process each (or one per client and setting when the plan
    says so), clients in alternating order; the records go to runs."""
    run_index = 0
    for rep in range(plan.repeats):
        for setting, groups in matrix:
            units: list[list[str]] = (
                [groups] if plan.one_process_per_client
                else [[g] for g in groups]
            )
            for unit in units:
                order = _plan.alternate(available, run_index)
                run_index += 1
                for client in order:
                    g = _plan.client_groups(client, unit)
                    if not g:
                        continue
                    log(f"rep {rep + 1}/{plan.repeats} {setting.id} "
                        f"{'+'.join(g)}: {client}")
                    rec = run_process(client, g, setting, plan, bootstrap,
                                      topics, loop, rep, use_build)
                    if not rec["ok"]:
                        log(f"  FAILED: {rec.get('error')}\n"
                            f"{rec.get('stderr_tail', '')[-1500:]}")
                    runs.append(rec)


def _run_web(args: argparse.Namespace, plan: _plan.Plan,
             scenarios: list[str], bootstrap: str, available: list[str],
             topics: Topics, use_build: bool) -> dict[str, Any]:
    """The web load test's results, or why it was skipped."""
    if "web" in scenarios and not args.no_web and plan.web_seconds > 0:
        from benchmarks import web

        web_apps = args.web_apps.split(",") if args.web_apps else None
        return web.run_web(plan, bootstrap, available, args.web_loop, log,
                           topics, web_apps, use_build)
    return {
        "skipped": "not requested" if plan.web_seconds > 0 or
        "web" not in scenarios else f"{args.mode} mode has no web test"
    }


def _write_outputs(result: dict[str, Any], out_dir: Path, name: str,
                   charts_wanted: bool) -> str:
    """<name>.json, <name>.md and the charts into out_dir, copied to
    latest.*; returns the Markdown."""
    from benchmarks import report

    json_path = out_dir / f"{name}.json"
    json_path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    charts: list[str] = []
    if charts_wanted:
        try:
            charts = report.write_charts(result, out_dir, name)
        except Exception as exc:  # charts are a nicety; keep the numbers
            log(f"charts failed: {type(exc).__name__}: {exc}")
    md = report.markdown(result, charts)
    md_path = out_dir / f"{name}.md"
    md_path.write_text(md)
    # latest.* copies: the README links latest.md and the latest_*.png.
    for src in [json_path, md_path, *[out_dir / c for c in charts]]:
        latest = out_dir / src.name.replace(name, "latest", 1)
        with contextlib.suppress(OSError):
            shutil.copyfile(src, latest)
    log(f"wrote {json_path}, {md_path}" +
        (f", {len(charts)} charts" if charts else ""))
    return md


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = _plan_from_args(args)
    wanted = _wanted_clients(args)
    scenarios = _wanted_scenarios(args)
    want_consume = "consume" in scenarios and plan.consumer_messages > 0
    matrix = _producer_matrix(plan, scenarios)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.now()
    name = args.name or started.strftime("%Y-%m-%d_%H%M%S")

    use_build = args.aiokafka_c == "build" and "aiokafka_c" in wanted
    clients = check_clients(wanted, use_build, want_consume)
    available = [c for c in wanted if clients[c]["available"]]
    result = _new_result(args, argv, plan, matrix, clients, started)

    with broker(args.bootstrap) as (bootstrap, binfo):
        result["broker"] = binfo
        topics = Topics(bootstrap)
        _run_producers(plan, matrix, available, bootstrap, topics,
                       args.loop, use_build, result["runs"])
        if want_consume:
            result["consumer"] = run_consumers(plan, bootstrap, topics,
                                               clients, wanted, args.loop,
                                               use_build, result["runs"])
        else:
            result["consumer"] = {"skipped": "not requested"}
        result["web"] = _run_web(args, plan, scenarios, bootstrap,
                                 available, topics, use_build)
        topics.close()

    result["finished"] = _dt.datetime.now().isoformat(timespec="seconds")
    result["machine"]["loadavg_end"] = os.getloadavg()
    result["summary"] = summarize_runs(result["runs"])
    print(_write_outputs(result, out_dir, name, not args.no_charts))
    failed = [r for r in result["runs"] if not r.get("ok")]
    return 1 if failed else 0
