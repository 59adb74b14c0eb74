"""What the one-question benchmarks (``benchmarks.transactions``,
``benchmarks.produce_batch``) share: their command line, a fresh topic,
and running each measurement in a child process of their own module."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any


def parse_args(module: str, seconds: float,
               child: Callable[[dict[str, Any]], None],
               mock: bool = False) -> argparse.Namespace | None:
    """Parses ``--bootstrap --seconds --repeats --out`` (and ``--mock``
    when the module can run on librdkafka's in-process mock cluster); in a
    child (``--child SPEC``) runs child(spec) and returns None."""
    ap = argparse.ArgumentParser(prog=f"python -m {module}")
    ap.add_argument("--bootstrap",
                    default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    ap.add_argument("--seconds", type=float, default=seconds)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    if mock:
        ap.add_argument("--mock", action="store_true",
                        help="no broker: every process runs librdkafka's "
                        "in-process mock cluster (test.mock.num.brokers=1)")
    a = ap.parse_args()
    if a.child:
        child(json.loads(a.child))
        return None
    if not a.bootstrap and not getattr(a, "mock", False):
        ap.error("--bootstrap (or KAFKA_BOOTSTRAP_SERVERS) is required")
    return a


def make_topic(bootstrap: str, prefix: str) -> str:
    """A new single-partition topic."""
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    return topic


def run_child(module: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Runs ``python -m module --child SPEC``; returns its RESULT line."""
    r = subprocess.run(
        [sys.executable, "-m", module, "--child", json.dumps(spec)],
        capture_output=True, text=True, timeout=300, check=False)
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    if r.returncode != 0 or not line:
        raise RuntimeError(f"{spec.get('client')}: {r.stdout[-1500:]}"
                           f"{r.stderr[-1500:]}")
    return dict(json.loads(line[-1].split(" ", 1)[1]))


def print_result(res: dict[str, Any]) -> None:
    print("RESULT", json.dumps(res), flush=True)


def write_report(text: str, out: str | None) -> None:
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text)
