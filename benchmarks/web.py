"""The blog's load test: FastAPI apps under one uvicorn worker, loaded by
``wrk`` (Debian's package) with a POST-JSON Lua script at several
concurrency levels.

Apps measured (each in its own uvicorn process, fresh topic, matched
producer settings acks=1, linger.ms=5 unless ``--web-linger``):

* ``aiokafka_c_example`` -- the project's example app as it ships
  (``aiokafka_c.example.app:app``: counters, latency window, statistics
  every second, body-size middleware);
* ``aiokafka_c``  -- a bare app of the same shape as the peers';
* ``blog``, ``confluent_aio``, ``aiokafka`` -- benchmarks/webapps/;
* ``asyncio_floor`` -- no Kafka: /items1 waits for a linger.ms timer per
  batch of requests, the floor under every awaited endpoint.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import plan as _plan
from benchmarks.stats import summarize

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LUA = HERE / "post.lua"
ENDPOINTS = ["items1", "items2", "items3", "items4", "items5"]

# app name -> (client it needs, ASGI target, description)
APPS: dict[str, tuple[str, str, str]] = {
    "aiokafka_c_example": (
        "aiokafka_c", "aiokafka_c.example.app:app",
        "the project's example app as shipped",
    ),
    "aiokafka_c": (
        "aiokafka_c", "benchmarks.webapps.aiokafka_c_app:app",
        "bare app, same shape as the peers' (benchmarks/webapps)",
    ),
    "blog": (
        "blog", "benchmarks.webapps.blog_app:app",
        "the blog post's app and bridge",
    ),
    "confluent_aio": (
        "confluent_aio", "benchmarks.webapps.confluent_aio_app:app",
        "confluent_kafka.aio.AIOProducer",
    ),
    "aiokafka": (
        "aiokafka", "benchmarks.webapps.aiokafka_app:app",
        "aiokafka.AIOKafkaProducer",
    ),
    "asyncio_floor": (
        "asyncio_floor", "benchmarks.webapps.asyncio_floor_app:app",
        "no Kafka: /items1 waits for a linger.ms timer per batch",
    ),
}

UNSUPPORTED = {
    "confluent_aio": {"items3": "confluent_kafka.aio has no delivery "
                      "callback on a producer thread"},
    "aiokafka": {"items3": "aiokafka has no producer thread"},
    "asyncio_floor": {ep: "no Kafka: only the awaited shape and the no-op"
                      for ep in ("items2", "items3", "items4")},
}



def producer_env(plan: _plan.Plan) -> dict[str, str]:
    """Every app's producer settings, as the apps read them."""
    return {"KAFKA_CONFIG_ACKS": "1",
            "KAFKA_CONFIG_LINGER_MS": str(plan.web_linger_ms)}


WRK_TIMEOUT = "10s"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(port: int, path: str, timeout: float) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=b'{"name":"warmup"}',
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def _importable(target: str, use_build: bool) -> str | None:
    module = target.split(":", 1)[0]
    env, cwd = _env({}, use_build)
    r = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        check=False, capture_output=True, text=True, cwd=cwd, env=env,
    )
    if r.returncode == 0:
        return None
    lines = r.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit {r.returncode}"


def _env(extra: dict[str, str],
         use_build: bool) -> tuple[dict[str, str], Path]:
    from benchmarks.harness import worker_env_cwd

    env, cwd = worker_env_cwd(use_build)
    env.update(extra)
    return env, cwd


def tcp_retrans_segs() -> int | None:
    """The kernel's TCP RetransSegs counter, recorded per point for
    diagnosis (on loopback these are mostly spurious tail-loss probes)."""
    try:
        lines = [ln.split() for ln in Path("/proc/net/snmp").read_text()
                 .splitlines() if ln.startswith("Tcp:")]
        return int(lines[1][lines[0].index("RetransSegs")])
    except (OSError, ValueError, IndexError):
        return None


