"""Counters, latency percentiles and cluster health for ``/stats`` and
``/healthz``.

Everything here is updated on the event loop thread, except the counters of
``/items3`` whose delivery callback runs on the producer's native poll
thread. No lock is needed for those: each field has exactly one writer
thread (``requests`` the loop, ``deliveries``/``failures`` the poll thread),
and reading an int attribute from another thread is atomic in CPython.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka_c import KafkaError, ThrottleEvent

# Broker states in librdkafka's statistics that mean "connected and usable".
_UP_STATES = frozenset({"UP", "UPDATE"})
# Pseudo-brokers librdkafka lists in its statistics; not real connections.
_PSEUDO_SOURCES = frozenset({"internal", "logical"})


class Counters:
    """Per-endpoint counts. ``deliveries``/``failures`` stay ``None`` for an
    endpoint that never learns the outcome (fire-and-forget, no-op)."""

    __slots__ = ("deliveries", "failures", "requests")

    def __init__(self, *, tracks_delivery: bool) -> None:
        self.requests = 0
        self.deliveries: int | None = 0 if tracks_delivery else None
        self.failures: int | None = 0 if tracks_delivery else None

    def delivered(self) -> None:
        assert self.deliveries is not None
        self.deliveries += 1

    def failed(self) -> None:
        assert self.failures is not None
        self.failures += 1

    def snapshot(self) -> dict[str, int | None]:
        return {
            "requests": self.requests,
            "deliveries": self.deliveries,
            "failures": self.failures,
        }


class LatencyWindow:
    """The latest ``size`` latencies, in milliseconds."""

    def __init__(self, size: int = 4096) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self.count = 0

    def add(self, seconds: float) -> None:
        self._samples.append(seconds * 1000.0)
        self.count += 1

    def snapshot(self, recent: int = 60) -> dict[str, Any]:
        """``count`` (all time), ``p50``/``p99``/``max`` over the window and
        the ``recent`` latest samples, oldest first."""
        ordered = sorted(self._samples)
        last = list(self._samples)[-recent:] if recent > 0 else []
        return {
            "count": self.count,
            "window": len(ordered),
            "p50": _percentile(ordered, 50.0),
            "p99": _percentile(ordered, 99.0),
            "max": round(ordered[-1], 3) if ordered else None,
            "recent": [round(x, 3) for x in last],
        }


def _percentile(ordered: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an ascending list; None when empty."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil(n * pct / 100)
    return round(ordered[int(rank) - 1], 3)


def summarize_stats(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The few fields of a librdkafka statistics report worth showing."""
    brokers = []
    for broker in raw.get("brokers", {}).values():
        if broker.get("source") in _PSEUDO_SOURCES:
            continue
        rtt = broker.get("rtt") or {}
        brokers.append(
            {
                "name": broker.get("name"),
                "nodename": broker.get("nodename"),
                "nodeid": broker.get("nodeid"),
                "state": broker.get("state"),
                "rtt_p50_ms": _us_to_ms(rtt.get("p50")),
                "rtt_p99_ms": _us_to_ms(rtt.get("p99")),
                "outbuf_cnt": broker.get("outbuf_cnt"),
                "waitresp_cnt": broker.get("waitresp_cnt"),
                "connects": broker.get("connects"),
                "disconnects": broker.get("disconnects"),
            }
        )
    brokers.sort(key=lambda b: str(b["name"]))
    return {
        "client_id": raw.get("client_id"),
        "msg_cnt": raw.get("msg_cnt"),
        "msg_size": raw.get("msg_size"),
        "txmsgs": raw.get("txmsgs"),
        "txmsg_bytes": raw.get("txmsg_bytes"),
        "tx": raw.get("tx"),
        "rx": raw.get("rx"),
        "brokers": brokers,
    }


def _us_to_ms(value: object) -> float | None:
    if isinstance(value, (int, float)):
        return round(value / 1000.0, 3)
    return None


def describe_error(err: KafkaError) -> dict[str, Any]:
    """A KafkaError as JSON: its name, code, reason and flags."""
    return {
        "error": err.name(),
        "code": err.code(),
        "reason": err.str(),
        "retriable": err.retriable(),
        "fatal": err.fatal(),
    }


