"""Shared bits of the benchmark web apps: settings and the request model."""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel


class Item(BaseModel):
    name: str


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def topic() -> str:
    return os.environ.get("KAFKA_TOPIC", "items")


def rdkafka_config() -> dict[str, Any]:
    """librdkafka properties from the environment, like the example app:
    ``KAFKA_CONFIG_LINGER_MS=5`` -> ``linger.ms=5``."""
    conf: dict[str, Any] = {
        "bootstrap.servers": os.environ.get(
            "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"
        )
    }
    prefix = "KAFKA_CONFIG_"
    for key, value in os.environ.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            parts = key[len(prefix):].lower().split("__")
            conf["_".join(p.replace("_", ".") for p in parts)] = value
    return conf


class Counter:
    """Delivery outcomes of the out-of-band endpoints (kept, like any real
    app would, so the callbacks do some work)."""

    __slots__ = ("failed", "ok")

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0

    def __call__(self, err: Any, msg: Any) -> None:
        if err is None:
            self.ok += 1
        else:
            self.failed += 1


def future_counter(counter: Counter):  # type: ignore[no-untyped-def]
    """A done-callback for clients whose out-of-band path is a future."""

    def done(fut: Any) -> None:
        if fut.cancelled() or fut.exception() is not None:
            counter.failed += 1
        else:
            counter.ok += 1

    return done
