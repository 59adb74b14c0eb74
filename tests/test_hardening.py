"""Regression tests for the defect classes of the review of e588ca5
(../shared/research/review_e588ca5.md, findings A1-A14): failed
construction, fork(), close() from anywhere, subinterpreters, callbacks
before first use, garbage collection, callback semantics, borrowed
references held across user code, and native thread leaks.

Whatever may crash or hang runs in its own interpreter (``run_child``),
with a timeout, and the child prints what it saw for the parent to check.
Native threads are counted in /proc/self/task and polled until they settle,
never waited for a fixed time.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import types
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from aiokafka_c import AIOProducer, KafkaError, Message
from tests.conftest import ReadBack
from tests.helpers import (
    RecordingHandler,
    unreachable_conf,
    unused_port,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent

# Put in front of every child script: thread counting and polling helpers.
PRELUDE = """\
import asyncio, gc, os, sys, time

def nthreads():
    return len(os.listdir("/proc/self/task"))

def settle(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.02)
    return pred()

async def asettle(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return pred()
"""


def _text(out: str | bytes | None) -> str:
    if isinstance(out, bytes):
        return out.decode(errors="replace")
    return out or ""


def run_child(
    source: str,
    *args: object,
    setup: str = "",
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs PRELUDE + setup + source in ``python -X dev -c`` with ``args``
    in sys.argv[1:], the environment passed through (the ASan leg's
    LD_PRELOAD) plus ``env``. A hang fails the test, with what the child
    printed."""
    code = PRELUDE + textwrap.dedent(setup) + textwrap.dedent(source)
    try:
        return subprocess.run(
            [sys.executable, "-X", "dev", "-c", code, *map(str, args)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"child hung (killed after {timeout} s)\n"
            f"--- stdout:\n{_text(exc.stdout)}\n--- stderr:\n"
            f"{_text(exc.stderr)}"
        )


# Python objects freed with free(), not kept in pymalloc's arenas, so that
# AddressSanitizer sees a use after free; the debug hooks also fill freed
# memory with 0xDD, so that stale reads show without ASan too.
SYSTEM_MALLOC = {"PYTHONMALLOC": "malloc_debug"}


# In a child's stderr, these mean it crashed or failed.
BAD_STDERR = ("Fatal Python error", "Segmentation", "Traceback",
              "AddressSanitizer")


def child_report(r: subprocess.CompletedProcess[str]) -> str:
    return (f"exit status {r.returncode}\n--- stdout:\n{r.stdout}\n"
            f"--- stderr (end):\n{r.stderr[-4000:]}")


def assert_clean_exit(r: subprocess.CompletedProcess[str]) -> None:
    """tests.test_lifecycle's check, reporting stdout too."""
    assert r.returncode == 0, child_report(r)
    for bad in BAD_STDERR:
        assert bad not in r.stderr, child_report(r)


def assert_threads_back_to_baseline(out: list[str]) -> None:
    """Checks the child's ``threads <baseline> <at the end>`` line."""
    [line] = [ln for ln in out if ln.startswith("threads ")]
    _, base, after = line.split()
    assert after == base, f"native threads: {base} before, {after} after"


@pytest.fixture
def conf(kafka_bootstrap: str) -> dict[str, Any]:
    return {"bootstrap.servers": kafka_bootstrap, "linger.ms": 0}


# ===========================================================================
# A1 failed construction


CTOR_CHILD = """
import types
from aiokafka_c import AIOProducer, KafkaError, KafkaException
down = {"bootstrap.servers": "127.0.0.1:1"}
CASES = {
    "retries=0": lambda: AIOProducer({**down, "retries": 0}),
    "max.in.flight=10": lambda: AIOProducer({**down, "max.in.flight": 10}),
    "idempotence+acks=1": lambda: AIOProducer(
        {**down, "enable.idempotence": True, "acks": 1}),
    "ssl-ca-missing": lambda: AIOProducer(
        {**down, "security.protocol": "ssl",
         "ssl.ca.location": "/nonexistent/ca.pem"}),
    "loop=object()": lambda: AIOProducer(down, loop=object()),
    "loop-positional": lambda: AIOProducer(down, object()),
    "unknown-property": lambda: AIOProducer({**down, "no.such.prop": 1}),
    "not-a-mapping": lambda: AIOProducer([("bootstrap.servers", "x")]),
}
unraisable = []
sys.unraisablehook = lambda u: unraisable.append(repr(u.exc_value))
"""


@pytest.mark.parametrize(
    ("case", "exc_type"),
    [
        ("retries=0", "KafkaException"),
        ("max.in.flight=10", "KafkaException"),
        ("idempotence+acks=1", "KafkaException"),
        ("ssl-ca-missing", "KafkaException"),
        ("loop=object()", "TypeError"),
        ("loop-positional", "TypeError"),
        ("unknown-property", "KafkaException"),
        ("not-a-mapping", "TypeError"),
    ],
)
def test_failed_construction_raises_cleanly(case: str, exc_type: str) -> None:
    """A1 failed construction: every failure after (or before) the native
    parts exist raises a clean exception (not a segfault, not NULL without
    an exception), reports nothing as unraisable and leaves no thread."""
    r = run_child(
        """
        base = nthreads()
        try:
            CASES[sys.argv[1]]()
        except Exception as e:
            print("raised", type(e).__name__, flush=True)
            if isinstance(e, KafkaException):
                err = e.args[0]
                print("is-kafka-error", isinstance(err, KafkaError))
                print("code", err.code() == KafkaError._INVALID_ARG)
                print("message:", err.str())
        else:
            print("raised nothing", flush=True)
        gc.collect()
        settle(lambda: nthreads() == base)
        print("threads", base, nthreads())
        print("unraisable", unraisable)
        """,
        case,
        setup=CTOR_CHILD,
        timeout=60,
    )
    assert_clean_exit(r)
    out = r.stdout.splitlines()
    assert f"raised {exc_type}" in out, r.stdout
    assert_threads_back_to_baseline(out)
    assert "unraisable []" in out, r.stdout
    if exc_type == "KafkaException":
        assert "is-kafka-error True" in out, r.stdout
    if case == "retries=0":
        assert "code True" in out, r.stdout
        [message] = [m for m in out if m.startswith("message:")]
        assert "retries" in message
    if case == "unknown-property":
        [message] = [m for m in out if m.startswith("message:")]
        assert "no.such.prop" in message


def test_many_failed_constructions_leak_nothing() -> None:
    """A1 failed construction: 200 failures in a row (a mix of every kind)
    leave the native thread count unchanged and nothing unraisable."""
    r = run_child(
        """
        base = nthreads()
        names = sorted(CASES)
        raised = {}
        for i in range(200):
            name = names[i % len(names)]
            try:
                CASES[name]()
            except Exception as e:
                kind = type(e).__name__
            else:
                kind = "nothing"
            raised.setdefault(name, set()).add(kind)
        gc.collect()
        settle(lambda: nthreads() == base)
        for name in names:
            print("case", name, sorted(raised[name]))
        print("threads", base, nthreads())
        print("unraisable", len(unraisable), unraisable[:3])
        """,
        setup=CTOR_CHILD,
        timeout=120,
    )
    assert_clean_exit(r)
    out = r.stdout.splitlines()
    for case in ("retries=0", "max.in.flight=10", "idempotence+acks=1",
                 "ssl-ca-missing", "unknown-property"):
        assert f"case {case} ['KafkaException']" in out, r.stdout
    for case in ("loop=object()", "loop-positional", "not-a-mapping"):
        assert f"case {case} ['TypeError']" in out, r.stdout
    assert_threads_back_to_baseline(out)
    assert "unraisable 0 []" in out, r.stdout


def test_subclass_with_its_own_init_signature(
    kafka_bootstrap: str, topic: str, read_back: ReadBack
) -> None:
    """A1 failed construction (subclass case): construction happens in
    __init__, so a subclass adding a constructor argument works and its
    instances produce."""
    r = run_child(
        """
        from aiokafka_c import AIOProducer
        BOOT, TOPIC = sys.argv[1:3]

        class P(AIOProducer):
            def __init__(self, cfg, name):
                super().__init__(cfg)
                self.name = name

        async def main():
            p = P({"bootstrap.servers": BOOT}, "orders")
            print("name", p.name, isinstance(p, AIOProducer), flush=True)
            msg = await asyncio.wait_for(p.produce(TOPIC, b"from-sub"), 30)
            print("delivered", msg.error() is None, msg.offset(), flush=True)
            await asyncio.wait_for(p.close(), 30)
        asyncio.run(main())
        """,
        kafka_bootstrap,
        topic,
        timeout=60,
    )
    assert_clean_exit(r)
    assert "name orders True" in r.stdout, r.stdout
    assert "delivered True 0" in r.stdout, r.stdout
    assert [m.value() for m in read_back(topic, 1)] == [b"from-sub"]


class _PlainMapping(Mapping[str, Any]):
    """A Mapping that is not a dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["MappingProxyType", "Mapping subclass"])
async def test_config_may_be_any_mapping(
    kind: str, conf: dict[str, Any], topic: str, read_back: ReadBack
) -> None:
    """A17 config type: any Mapping is accepted as the config (the stub
    says Mapping[str, Any]), not only a dict."""
    mapping: Mapping[str, Any] = (
        types.MappingProxyType(dict(conf))
        if kind == "MappingProxyType"
        else _PlainMapping(dict(conf))
    )
    async with AIOProducer(mapping) as p:
        msg = await asyncio.wait_for(p.produce(topic, b"mapped"), 30)
        assert msg.error() is None
    assert [m.value() for m in read_back(topic, 1)] == [b"mapped"]


# ===========================================================================
# A2 fork()


# MODE "use": the os.fork() child calls everything from a new loop, makes a
# new producer, then sys.exit(0); "nothing": the child calls nothing and
# runs off the end of the script; "multiprocessing": a 'fork' Process whose
# target calls everything with no loop running, then makes a new producer.
FORK_CHILD = """
import multiprocessing, signal, threading, warnings
warnings.filterwarnings("ignore", category=DeprecationWarning,
                        message=".*fork.*")
from aiokafka_c import AIOProducer
BOOT, TOPIC, MODE = sys.argv[1:4]

# The parent's loop runs in a thread; the main thread forks.
loop = asyncio.new_event_loop()
loop_thread = threading.Thread(target=loop.run_forever, daemon=True)
loop_thread.start()

def on_loop(coro):
    return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

async def make():
    return AIOProducer({"bootstrap.servers": BOOT})

async def produce(value):
    msg = await p.produce(TOPIC, value)
    assert await p.flush(30) == 0
    return msg.offset()

async def close():
    await p.close()

p = on_loop(make())
print("parent before", on_loop(produce(b"parent-before")), flush=True)

def try_calls(where):
    calls = {
        "produce": lambda: p.produce(TOPIC, b"never"),
        "produce_nowait": lambda: p.produce_nowait(TOPIC, b"never"),
        "flush": lambda: p.flush(),
        "purge": lambda: p.purge(),
    }
    for name, call in calls.items():
        try:
            call()
        except RuntimeError as e:
            says_fork = "fork" in str(e)
            print(f"child {where} {name}: RuntimeError fork={says_fork}",
                  flush=True)
        except BaseException as e:
            print(f"child {where} {name}: {type(e).__name__}: {e}", flush=True)
        else:
            print(f"child {where} {name}: no error", flush=True)

async def new_producer_in_child():
    async with AIOProducer({"bootstrap.servers": BOOT}) as q:
        msg = await asyncio.wait_for(q.produce(TOPIC, b"child-new"), 30)
        print("child new producer delivered", msg.error() is None, flush=True)

async def child_in_loop():
    try_calls("in-loop")
    await asyncio.wait_for(p.close(), 10)
    print("child close done", flush=True)
    await new_producer_in_child()

def child_sync():
    try_calls("no-loop")
    closing = p.close()       # no loop here: must not block, nor raise
    async def wait():
        await asyncio.wait_for(closing, 10)
    asyncio.run(wait())
    print("child close done", flush=True)
    asyncio.run(new_producer_in_child())

def in_child():
    signal.alarm(60)   # a hung child must not outlive the test
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        # ASan after fork(): the dead threads' stacks are handed out again
        # (glibc's stack cache) with their old redzones still in ASan's
        # shadow memory, which then reports false stack overflows. A
        # default stack size the cached stacks do not have avoids reuse.
        import ctypes
        libc = ctypes.CDLL(None)
        attr = ctypes.create_string_buffer(128)   # >= sizeof(pthread_attr_t)
        libc.pthread_attr_init(attr)
        libc.pthread_attr_setstacksize(attr, ctypes.c_size_t(9 << 20))
        assert libc.pthread_setattr_default_np(attr) == 0

def parent_rest(status):
    print("child exit", status, flush=True)
    print("parent after", on_loop(produce(b"parent-after")), flush=True)
    on_loop(close())
    loop.call_soon_threadsafe(loop.stop)
    loop_thread.join(30)
    loop.close()
    print("parent done", flush=True)

sys.stdout.flush()
sys.stderr.flush()
if MODE == "multiprocessing":
    def target():
        in_child()
        child_sync()
    proc = multiprocessing.get_context("fork").Process(target=target)
    proc.start()
    proc.join(45)
    if proc.is_alive():
        print("child hung", flush=True)
        proc.kill()
        proc.join()
    parent_rest(proc.exitcode)
else:
    pid = os.fork()
    if pid == 0:
        in_child()
        if MODE == "use":
            asyncio.run(child_in_loop())
            sys.exit(0)
        # MODE == "nothing": fall through to the end of the script.
    else:
        deadline = time.monotonic() + 45
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                print("child hung", flush=True)
                os.kill(pid, 9)
                done, status = os.waitpid(pid, 0)
                break
            time.sleep(0.05)
        parent_rest(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.parametrize("mode", ["use", "nothing", "multiprocessing"])
def test_fork_child_with_inherited_producer(
    mode: str, kafka_bootstrap: str, topic: str, read_back: ReadBack
) -> None:
    """A2 fork(): a child that inherited a live producer gets a clear
    RuntimeError naming fork from produce/produce_nowait/flush/purge, a
    close() that neither blocks nor raises, a working new producer, and a
    clean normal exit (also when it calls nothing at all); the parent goes
    on producing."""
    r = run_child(FORK_CHILD, kafka_bootstrap, topic, mode, timeout=150)
    assert_clean_exit(r)
    out = r.stdout.splitlines()
    assert "child hung" not in out, r.stdout + r.stderr
    assert "child exit 0" in out, r.stdout + r.stderr
    assert "parent done" in out, r.stdout
    expected = [b"parent-before", b"parent-after"]
    if mode != "nothing":
        where = "in-loop" if mode == "use" else "no-loop"
        for name in ("produce", "produce_nowait", "flush", "purge"):
            line = f"child {where} {name}: RuntimeError fork=True"
            assert line in out, r.stdout
        assert "child close done" in out, r.stdout
        assert "child new producer delivered True" in out, r.stdout
        expected.insert(1, b"child-new")
    got = read_back(topic, len(expected))
    assert [m.value() for m in got] == expected


# ===========================================================================
# A3 / A4 / A5 close() from anywhere


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_close_from_a_poll_thread_callback(
    loop_kind: str, kafka_bootstrap: str, topic: str
) -> None:
    """A3 close() from a dispatch="poll_thread" callback: it returns an
    awaitable without blocking (today: deadlock), then close() awaited on
    the loop completes and the producer ends up closed."""
    r = run_child(
        """
        import uvloop
        from aiokafka_c import AIOProducer
        BOOT, TOPIC, LOOP = sys.argv[1:4]

        async def main():
            loop = asyncio.get_running_loop()
            p = AIOProducer({"bootstrap.servers": BOOT})
            from_cb = loop.create_future()

            def cb(err, msg):
                try:
                    res = ("returned", p.close())
                except BaseException as e:
                    res = ("raised", e)
                loop.call_soon_threadsafe(from_cb.set_result, res)

            p.produce_nowait(TOPIC, b"x", on_delivery=cb,
                             dispatch="poll_thread")
            how, what = await asyncio.wait_for(from_cb, 20)
            print("in callback:", how, hasattr(what, "__await__"),
                  flush=True)
            await asyncio.wait_for(p.close(), 20)
            print("loop close done", flush=True)
            if how == "returned":
                await asyncio.wait_for(asyncio.ensure_future(what), 20)
                print("callback's awaitable done", flush=True)
            try:
                p.produce(TOPIC, b"y")
            except RuntimeError as e:
                print("produce after close: RuntimeError", flush=True)
            print("len", len(p))
        (uvloop.run if LOOP == "uvloop" else asyncio.run)(main())
        """,
        kafka_bootstrap,
        topic,
        loop_kind,
        timeout=60,
    )
    assert_clean_exit(r)
    out = r.stdout.splitlines()
    assert "in callback: returned True" in out, r.stdout
    assert "loop close done" in out, r.stdout
    assert "callback's awaitable done" in out, r.stdout
    assert "produce after close: RuntimeError" in out, r.stdout
    assert "len 0" in out, r.stdout


@pytest.mark.parametrize("order", ["threads-first", "loop-first"])
def test_close_from_two_threads_and_the_loop(order: str) -> None:
    """A4 close() from two plain threads at once while the loop awaits its
    own close(): all three return/complete, each with its own result (today
    the loop's close future is never resolved when the threads came first,
    and the threads get the loop's future when the loop came first)."""
    r = run_child(
        """
        import threading
        from aiokafka_c import AIOProducer
        BOOT, ORDER = sys.argv[1:3]

        async def main():
            # Undeliverable messages keep every close() busy for a while,
            # so the three overlap.
            p = AIOProducer({"bootstrap.servers": BOOT,
                             "message.timeout.ms": 3000})
            for i in range(100):
                p.produce_nowait("t", b"x")
            results = {}
            entering = [threading.Event() for _ in range(2)]

            def closer(i):
                entering[i].set()
                try:
                    results[i] = ("returned", p.close())
                except BaseException as e:
                    results[i] = ("raised", e)

            threads = [threading.Thread(target=closer, args=(i,))
                       for i in range(2)]
            if ORDER == "loop-first":
                closing = p.close()
            for t in threads:
                t.start()
            if ORDER == "threads-first":
                await asettle(lambda: all(e.is_set() for e in entering))
                await asyncio.sleep(0.2)  # let them get into close()
                closing = p.close()
            await asyncio.wait_for(closing, 30)
            print("loop close done", flush=True)
            await asettle(lambda: not any(t.is_alive() for t in threads),
                          30)
            print("closers", [(results[i][0], results[i][1] is closing)
                              for i in sorted(results)], flush=True)
            try:
                p.produce("t", b"y")
            except RuntimeError:
                print("produce after close: RuntimeError", flush=True)
        asyncio.run(main())
        print("exit", flush=True)
        """,
        f"127.0.0.1:{unused_port()}",
        order,
        timeout=90,
    )
    assert_clean_exit(r)
    out = r.stdout.splitlines()
    assert "loop close done" in out, r.stdout
    # (how close() ended in each thread, whether it returned the loop's
    # own awaitable): both returned, neither got the loop's.
    assert "closers [('returned', False), ('returned', False)]" in out, (
        r.stdout
    )
    assert "produce after close: RuntimeError" in out, r.stdout
    assert "exit" in out


@pytest.mark.asyncio
async def test_each_close_call_gets_its_own_awaitable(
    conf: dict[str, Any], topic: str
) -> None:
    """A5 shared close future: two close() calls on the loop return two
    distinct awaitables, and both complete."""
    p = AIOProducer(conf)
    await p.produce(topic, b"x")
    p.produce_nowait(topic, b"y")
    a = p.close()
    b = p.close()
    try:
        assert a is not b
    finally:
        await asyncio.wait_for(asyncio.gather(a, b), 30)
    assert len(p) == 0


@pytest.mark.asyncio
async def test_close_after_a_timed_out_close_completes() -> None:
    """A5 shared close future: a wait_for(close(), tiny) that times out
    cancels only its own awaitable; a later close() completes normally
    instead of raising CancelledError."""
    p = AIOProducer(unreachable_conf(**{"message.timeout.ms": 4000}))
    for _ in range(10):
        p.produce_nowait("t", b"undeliverable")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(p.close(), 0.001)
    try:
        await asyncio.wait_for(p.close(), 30)
    except asyncio.CancelledError:
        pytest.fail("the second close() was cancelled by the first wait_for")
    assert len(p) == 0
    with pytest.raises(RuntimeError, match="closed"):
        p.produce("t", b"x")


@pytest.mark.asyncio
async def test_close_during_flush(conf: dict[str, Any], topic: str) -> None:
    """A4/A5 close state machine: a close() started while a flush() is
    pending completes, and so does the flush."""
    p = AIOProducer({**conf, "linger.ms": 50})
    for i in range(1000):
        p.produce_nowait(topic, b"%d" % i)
    f = p.flush()
    c = p.close()
    left, _ = await asyncio.wait_for(asyncio.gather(f, c), 60)
    assert left == 0
    assert len(p) == 0


def test_sync_close_without_any_loop(conf: dict[str, Any]) -> None:
    """A4 sync close: close() outside any loop (no loop ever) closes for
    good: produce afterwards raises RuntimeError saying closed. (Passes on
    e588ca5.)"""
    p = AIOProducer(conf)
    p.close()

    async def produce() -> None:
        p.produce_nowait("t", b"x")

    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(produce())
    assert len(p) == 0


# ===========================================================================
# A7 subinterpreters


SUBINTERP_CHILD = """
import ast, json, tempfile
WHO = "main"
try:
    import _interpreters as interp                      # 3.13+
    make_legacy = lambda: interp.create("legacy")
    make_isolated = lambda: interp.create("isolated")
except ImportError:
    try:
        import _xxsubinterpreters as interp             # 3.10 - 3.12
    except ImportError:
        print("SKIP no subinterpreter module")
        sys.exit(0)
    if sys.version_info >= (3, 12):
        make_legacy = lambda: interp.create(isolated=False)
        make_isolated = lambda: interp.create()         # own GIL
    else:
        make_legacy = interp.create                     # shared GIL
        make_isolated = None

SUB = '''
WHO = "sub"
import sys
out = {}
try:
    import aiokafka_c
except ImportError as e:
    out["import"] = "ImportError"
else:
    out["import"] = "ok"
    if not IMPORT_ONLY:
        import asyncio
        async def main():
            loop = asyncio.get_running_loop()
            got = loop.create_future()
            def cb(err, msg):
                # "import" resolves in the interpreter the thread runs in
                # (sys.modules would be this one's whatever the thread).
                import __main__
                who = __main__.__dict__.get("WHO")
                loop.call_soon_threadsafe(got.set_result, [who, err is None])
            p = aiokafka_c.AIOProducer({"test.mock.num.brokers": "1"})
            p.produce_nowait("t", b"x", on_delivery=cb, dispatch="poll_thread")
            out["callback"] = await asyncio.wait_for(got, 30)
            await asyncio.wait_for(p.close(), 30)
            out["closed"] = True
        try:
            asyncio.run(main())
        except BaseException as e:
            out["error"] = repr(e)
with open(PATH, "w") as f:
    f.write(repr(out))
'''

def run_in(make, import_only):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "out.json")
        try:
            iid = make()
        except Exception as e:
            return {"create": repr(e)}
        try:
            code = f"PATH = {path!r}; IMPORT_ONLY = {import_only}\\n" + SUB
            failed = interp.run_string(iid, code)
        finally:
            interp.destroy(iid)
        if not os.path.exists(path):
            return {"run": repr(failed)}
        with open(path) as f:
            return ast.literal_eval(f.read())

if make_isolated is not None:
    print("isolated", json.dumps(run_in(make_isolated, True)), flush=True)
print("legacy", json.dumps(run_in(make_legacy, False)), flush=True)
print("main WHO", WHO)
"""


def test_subinterpreter_callbacks_run_in_their_interpreter() -> None:
    """A7 subinterpreters: a producer made in a (shared-GIL) subinterpreter
    runs its poll-thread callbacks in that interpreter (they see its
    __main__), and an own-GIL interpreter refuses the import with a clean
    ImportError."""
    r = run_child(SUBINTERP_CHILD, timeout=90)
    if r.stdout.startswith("SKIP "):
        pytest.skip(r.stdout.strip()[5:])
    assert_clean_exit(r)
    results = {
        line.split(" ", 1)[0]: line.split(" ", 1)[1]
        for line in r.stdout.splitlines()
        if line.startswith(("isolated ", "legacy "))
    }
    legacy = json.loads(results["legacy"])
    assert legacy.get("import") == "ok", legacy
    assert "error" not in legacy, legacy
    assert legacy.get("callback") == ["sub", True], legacy
    assert legacy.get("closed") is True, legacy
    if sys.version_info >= (3, 12):
        assert json.loads(results["isolated"]) == {"import": "ImportError"}
    assert "main WHO main" in r.stdout


# ===========================================================================
# A9 callbacks live from construction


@pytest.mark.asyncio
async def test_error_and_stats_callbacks_run_before_first_use() -> None:
    """A9 callbacks before first use: a producer made inside a running
    loop and never used delivers the connection error to error_cb and
    statistics to stats_cb, on the loop thread."""
    loop_thread = threading.get_ident()
    errors: list[tuple[Any, int]] = []
    stats: list[tuple[Any, int]] = []
    p = AIOProducer(
        {
            "bootstrap.servers": f"127.0.0.1:{unused_port()}",
            "reconnect.backoff.max.ms": 100,
            "error_cb": lambda e: errors.append((e, threading.get_ident())),
            "stats_cb": lambda s: stats.append((s, threading.get_ident())),
            "statistics.interval.ms": 100,
        }
    )
    try:
        await wait_until(
            lambda: errors and stats, timeout=15, what="error_cb and stats_cb"
        )
    finally:
        await p.close(1)
    codes = {e.code() for e, _ in errors if isinstance(e, KafkaError)}
    assert codes & {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}
    assert all(isinstance(e, KafkaError) for e, _ in errors)
    assert all(t == loop_thread for _, t in errors + stats)
    assert isinstance(stats[0][0], str)
    assert json.loads(stats[0][0])["type"] == "producer"


# ===========================================================================
# A10 / A12 garbage collection


@pytest.mark.parametrize("cycle", ["error_cb", "stats_cb", "on_delivery"])
def test_producer_in_a_reference_cycle_is_collected(
    cycle: str, kafka_bootstrap: str, topic: str
) -> None:
    """A10 uncollectable producer: a producer in a reference cycle through
    its own callbacks (bound-method error_cb / stats_cb, or an on_delivery
    closure after delivery) is collected by gc, and its native threads
    go away."""
    r = run_child(
        """
        import weakref
        from aiokafka_c import AIOProducer
        BOOT, TOPIC, CYCLE = sys.argv[1:4]

        class Holder:
            def __init__(self):
                conf = {"bootstrap.servers": BOOT}
                if CYCLE == "error_cb":
                    conf["error_cb"] = self.on_event
                else:
                    conf["stats_cb"] = self.on_event
                    conf["statistics.interval.ms"] = 100
                self.p = AIOProducer(conf)
            def on_event(self, what):
                pass

        def closure_cycle():
            p = AIOProducer({"bootstrap.servers": BOOT})
            def cb(err, msg):
                cb.seen = (p, err)
            return p, cb

        async def main():
            base = nthreads()
            if CYCLE == "on_delivery":
                p, cb = closure_cycle()
                p.produce_nowait(TOPIC, b"x", on_delivery=cb)
                print("flushed", await p.flush(30), flush=True)
                ref = weakref.ref(p)
                del p, cb
            else:
                h = Holder()
                msg = await h.p.produce(TOPIC, b"x")
                print("flushed", await h.p.flush(30), flush=True)
                ref = weakref.ref(h.p)
                del h, msg
            print("more threads while alive", nthreads() > base, flush=True)
            def gone():
                gc.collect()
                return ref() is None and nthreads() == base
            await asettle(gone)
            print("collected", ref() is None, flush=True)
            print("threads", base, nthreads(), flush=True)
        asyncio.run(main())
        """,
        kafka_bootstrap,
        topic,
        cycle,
        timeout=60,
    )
    assert_clean_exit(r)
    out = r.stdout.splitlines()
    assert "flushed 0" in out, r.stdout
    assert "more threads while alive True" in out, r.stdout
    assert "collected True" in out, r.stdout
    assert_threads_back_to_baseline(out)


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["cancel", "wait_for"])
async def test_cancelled_flush_futures_are_released(how: str) -> None:
    """A12 cancelled flush() futures kept: 2000 flush futures cancelled
    (directly or by wait_for's timeout) while messages are still pending
    are released, not kept until everything is delivered."""
    p = AIOProducer(unreachable_conf(**{"message.timeout.ms": 120000}))
    try:
        for _ in range(5):
            p.produce_nowait("t", b"pending")
        futs = [p.flush() for _ in range(2000)]
        refs = [weakref.ref(f) for f in futs]
        if how == "cancel":
            for f in futs:
                f.cancel()
            del f
        else:
            results = await asyncio.gather(
                *(asyncio.wait_for(f, 0.001) for f in futs),
                return_exceptions=True,
            )
            assert all(
                isinstance(x, asyncio.TimeoutError) for x in results
            )
            del results
        del futs

        def released() -> bool:
            gc.collect()
            return all(r() is None for r in refs)

        try:
            await wait_until(released, timeout=10, what="futures released")
        except AssertionError:
            alive = sum(r() is not None for r in refs)
            pytest.fail(f"{alive} of 2000 cancelled flush futures kept")
        assert len(p) == 5  # still pending: released before delivery
    finally:
        p.purge()
        await asyncio.wait_for(p.close(1), 30)


# ===========================================================================
# A13 / A14 callbacks behave like loop callbacks


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
@pytest.mark.parametrize("exc", ["SystemExit", "KeyboardInterrupt"])
def test_exit_exceptions_in_on_delivery_propagate(
    exc: str, loop_kind: str, kafka_bootstrap: str, topic: str
) -> None:
    """A13 SystemExit/KeyboardInterrupt swallowed: raised in an on_delivery
    callback (dispatch="loop") they stop the loop and leave asyncio.run
    like from a call_soon callback, instead of being logged."""
    r = run_child(
        """
        import uvloop
        from aiokafka_c import AIOProducer
        BOOT, TOPIC, EXC, LOOP = sys.argv[1:5]

        async def main():
            p = AIOProducer({"bootstrap.servers": BOOT})
            def cb(err, msg):
                print("callback ran", flush=True)
                raise SystemExit(3) if EXC == "SystemExit" \\
                    else KeyboardInterrupt
            try:
                p.produce_nowait(TOPIC, b"x", on_delivery=cb)
                # Nothing else happens: the callback's exception alone must
                # stop the loop, long before this sleep ends.
                await asyncio.sleep(20)
                print("loop still running after", EXC, flush=True)
            finally:
                await p.close()
        try:
            (uvloop.run if LOOP == "uvloop" else asyncio.run)(main())
        except KeyboardInterrupt:
            print("KeyboardInterrupt at top level", flush=True)
        print("after run", flush=True)
        """,
        kafka_bootstrap,
        topic,
        exc,
        loop_kind,
        timeout=60,
    )
    report = child_report(r)
    assert "callback ran" in r.stdout, report
    assert "loop still running" not in r.stdout, report
    if exc == "SystemExit":
        assert r.returncode == 3, report
        assert "after run" not in r.stdout, report
    else:
        assert "KeyboardInterrupt at top level" in r.stdout, report
        assert r.returncode == 0, report
    for bad in BAD_STDERR:  # also: not logged with a traceback
        assert bad not in r.stderr, report


@pytest.mark.asyncio
async def test_callback_error_is_logged_and_loop_goes_on(
    conf: dict[str, Any], topic: str, read_back: ReadBack
) -> None:
    """A13 callback exceptions: a ValueError raised in on_delivery is
    logged to the "aiokafka_c" logger at ERROR with its traceback, and the
    loop and later deliveries go on. (Passes on e588ca5.)"""
    logger = logging.getLogger("aiokafka_c")
    handler = RecordingHandler()
    logger.addHandler(handler)
    later: list[bytes | None] = []

    def bad(err: KafkaError | None, msg: Message) -> None:
        raise ValueError("boom in on_delivery")

    try:
        async with AIOProducer(conf) as p:
            p.produce_nowait(topic, b"1", on_delivery=bad)
            assert await p.flush(30) == 0
            p.produce_nowait(
                topic, b"2", on_delivery=lambda e, m: later.append(m.value())
            )
            msg = await asyncio.wait_for(p.produce(topic, b"3"), 30)
            assert msg.error() is None
            await wait_until(lambda: later, what="the later callback")
    finally:
        logger.removeHandler(handler)
    assert later == [b"2"]
    errors = [r for r in handler.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in handler.records]
    [rec] = errors
    assert rec.levelno == logging.ERROR
    assert rec.exc_info is not None
    assert isinstance(rec.exc_info[1], ValueError)
    assert rec.exc_info[2] is not None  # the traceback
    assert len(read_back(topic, 3)) == 3


CALLER = contextvars.ContextVar[str]("CALLER")


@pytest.mark.asyncio
@pytest.mark.parametrize("dispatch", ["loop", "poll_thread"])
async def test_on_delivery_runs_in_the_callers_context(
    dispatch: str, conf: dict[str, Any], topic: str
) -> None:
    """A14 contextvars: on_delivery sees the context of the produce_nowait()
    call (a var set in the calling task), not the poll thread's empty one,
    for both dispatch modes."""
    loop = asyncio.get_running_loop()
    seen: asyncio.Future[str] = loop.create_future()

    def cb(err: KafkaError | None, msg: Message) -> None:
        value = CALLER.get("unset")
        loop.call_soon_threadsafe(
            lambda: seen.done() or seen.set_result(value)
        )

    async with AIOProducer(conf) as p:

        async def caller() -> None:
            CALLER.set("caller")
            p.produce_nowait(topic, b"x", on_delivery=cb, dispatch=dispatch)

        await asyncio.create_task(caller())
        assert CALLER.get("unset") == "unset"  # only the task had it set
        value = await asyncio.wait_for(seen, 30)
    assert value == "caller"


# ===========================================================================
# A8 borrowed references held across user code


@pytest.mark.skipif(
    sys.version_info < (3, 12), reason="__buffer__ (PEP 688) is 3.12+"
)
@pytest.mark.parametrize("how", ["clear", "shrink", "replace"])
def test_header_value_buffer_mutating_the_headers(
    how: str, kafka_bootstrap: str, topic: str
) -> None:
    """A8 borrowed references (headers): a header value whose __buffer__
    mutates the headers list during produce gives a clean exception or a
    success, never a use-after-free."""
    r = run_child(
        """
        from aiokafka_c import AIOProducer
        BOOT, TOPIC, HOW = sys.argv[1:4]

        class Evil:
            def __init__(self, headers):
                self.headers = headers
            def __buffer__(self, flags):
                h = self.headers
                if HOW == "clear":
                    h.clear()
                elif HOW == "shrink":
                    del h[2:]
                else:
                    h[:] = REPLACEMENT
                self.headers = None
                return memoryview(b"x")

        REPLACEMENT = [("r" * 20 + str(i), b"w" * 50) for i in range(9)]

        async def main():
            async with AIOProducer({"bootstrap.servers": BOOT}) as p:
                headers = [("a" * 20 + str(i), ("v" * 30 + str(i)).encode())
                           for i in range(5)]
                headers.insert(1, ("evil" + "-name" * 5, Evil(headers)))
                # Every pair the headers list ever held (the list before or
                # after the change may be sent, or what was read of each).
                known = dict(headers + REPLACEMENT)
                known["evil" + "-name" * 5] = b"x"
                try:
                    msg = await asyncio.wait_for(
                        p.produce(TOPIC, b"x", headers=headers), 30)
                    print("outcome ok", msg.error() is None, flush=True)
                    # Pairs read from freed memory show up as unknown or
                    # repeated pairs.
                    sent = msg.headers() or []
                    valid = (len({n for n, _ in sent}) == len(sent)
                             and all(known.get(n) == v for n, v in sent))
                    print("headers valid", valid, sent if not valid else "",
                          flush=True)
                except Exception as e:
                    print("outcome", type(e).__name__, flush=True)
        asyncio.run(main())
        print("exit", flush=True)
        """,
        kafka_bootstrap,
        topic,
        how,
        timeout=60,
        env=SYSTEM_MALLOC,
    )
    assert_clean_exit(r)
    out = r.stdout.splitlines()
    outcome = [ln for ln in out if ln.startswith("outcome")]
    assert outcome in (["outcome ok True"], ["outcome TypeError"],
                       ["outcome RuntimeError"], ["outcome ValueError"]), (
        r.stdout
    )
    if outcome == ["outcome ok True"]:
        assert "headers valid True " in out, r.stdout
    assert "exit" in out


@pytest.mark.parametrize("how", ["clear", "grow", "replace"])
@pytest.mark.parametrize("via", ["logger.__getattr__", "int.__str__"])
def test_config_value_mutating_the_config(via: str, how: str) -> None:
    """A8 borrowed references (config): a logger whose __getattr__, or an
    int subclass value whose __str__, mutates the config dict while it is
    read (clears it, grows it, or replaces every key's value by an equal
    new object) gives a clean exception or a success, never a
    use-after-free (a crash, or a property name read from freed memory)."""
    r = run_child(
        """
        from aiokafka_c import AIOProducer, KafkaException
        VIA, HOW, BOOT = sys.argv[1:4]
        done = []

        def fresh(s):   # a new str object: the dict holds its only ref
            return "".join(list(s))

        def mutate(cfg):
            if done:
                return
            done.append(1)
            if HOW == "clear":
                cfg.clear()
            elif HOW == "grow":   # valid properties, enough for a resize
                for name in ("socket.timeout.ms", "request.timeout.ms",
                             "retry.backoff.ms", "queue.buffering.max.ms",
                             "metadata.max.age.ms",
                             "reconnect.backoff.ms"):
                    cfg[fresh(name)] = fresh(str(1000 + len(name)))
            else:                 # equal values, but new objects
                for k in list(cfg):
                    v = cfg[k]
                    if isinstance(v, EvilLogger):
                        cfg[k] = EvilLogger(None)
                    elif isinstance(v, int):
                        cfg[k] = type(v)(int(v))
                    else:
                        cfg[k] = fresh(v)

        class EvilLogger:
            def __init__(self, cfg):
                self.cfg = cfg
            def __getattr__(self, name):
                cfg, self.cfg = self.cfg, None
                if cfg is not None:
                    mutate(cfg)
                return lambda *args, **kwargs: None

        class EvilInt(int):
            def __str__(self):
                mutate(CFG)
                return str(int(self))
            __repr__ = __str__

        CFG = {}
        if VIA == "int.__str__":
            CFG[fresh("linger.ms")] = EvilInt(5000)
        else:
            CFG[fresh("logger")] = EvilLogger(CFG)
        CFG[fresh("client.id")] = fresh("c" * 40 + str(os.getpid()))
        CFG[fresh("bootstrap.servers")] = fresh(BOOT)
        CFG[fresh("batch.num.messages")] = EvilInt(1000)
        CFG[fresh("message.timeout.ms")] = 300000 + len(CFG)
        try:
            p = AIOProducer(CFG)
        except KafkaException as e:
            print("outcome KafkaException", ascii(str(e)), flush=True)
        except Exception as e:
            print("outcome", type(e).__name__, flush=True)
        else:
            print("outcome ok", flush=True)
            p.close(5)
        del CFG
        gc.collect()
        print("exit", flush=True)
        """,
        via,
        how,
        f"127.0.0.1:{unused_port()}",
        timeout=60,
        env=SYSTEM_MALLOC,
    )
    assert_clean_exit(r)
    out = r.stdout.splitlines()
    [outcome] = [ln for ln in out if ln.startswith("outcome")]
    kind = outcome.split()[1]
    assert kind in ("ok", "TypeError", "ValueError", "RuntimeError",
                    "KafkaException"), r.stdout
    if kind == "KafkaException":
        # A property name read from freed memory shows as junk bytes.
        assert "\\x" not in outcome and "\\u" not in outcome, outcome
    assert "exit" in out


# ===========================================================================
# Native thread leaks (A1 / A10 / A11 teardown paths)


@pytest.mark.parametrize("end", ["closed", "dropped"])
def test_fifty_producers_leave_no_threads(
    end: str, kafka_bootstrap: str, topic: str
) -> None:
    """Thread leak: 50 producers in sequence, each producing one message
    to the broker and then closed (or dropped without close), leave the
    native thread count at its baseline."""
    r = run_child(
        """
        from aiokafka_c import AIOProducer
        BOOT, TOPIC, END = sys.argv[1:4]

        async def main():
            base = nthreads()
            delivered = 0
            for i in range(50):
                p = AIOProducer({"bootstrap.servers": BOOT, "linger.ms": 0})
                msg = await asyncio.wait_for(p.produce(TOPIC, b"%d" % i), 30)
                delivered += msg.error() is None
                if END == "closed":
                    await asyncio.wait_for(p.close(), 30)
                del p, msg
            print("delivered", delivered, flush=True)
            await asettle(lambda: gc.collect() >= 0 and nthreads() == base)
            print("threads", base, nthreads(), flush=True)
        asyncio.run(main())
        """,
        kafka_bootstrap,
        topic,
        end,
        timeout=240,
    )
    assert_clean_exit(r)
    out = r.stdout.splitlines()
    assert "delivered 50" in out, r.stdout
    assert_threads_back_to_baseline(out)
