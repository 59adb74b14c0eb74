"""The benchmark harness in smoke mode, against the session's real broker.

Checks that ``python -m benchmarks --smoke`` runs every available client
through every scenario and writes well-formed JSON and Markdown with
positive message counts. Timings are never asserted: the machine is shared
and noisy; the numbers belong to the benchmark report, not to a test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

ASYNC_CLIENTS = {"aiokafka_c", "blog", "confluent_aio", "aiokafka"}
SMOKE_MEASUREMENTS = {"ff", "gather_1", "gather_1000", "tasks_100", "latency"}


def _importable(module: str) -> bool:
    """Importable in a fresh interpreter? (Never imported here: a C
    extension built with sanitizers must not take this process down.)"""
    try:
        if importlib.util.find_spec(module.split(".")[0]) is None:
            return False
    except (ImportError, ValueError):
        return False
    proc = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        check=False, cwd=ROOT, capture_output=True, timeout=60,
    )
    return proc.returncode == 0


@pytest.fixture(scope="module")
def smoke_run(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict, str, Path]:
    out = tmp_path_factory.mktemp("bench-smoke")
    cmd = [
        sys.executable, "-m", "benchmarks", "--smoke",
        "--out", str(out), "--bootstrap", kafka_bootstrap, "--name", "smoke",
    ]
    if not _importable("matplotlib"):
        cmd.append("--no-charts")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    proc = subprocess.run(
        cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=240,
    )
    assert proc.returncode == 0, (
        f"harness exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\n"
        f"stderr:\n{proc.stderr[-5000:]}"
    )
    result = json.loads((out / "smoke.json").read_text())
    md = (out / "smoke.md").read_text()
    return result, md, out


def test_structure(smoke_run: tuple[dict, str, Path]) -> None:
    result, md, out = smoke_run
    for key in ("schema", "started", "finished", "command", "machine",
                "versions", "plan", "settings", "clients", "runs",
                "summary", "web", "notes"):
        assert key in result, key
    assert result["mode"] == "smoke"
    assert result["web"].get("skipped")  # no load test in smoke mode
    assert (out / "latest.json").exists()
    assert (out / "latest.md").exists()
    [setting] = result["settings"]
    assert {"id", "value_size", "acks", "linger_ms"} <= set(setting)
    assert "## Producer" in md
    # measurements and ratios only: what we aim for lives in issues
    assert "targets" not in result and "## Targets" not in md
    # confluent-kafka's bundled librdkafka is called out
    assert any("bundles" in n for n in result["notes"])


def test_every_available_client_measured(
    smoke_run: tuple[dict, str, Path],
) -> None:
    result, md, _ = smoke_run
    clients = result["clients"]
    assert set(clients) == {"aiokafka_c", "blog", "confluent_aio",
                            "confluent_sync", "aiokafka", "native",
                            "asyncio_floor"}
    aiokafka_c_ok = _importable("aiokafka_c")
    if aiokafka_c_ok:
        assert clients["aiokafka_c"]["available"], clients["aiokafka_c"]
    # the C ceiling is built by the harness from benchmarks/native/
    assert clients["native"]["available"], clients["native"]
    available = [c for c, info in clients.items() if info["available"]]
    # (the harness measures its own release build of the tree, so it may
    # have aiokafka_c even when the in-tree build does not import)

    runs = result["runs"]
    assert all(r["ok"] for r in runs), [
        (r["client"], r.get("variant"), r.get("error"))
        for r in runs if not r["ok"]
    ]
    sid = result["settings"][0]["id"]
    summary = result["summary"][sid]
    windows = {f"window_{n}" for n in result["plan"]["window_ns"]}
    assert windows
    for client in available:
        [run] = [r for r in runs
                 if r["client"] == client and "consume" not in r["groups"]]
        names = {m["name"] for m in run["measurements"]}
        if client == "asyncio_floor":  # no Kafka: awaited shapes only
            expected = {"gather_1", "gather_1000", "tasks_100"} | windows
        else:
            expected = SMOKE_MEASUREMENTS | windows
            if client in ASYNC_CLIENTS:
                expected.add("lag")
            assert summary["ff"][client]["rate"]["median"] > 0
        assert expected <= names, (client, names)
        for m in run["measurements"]:
            assert m["msgs"] > 0, (client, m)
            if m["kind"] in ("throughput", "lag"):
                assert m["rate"] > 0, (client, m)
                assert m["cpu_proc_us"] is not None, (client, m)
            if m["kind"] == "latency":
                assert m["p50_ms"] > 0 and m["p99_ms"] >= m["p50_ms"]
        assert result["clients"][client]["label"] in md
    for name in windows:
        assert set(summary[name]) == set(available), (name, summary[name])
        assert f"sliding window, {name.split('_')[1]} in flight" in md


def _has_consumer(module: str, name: str) -> bool:
    proc = subprocess.run(
        [sys.executable, "-c", f"from {module} import {name}"],
        check=False, cwd=ROOT, capture_output=True, timeout=60,
    )
    return proc.returncode == 0


def test_every_available_consumer_measured(
    smoke_run: tuple[dict, str, Path],
) -> None:
    """Every consumer scenario (client x API shape) of every available
    consumer produced numbers: msg/s, CPU per message, and for the asyncio
    consumers the loop lag; the topic was pre-filled first."""
    from benchmarks.plan import CONSUMER_LABELS, CONSUMERS

    result, md, _ = smoke_run
    cons = result["consumer"]
    assert not cons.get("skipped"), cons
    assert cons["prefill"]["ok"], cons["prefill"]
    assert cons["prefill"]["messages"] >= cons["setting"]["count"] > 0
    clients = result["clients"]
    # the C ceiling is built by the harness, like the producer one
    assert clients["native"]["consumer_available"], clients["native"]
    if _importable("aiokafka_c") and _has_consumer("aiokafka_c",
                                                   "AIOConsumer"):
        assert clients["aiokafka_c"]["consumer_available"], (
            clients["aiokafka_c"])
    if _has_consumer("confluent_kafka.aio", "AIOConsumer"):
        assert clients["confluent_aio"]["consumer_available"]
    assert "## Consumer" in md
    sid = cons["setting"]["id"]
    measured = 0
    for client, variant in CONSUMERS:
        if not clients[client].get("consumer_available"):
            continue
        runs = [r for r in result["runs"] if r["client"] == client
                and r.get("variant") == variant]
        assert runs, (client, variant)
        for run in runs:
            assert run["ok"], (client, variant, run.get("error"),
                               run.get("stderr_tail"))
            [m] = run["measurements"]
            assert m["name"] == f"consume_{variant}"
            assert m["kind"] == "consume"
            assert m["msgs"] > 0 and m["rate"] > 0, (client, variant, m)
            assert m["received"] == m["msgs"] + 1
            assert m["bytes"] >= m["received"] * cons["setting"][
                "value_size"]
            assert m["cpu_proc_us"] is not None, (client, variant, m)
            assert m["cpu_loop_us"] is not None, (client, variant, m)
            if client in ASYNC_CLIENTS:
                assert m["ticks"] > 0 and m["lag_p99_ms"] is not None, (
                    client, variant, m)
        assert result["summary"][sid][f"consume_{variant}"][client][
            "rate"]["median"] > 0
        assert CONSUMER_LABELS[(client, variant)] in md
        measured += 1
    assert measured >= 8  # confluent sync + aio, aiokafka, C at least


def test_latency_probe_splits_every_latency(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """benchmarks.latency_probe builds the probe extension
    (-DAKC_LATENCY_PROBE, code no release build compiles) and reports
    every segment of a delivery's way, with samples, for both loops and
    both C ceilings.  No value is judged, only that each was measured."""
    if not _importable("uvloop"):
        pytest.skip("uvloop is not installed")
    out = tmp_path / "probe.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.latency_probe", "--bootstrap",
         kafka_bootstrap, "--seconds", "0.3", "--repeats", "1",
         "--out", str(out)],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    tables: list[dict[str, list[str]]] = []
    for line in out.read_text().splitlines():
        if not line.startswith("|"):
            if tables and tables[-1]:
                tables.append({})
            continue
        if not tables:
            tables.append({})
        cells = [c.strip(" *") for c in line.strip("|").split("|")]
        tables[-1][cells[0]] = cells[1:]
    ours, c_ceiling = tables[0], tables[1]
    for label in ("produce() → report taken by the poll thread",
                  "→ loop runs the dispatcher", "→ await returns", "total"):
        assert label in ours, sorted(ours)
        assert all(float(v) > 0 for v in ours[label]), (label, ours[label])
    hop = [k for k in ours if k.startswith("hop floor")]
    assert hop and all(float(v) > 0 for v in ours[hop[0]]), ours
    for label in ("produce → report on the waiting thread", "total"):
        assert all(float(v) > 0 for v in c_ceiling[label]), c_ceiling
    samples = [int(v.split(" / ")[0])
               for v in ours["samples per run / not split"]]
    assert min(samples) > 0, ours["samples per run / not split"]
