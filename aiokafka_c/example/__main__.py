"""``python -m aiokafka_c.example [--host H] [--port P] [--workers N]``.

Serves ``aiokafka_c.example.app:app`` with uvicorn. SIGTERM or SIGINT
(Ctrl-C) stops it gracefully: no new connections, in-flight requests get
``--graceful-timeout`` seconds, live-feed viewers are let go, the feed's
consumer closes, the producer flushes (``APP_FLUSH_TIMEOUT_S``, default
10 s) and closes, and the process exits 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from types import FrameType

APP = "aiokafka_c.example.app:app"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aiokafka_c.example",
        description=(
            "The Confluent blog's FastAPI example on aiokafka_c. Without "
            "KAFKA_BOOTSTRAP_SERVERS it produces to librdkafka's embedded "
            "mock cluster. Environment: KAFKA_BOOTSTRAP_SERVERS, "
            "KAFKA_TOPIC (default items), KAFKA_CONFIG_<PROPERTY> for any "
            "librdkafka property (KAFKA_CONFIG_LINGER_MS=1 sets linger.ms), "
            "APP_FLUSH_TIMEOUT_S (default 10), APP_FEED_ENABLED (default 1: "
            "a consumer streams the topic's items to /ws/items), "
            "APP_FEED_QUEUE_SIZE (default 100 items per viewer)."
        ),
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="bind address (default %(default)s)",
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="TCP port (default %(default)s)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes, each with its own producer (default 1)",
    )
    parser.add_argument(
        "--loop",
        default="auto",
        choices=["auto", "asyncio", "uvloop"],
        help="event loop (default %(default)s: uvloop when installed)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn's log level (default %(default)s)",
    )
    parser.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="do not log each request (use for load tests)",
    )
    parser.add_argument(
        "--graceful-timeout",
        type=float,
        default=10.0,
        help="seconds in-flight requests get on shutdown (default 10)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.workers < 1:
        _parser().error("--workers must be at least 1")

    import uvicorn

    # uvicorn catches SIGTERM/SIGINT while it serves, shuts down gracefully,
    # then restores these handlers and raises the signal again so that its
    # default action follows (death by SIGTERM, KeyboardInterrupt). The
    # shutdown was clean, so make that an exit with status 0; a signal that
    # comes before uvicorn is up exits 0 at once.
    def stopped(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stopped)
    signal.signal(signal.SIGINT, stopped)

    uvicorn.run(
        APP,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop=args.loop,
        log_level=args.log_level,
        access_log=args.access_log,
        lifespan="on",
        timeout_graceful_shutdown=args.graceful_timeout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
