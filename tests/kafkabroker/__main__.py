"""``python -m tests.kafkabroker``: run the test Kafka broker by hand.

python -m tests.kafkabroker start [--port P] [--workdir DIR]
    Start a single-node broker, print its bootstrap address on stdout
    (one line, flushed), run until Ctrl-C or SIGTERM, then stop it.
python -m tests.kafkabroker start --nodes N [--workdir DIR]
    The same with a KRaft cluster of N broker+controller nodes (see
    KafkaCluster): the first line is the bootstrap servers (comma
    separated), and node i's PID is in DIR/node-<i>.pid. Every node is
    stopped on Ctrl-C or SIGTERM; a node that dies (or is killed) is left
    down, for whoever killed it to restart.
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

from . import KafkaBroker, KafkaBrokerError, KafkaCluster, ensure_jars


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


def _start_cluster(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    cluster = KafkaCluster(args.nodes, args.workdir)
    try:
        try:
            bootstrap = cluster.start(timeout=args.timeout)
        except KafkaBrokerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(bootstrap, flush=True)
        pids = " ".join(f"{i}:{p}" for i, p in cluster.pids().items())
        print(
            f"kafka cluster of {args.nodes} nodes (pids {pids}) ready in "
            f"{cluster.start_seconds:.1f} s; workdir: {cluster.workdir}; "
            f"Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        stop.wait()
        return 0
    finally:
        cluster.stop()


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
    start.add_argument(
        "--nodes",
        type=int,
        default=None,
        help="run a KRaft cluster of this many nodes instead",
    )
    start.add_argument("--timeout", type=float, default=None)
    sub.add_parser("jars", help="only fetch the broker jars")
    args = parser.parse_args(argv)
    if args.command == "jars":
        try:
            print(ensure_jars())
        except KafkaBrokerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.nodes is not None:
        if args.port is not None:
            parser.error("--port is for a single broker, not --nodes")
        if args.nodes < 1:
            parser.error("--nodes must be at least 1")
        args.timeout = 180.0 if args.timeout is None else args.timeout
        return _start_cluster(args)
    args.timeout = 60.0 if args.timeout is None else args.timeout
    return _start(args)


if __name__ == "__main__":
    sys.exit(main())