def wrk(port: int, path: str, conc: int, seconds: float) -> dict[str, Any]:
    cmd = ["wrk", "-t1", f"-c{conc}", f"-d{max(1, round(seconds))}s",
           f"--timeout={WRK_TIMEOUT}", "-s", str(LUA),
           f"http://127.0.0.1:{port}/{path}"]
    retrans0 = tcp_retrans_segs()
    r = subprocess.run(cmd, check=False, capture_output=True, text=True,
                       timeout=seconds + 60)
    retrans1 = tcp_retrans_segs()
    for line in r.stdout.splitlines():
        if line.startswith("WRKJSON "):
            d = json.loads(line[len("WRKJSON "):])
            secs = d["duration_us"] / 1e6
            errs = d["errors"]
            lat = d["latency_us"] if d["requests"] else {
                k: None for k in d["latency_us"]}

            def ms(v: float | None) -> float | None:
                return None if v is None else v / 1e3

            return {
                "requests": d["requests"],
                "seconds": secs,
                "rps": d["requests"] / secs if secs > 0 else None,
                "p50_ms": ms(lat["p50"]),
                "p99_ms": ms(lat["p99"]),
                "p999_ms": ms(lat["p999"]),
                "mean_ms": ms(lat["mean"]),
                "errors": errs,
                "non2xx": errs["status"],
                "socket_errors": errs["connect"] + errs["read"]
                + errs["write"] + errs["timeout"],
                "tcp_retrans": (retrans1 - retrans0
                                if retrans0 is not None
                                and retrans1 is not None else None),
            }
    raise RuntimeError(f"wrk produced no summary (exit {r.returncode}): "
                       f"{r.stderr.strip()[-500:]}")


