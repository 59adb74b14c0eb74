"""``python -m tests.kafkabroker``: run the test Kafka broker by hand.

python -m tests.kafkabroker start [--port P] [--workdir DIR]
    Start a single-node broker, print its bootstrap address on stdout
    (one line, flushed), run until Ctrl-C or SIGTERM, then stop it.
python -m tests.kafkabroker jars
    Only fetch the jars (print their directory).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from . import KafkaBroker, KafkaBrokerError, ensure_jars


def _start(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    broker = KafkaBroker(args.workdir, args.port)
    try:
        try:
            bootstrap = broker.start(timeout=args.timeout)
        except KafkaBrokerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(bootstrap, flush=True)
        print(
            f"kafka broker pid {broker.pid} ready in "
            f"{broker.start_seconds:.1f} s; log: {broker.log_path}; "
            f"Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            if not broker.running:
                print(
                    "error: the broker exited unexpectedly; see "
                    f"{broker.log_path}",
                    file=sys.stderr,
                )
                return 1
        return 0
    finally:
        broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.kafkabroker")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="run a broker until Ctrl-C")
    start.add_argument("--port", type=int, default=None)
    start.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="kept afterwards (default: a temporary dir, removed at exit)",
    )
    start.add_argument("--timeout", type=float, default=60.0)
    sub.add_parser("jars", help="only fetch the broker jars")
    args = parser.parse_args(argv)
    if args.command == "jars":
        try:
            print(ensure_jars())
        except KafkaBrokerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    return _start(args)


if __name__ == "__main__":
    sys.exit(main())
