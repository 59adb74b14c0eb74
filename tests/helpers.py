"""Small helpers shared by the client tests (no fixtures here)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable_conf(**extra: Any) -> dict[str, Any]:
    """Config for a producer whose only broker is down."""
    conf: dict[str, Any] = {
        "bootstrap.servers": f"127.0.0.1:{unused_port()}",
        "message.timeout.ms": 1000,
        "reconnect.backoff.max.ms": 100,
    }
    conf.update(extra)
    return conf


class RecordingHandler(logging.Handler):
    """Collects log records (thread-safe, unlike caplog's text)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            self.records.append(record)

    def messages(self, min_level: int = logging.DEBUG) -> list[str]:
        with self._lock:
            return [
                r.getMessage() for r in self.records if r.levelno >= min_level
            ]


def recording_logger(name: str) -> tuple[logging.Logger, RecordingHandler]:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    for h in list(logger.handlers):
        logger.removeHandler(h)
    handler = RecordingHandler()
    logger.addHandler(handler)
    return logger, handler


async def wait_until(
    predicate: Any, timeout: float = 30.0, what: str = "condition"
) -> None:
    """Polls predicate() on the loop; fails (never hangs) after timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