class _App:
    def __init__(self, target: str, env: dict[str, str], loop: str,
                 use_build: bool) -> None:
        self.port = _free_port()
        self.log = tempfile.NamedTemporaryFile(
            prefix="bench-uvicorn-", suffix=".log", delete=False)
        cmd = [sys.executable, "-m", "uvicorn", target,
               "--host", "127.0.0.1", "--port", str(self.port),
               "--log-level", "warning", "--no-access-log", "--loop", loop]
        full_env, cwd = _env(env, use_build)
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=full_env,
                                     stdout=self.log, stderr=self.log)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"uvicorn exited {self.proc.returncode}: {self.tail()}")
            try:
                if _post(self.port, "/items5", 2.0) == 200:
                    break
            except OSError as exc:
                last = exc
            time.sleep(0.2)
        else:
            raise RuntimeError(f"app not ready in {timeout:.0f} s: {last}")
        # First delivery waits for metadata: warm the producer untimed.
        status = _post(self.port, "/items1", 60.0)
        if status >= 300:
            raise RuntimeError(f"warm-up POST /items1 returned {status}: "
                               f"{self.tail()}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self) -> str:
        try:
            return Path(self.log.name).read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass
        return self.proc.returncode


def _app_infos(available: list[str], only: list[str] | None,
               use_build: bool,
               log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """An entry per app asked for: ``ok`` if its client is available and
    its module imports, else the ``error`` why not."""
    apps: dict[str, dict[str, Any]] = {}
    for name, (client, target, desc) in APPS.items():
        if only and name not in only:
            continue
        info: dict[str, Any] = {"target": target, "description": desc,
                                "ok": False, "points": []}
        if UNSUPPORTED.get(name):
            info["unsupported"] = UNSUPPORTED[name]
        if client not in available:
            info["error"] = f"client {client} not available"
        else:
            why = _importable(target, use_build)
            if why:
                info["error"] = f"{target.split(':')[0]} not importable: {why}"
            else:
                info["ok"] = True
        if not info["ok"]:
            log(f"web: skipping {name}: {info['error']}")
        apps[name] = info
    return apps


def _point_line(name: str, rep: int, point: dict[str, Any]) -> str:
    return (f"web rep {rep + 1} {name} /{point['endpoint']} "
            f"c={point['concurrency']}: "
            f"{point['rps']:.1f} req/s, p99 "
            f"{point['p99_ms'] or 0:.1f} ms"
            + (f", {point['non2xx']} non-2xx"
               if point["non2xx"] else "")
            + (f", {point['socket_errors']} socket errors"
               if point["socket_errors"] else "")
            + (f", {point['tcp_retrans']} TCP retransmits"
               if point.get("tcp_retrans") else ""))


def _load_app(app: _App, name: str, info: dict[str, Any], plan: _plan.Plan,
              rep: int, shift: int, log: Callable[[str], None]) -> None:
    """wrk every served endpoint at every concurrency; the points go to
    info. Concurrency outside, endpoints inside (alternating): the
    endpoints compared at one concurrency run close in time."""
    endpoints = [e for e in ENDPOINTS if e not in UNSUPPORTED.get(name, {})]
    for k, conc in enumerate(plan.web_concurrency):
        for ep in _plan.alternate(endpoints, shift + k):
            if plan.web_warmup_seconds > 0:
                wrk(app.port, ep, conc, plan.web_warmup_seconds)
            point = wrk(app.port, ep, conc, plan.web_seconds)
            point.update(endpoint=ep, concurrency=conc, repeat=rep)
            info["points"].append(point)
            log(_point_line(name, rep, point))
            if not app.alive():
                raise RuntimeError(f"uvicorn died: {app.tail()}")


def _run_app(name: str, info: dict[str, Any], plan: _plan.Plan,
             rep: int, shift: int, bootstrap: str, loop: str,
             log: Callable[[str], None], topics: Any,
             use_build: bool) -> None:
    """One repeat of one app: a fresh topic, a uvicorn process, the load;
    a failure marks the app not ok."""
    topic = f"bench.web.{name.replace('_', '-')}.{rep}." \
            f"{os.urandom(3).hex()}"
    if topics is not None:
        try:
            topics.create(topic)
        except Exception as exc:
            info.update(ok=False, error=f"create topic: {exc}")
            return
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "KAFKA_TOPIC": topic, **producer_env(plan)}
    app = _App(info["target"], env, loop, use_build)
    try:
        app.wait_ready()
        _load_app(app, name, info, plan, rep, shift, log)
    except Exception as exc:
        info.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        log(f"web: {name} failed: {info['error']}")
    finally:
        rc = app.stop()
        info.setdefault("exit_codes", []).append(rc)
        if topics is not None:
            topics.delete(topic)


def _summarize_points(points: list[dict[str, Any]]) -> dict[str, Any]:
    """summary[endpoint][concurrency][field] = median/min/max/n."""
    summ: dict[str, dict[str, Any]] = {}
    for p in points:
        slot = summ.setdefault(p["endpoint"], {}).setdefault(
            str(p["concurrency"]), {})
        for f in ("rps", "p50_ms", "p99_ms", "non2xx", "socket_errors",
                  "tcp_retrans"):
            if p.get(f) is not None:
                slot.setdefault(f, []).append(p[f])
    return {
        ep: {c: {f: summarize(v) for f, v in fields.items()}
             for c, fields in per_c.items()}
        for ep, per_c in summ.items()
    }


def run_web(plan: _plan.Plan, bootstrap: str, available: list[str],
            loop: str, log: Callable[[str], None],
            topics: Any = None,
            only: list[str] | None = None,
            use_build: bool = False) -> dict[str, Any]:
    """Every runnable app, repeated in alternating order, under wrk; the
    settings of the test and, per app, its points and their summary."""
    out: dict[str, Any] = {
        "tool": "wrk -t1, POST application/json, benchmarks/post.lua",
        "concurrency": list(plan.web_concurrency),
        "seconds": plan.web_seconds,
        "warmup_seconds": plan.web_warmup_seconds,
        "repeats": plan.web_repeats,
        "loop": loop,
        "producer_settings": {"acks": "1", "linger.ms": plan.web_linger_ms},
        "apps": {},
    }
    if shutil.which("wrk") is None:
        out["skipped"] = "wrk is not installed (apt-get install wrk)"
        return out
    apps = _app_infos(available, only, use_build, log)
    runnable = [n for n, a in apps.items() if a["ok"]]
    for rep in range(plan.web_repeats):
        for i, name in enumerate(_plan.alternate(runnable, rep)):
            if apps[name]["ok"]:
                _run_app(name, apps[name], plan, rep, rep + i, bootstrap,
                         loop, log, topics, use_build)
    for info in apps.values():
        info["summary"] = _summarize_points(info["points"])
    out["apps"] = apps
    return out
