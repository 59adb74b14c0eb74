"""The soak (tests/soak.py) for one minute: steady produce and consume
through a broker restart, with RSS, threads and descriptors checked."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.consumer_helpers import ROOT


@pytest.mark.soak
def test_one_minute_soak_through_a_broker_restart() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "tests.soak", "--minutes", "1",
         "--interval", "2", "--rate", "1000", "--restarts", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=280, check=False)
    lines = [ln for ln in r.stdout.splitlines()
             if ln.startswith("SOAK-SUMMARY ")]
    assert lines, f"exit {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    summary = json.loads(lines[-1].split(" ", 1)[1])
    print("SOAK", json.dumps(summary))
    assert r.returncode == 0, (summary, r.stderr[-4000:])
    assert summary["problems"] == []
    assert summary["samples"] >= 20
    # Nothing acknowledged went missing, nothing failed across the restart.
    assert summary["acked"] == summary["sent"] > 30_000, summary
    assert summary["failed"] == 0, summary
    assert summary["distinct_consumed"] >= summary["acked"], summary
