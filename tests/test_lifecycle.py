"""Process-level behaviour, each case in its own interpreter: exiting with
messages still queued, and memory/refcounts staying flat under load."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import unused_port

ROOT = Path(__file__).resolve().parent.parent


def run_script(
    source: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "dev", "-c", textwrap.dedent(source)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,  # a hang fails the test instead of blocking it
        check=False,
        env=env,
    )


def without_asan_quarantine() -> dict[str, str]:
    """Under AddressSanitizer, freed memory sits in a quarantine (256 MB by
    default) that makes RSS grow by design; turn it off so RSS still says
    something about our allocations."""
    env = dict(os.environ)
    if "libasan" in env.get("LD_PRELOAD", ""):
        env["ASAN_OPTIONS"] = (
            env.get("ASAN_OPTIONS", "")
            + ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
        )
    return env


def assert_clean_exit(r: subprocess.CompletedProcess[str]) -> None:
    assert r.returncode == 0, r.stderr
    for bad in ("Fatal Python error", "Segmentation", "Traceback",
                "AddressSanitizer"):
        assert bad not in r.stderr, r.stderr


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_exit_with_queued_messages_and_no_close(loop: str) -> None:
    r = run_script(
        f"""
        import asyncio, time, uvloop
        from aiokafka_c import AIOProducer
        producer = None
        async def main():
            global producer
            producer = AIOProducer({{
                "bootstrap.servers": "127.0.0.1:{unused_port()}",
                "message.timeout.ms": 600000}})
            for i in range(5000):
                producer.produce_nowait("t", b"x" * 100)
            pending = [producer.produce("t", b"y") for _ in range(100)]
            await asyncio.sleep(0.2)
            print("queued", len(producer), flush=True)
        {"uvloop.run(main())" if loop == "uvloop" else "asyncio.run(main())"}
        print("main done", flush=True)
        """
    )
    assert_clean_exit(r)
    assert "queued 5100" in r.stdout
    assert "main done" in r.stdout
    # Never silently: the undelivered messages are reported on the way out.
    assert "not closed" in r.stderr and "dropped" in r.stderr


def test_exit_while_delivering_to_a_real_broker(kafka_bootstrap: str) -> None:
    r = run_script(
        f"""
        import asyncio
        from aiokafka_c import AIOProducer
        async def main():
            p = AIOProducer({{"bootstrap.servers": "{kafka_bootstrap}",
                             "linger.ms": 50}})
            await p.produce("exit-test", b"first")
            for i in range(20000):
                p.produce_nowait("exit-test", b"x" * 200)
            p.produce_nowait("exit-test", b"cb", on_delivery=print,
                             dispatch="poll_thread")
            return p
        p = asyncio.run(main())
        print("leaving with", len(p), flush=True)
        """
    )
    assert_clean_exit(r)
    assert "leaving with" in r.stdout


def test_sync_close_flushes_without_a_loop(kafka_bootstrap: str) -> None:
    r = run_script(
        f"""
        import asyncio
        from aiokafka_c import AIOProducer
        async def main():
            p = AIOProducer({{"bootstrap.servers": "{kafka_bootstrap}",
                             "linger.ms": 100}})
            for i in range(1000):
                p.produce_nowait("sync-close", b"x")
            return p
        p = asyncio.run(main())
        p.close(30)          # blocking: no loop is running
        print("left", len(p), flush=True)
        """
    )
    assert_clean_exit(r)
    assert "left 0" in r.stdout


@pytest.mark.slow
def test_refcounts_return_to_baseline_and_rss_stays_flat(
    kafka_bootstrap: str,
) -> None:
    r = run_script(
        f"""
        import asyncio, gc, sys
        from aiokafka_c import AIOProducer

        def rss_mb():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096 / 2**20

        VALUE = b"v" * 100
        KEY = "some-key"
        TOPIC = "leak-test"
        def cb(err, msg):
            pass

        async def main():
            async with AIOProducer({{"bootstrap.servers": "{kafka_bootstrap}",
                                     "linger.ms": 5}}) as p:
                gc.collect()
                base = (sys.getrefcount(VALUE), sys.getrefcount(KEY),
                        sys.getrefcount(cb))
                await p.produce(TOPIC, VALUE)
                rss = []
                for rnd in range(10):
                    futs = [p.produce(TOPIC, VALUE, key=KEY,
                                      headers=[("h", b"1")])
                            for _ in range(10000)]
                    await asyncio.gather(*futs)
                    for _ in range(10000):
                        p.produce_nowait(TOPIC, VALUE, key=KEY,
                                         on_delivery=cb)
                    assert await p.flush(60) == 0
                    del futs
                    gc.collect()
                    rss.append(rss_mb())
                gc.collect()
                after = (sys.getrefcount(VALUE), sys.getrefcount(KEY),
                         sys.getrefcount(cb))
                print("refcounts", base, after)
                print("rss", " ".join(f"{{x:.1f}}" for x in rss))
                assert after == base, (base, after)
                growth = rss[-1] - rss[2]
                assert growth < 16, rss   # 140k messages after warm-up
        asyncio.run(main())
        print("ok")
        """,
        timeout=600,
        env=without_asan_quarantine(),
    )
    assert_clean_exit(r)
    assert "ok" in r.stdout, r.stdout + r.stderr
    print(r.stdout)