@dataclass
class _ErrorEvent:
    name: str
    reason: str
    at: float  # time.monotonic()


class ClusterHealth:
    """Whether the producer can reach its cluster, from librdkafka's
    statistics (broker states) and error events.

    Healthy means: statistics are arriving, the latest report shows at least
    one broker in state UP, no "all brokers down" event came after that
    report, and no fatal error happened.
    """

    def __init__(self, stats_interval_s: float) -> None:
        self.stats_interval_s = stats_interval_s
        self.started_at = time.monotonic()
        self.summary: dict[str, Any] | None = None
        self.stats_at: float | None = None
        self.last_error: _ErrorEvent | None = None
        self.all_down_at: float | None = None
        self.fatal: _ErrorEvent | None = None
        self.throttle_events = 0
        self.last_throttle: dict[str, Any] | None = None

    # -- event sinks, called on the loop by the producer's callbacks

    def on_stats(self, json_str: str) -> None:
        self.summary = summarize_stats(json.loads(json_str))
        self.stats_at = time.monotonic()

    def on_error(self, err: KafkaError) -> None:
        event = _ErrorEvent(err.name(), err.str(), time.monotonic())
        self.last_error = event
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.all_down_at = event.at
        if err.fatal():
            self.fatal = event

    def on_throttle(self, event: ThrottleEvent) -> None:
        self.throttle_events += 1
        self.last_throttle = {
            "broker": event.broker_name,
            "broker_id": event.broker_id,
            "throttle_time": event.throttle_time,
        }

    # -- queries

    def brokers_up(self) -> list[str]:
        if self.summary is None:
            return []
        return [
            str(b["name"])
            for b in self.summary["brokers"]
            if b["state"] in _UP_STATES
        ]

    def status(self) -> tuple[bool, str]:
        """(healthy, reason)."""
        now = time.monotonic()
        if self.fatal is not None:
            return False, (
                f"fatal producer error {self.fatal.name}: {self.fatal.reason}"
            )
        if self.stats_interval_s <= 0:
            return False, (
                "statistics.interval.ms is 0: the app cannot tell whether "
                "the cluster is reachable"
            )
        stale_after = max(5.0, 3 * self.stats_interval_s)
        if self.stats_at is None:
            waited = now - self.started_at
            return False, self._with_error(
                f"no librdkafka statistics yet ({waited:.1f} s after start)"
            )
        if now - self.stats_at > stale_after:
            return False, self._with_error(
                f"no librdkafka statistics for {now - self.stats_at:.1f} s"
            )
        if self.all_down_at is not None and self.all_down_at > self.stats_at:
            return False, self._with_error("all brokers are down")
        up = self.brokers_up()
        if not up:
            states = ", ".join(
                f"{b['name']}: {b['state']}"
                for b in (self.summary or {}).get("brokers", [])
            )
            return False, self._with_error(
                f"no broker connection is up ({states or 'no brokers'})"
            )
        return True, f"{len(up)} broker connection(s) up: {', '.join(up)}"

    def _with_error(self, reason: str) -> str:
        err = self.last_error
        if err is None:
            return reason
        age = time.monotonic() - err.at
        return (
            f"{reason}; last error {err.name}: {err.reason} ({age:.1f} s ago)"
        )


class RateLimitedLog:
    """Logs at most one delivery failure per ``interval`` seconds and counts
    the ones it held back. One instance per writer thread."""

    def __init__(
        self, logger: logging.Logger, what: str, interval: float = 1.0
    ) -> None:
        self._logger = logger
        self._what = what
        self._interval = interval
        self._next = 0.0
        self._held_back = 0

    def failure(self, err: KafkaError) -> None:
        now = time.monotonic()
        if now < self._next:
            self._held_back += 1
            return
        more = (
            f" (+{self._held_back} more since the last report)"
            if self._held_back
            else ""
        )
        self._held_back = 0
        self._next = now + self._interval
        self._logger.warning(
            "%s: delivery failed: %s: %s%s",
            self._what,
            err.name(),
            err.str(),
            more,
        )
