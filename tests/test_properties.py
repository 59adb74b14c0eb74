"""Property-based tests (hypothesis): random configs and random produce()
arguments against the C extension, looking for crashes (segfaults, ASan
reports), hangs, InvalidStateError, silently dropped or changed messages.
Only clean exceptions or completed futures are allowed.

Run (default profile "ci": fixed examples, well under a minute)::

    python -m pytest tests/test_properties.py

Long local runs (thousands of random examples per test, shrinking, an
example database in the temp dir)::

    python -m pytest -p tests._hyp --hypothesis-profile=dev \\
        tests/test_properties.py -s
    # or, without the plugin:
    AIOKAFKA_C_HYPOTHESIS_PROFILE=dev python -m pytest \\
        tests/test_properties.py -s

Under AddressSanitizer the "asan" profile (fewer examples) is chosen
automatically when libasan is in LD_PRELOAD::

    LD_PRELOAD=$(gcc -print-file-name=libasan.so) \\
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \\
        python -m pytest tests/test_properties.py -p no:cacheprovider

How it runs: each test function starts one fresh Python process (this file
run as a script) that runs the hypothesis search, and every example runs
in a process forked from it.  A segfault, an abort or a hang (the example
is killed after a time bound, after a faulthandler dump of its threads) is
then an ordinary failing example: hypothesis reports it with the drawn
inputs, which print as Python source, and the pytest session survives.
The fork's stderr (ASan report, faulthandler traceback) is attached to the
failure.  The searches of the selected tests run concurrently, at most
one per CPU (AIOKAFKA_C_HYP_PARALLEL=n to change that): their examples
mostly wait on timers and the mock cluster.  Set AIOKAFKA_C_HYP_NOFORK=1
to run examples in-process (for a debugger); run
``python tests/test_properties.py <name>`` to run one search directly
(names: see HYP_TESTS at the bottom).  Known bugs (and former crashes)
are explicit ``@example``s, checked first on every run.

The config properties come from librdkafka itself at run time
(rd_kafka_conf_properties_show() and rd_kafka_conf_dump() through ctypes,
on the very librdkafka the extension is linked to), and a ctypes
rd_kafka_conf_set() on a fresh conf is the oracle for which config values
must be refused.  Properties that would load code, run commands or read
real files are never drawn (see EXCLUDED and the *.location handling);
brokers are librdkafka's mock cluster (test.mock.num.brokers) or an
unused loopback port, never a DNS name.
"""

from __future__ import annotations

import array
import asyncio
import collections
import ctypes
import ctypes.util
import faulthandler
import gc
import logging
import os
import pickle
import re
import select
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import traceback
import types
import warnings
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script
    sys.path.insert(1, ROOT)

import pytest  # noqa: E402
from hypothesis import example, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import aiokafka_c  # noqa: E402
from aiokafka_c import (  # noqa: E402
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    AIOProducer,
    KafkaError,
    KafkaException,
    Message,
)
from tests import _hyp  # noqa: E402
from tests.helpers import RecordingHandler, unused_port  # noqa: E402

UNDER_ASAN = _hyp.UNDER_ASAN
SLOW = 4.0 if UNDER_ASAN else 1.0
#: Slack on every time bound (scheduling, mock cluster start, ASan).
MARGIN = 5.0 * SLOW
NOFORK = os.environ.get("AIOKAFKA_C_HYP_NOFORK", "") not in ("", "0")
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

# --------------------------------------------------------------------------
# librdkafka, through ctypes: the real property table, and conf_set as an
# oracle.


def _librdkafka_path() -> str:
    """The librdkafka the extension is linked to (from /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "librdkafka" in os.path.basename(path):
                    return path
    except OSError:
        pass
    return ctypes.util.find_library("rdkafka") or "librdkafka.so.1"


class Prop:
    """One librdkafka configuration property."""

    __slots__ = ("name", "scope", "kind", "default", "lo", "hi", "values")

    def __init__(self, name: str, scope: str, kind: str, default: str,
                 lo: float | None = None, hi: float | None = None,
                 values: tuple[str, ...] = ()) -> None:
        self.name, self.scope, self.kind = name, scope, kind
        self.default, self.lo, self.hi, self.values = default, lo, hi, values

    def __repr__(self) -> str:
        return (f"Prop({self.name!r}, {self.kind!r}, lo={self.lo}, "
                f"hi={self.hi}, values={self.values})")


class RdKafka:
    """ctypes view of librdkafka (the same library instance as _core's)."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(_librdkafka_path())
        lib.rd_kafka_conf_new.restype = ctypes.c_void_p
        lib.rd_kafka_conf_destroy.argtypes = [ctypes.c_void_p]
        lib.rd_kafka_conf_set.restype = ctypes.c_int
        lib.rd_kafka_conf_set.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
            ctypes.c_char_p, ctypes.c_size_t]
        lib.rd_kafka_conf_get.restype = ctypes.c_int
        lib.rd_kafka_conf_get.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_size_t)]
        lib.rd_kafka_conf_dump.restype = ctypes.POINTER(ctypes.c_char_p)
        lib.rd_kafka_conf_dump.argtypes = [
            ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        lib.rd_kafka_conf_dump_free.argtypes = [
            ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t]
        lib.rd_kafka_conf_properties_show.argtypes = [ctypes.c_void_p]
        self.lib = lib

    def dump(self) -> dict[str, str]:
        """rd_kafka_conf_dump() of a fresh conf: every property that has a
        default, with it."""
        lib = self.lib
        conf = lib.rd_kafka_conf_new()
        cnt = ctypes.c_size_t()
        arr = lib.rd_kafka_conf_dump(conf, ctypes.byref(cnt))
        out = {}
        for i in range(0, cnt.value, 2):
            out[arr[i].decode()] = (arr[i + 1] or b"").decode()
        lib.rd_kafka_conf_dump_free(arr, cnt)
        lib.rd_kafka_conf_destroy(conf)
        return out

    def table(self) -> str:
        """rd_kafka_conf_properties_show(): the CONFIGURATION.md table."""
        libc = ctypes.CDLL(None)
        libc.open_memstream.restype = ctypes.c_void_p
        libc.open_memstream.argtypes = [
            ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t)]
        libc.fclose.argtypes = [ctypes.c_void_p]
        libc.free.argtypes = [ctypes.c_void_p]
        buf = ctypes.c_char_p()
        size = ctypes.c_size_t()
        fp = libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
        if not fp:
            return ""
        self.lib.rd_kafka_conf_properties_show(fp)
        libc.fclose(fp)
        text = ctypes.string_at(buf, size.value).decode("utf-8", "replace")
        libc.free(ctypes.cast(buf, ctypes.c_void_p))
        return text

    def conf_set(self, conf: int, name: str, value: str) -> str | None:
        """None if accepted, else librdkafka's error string."""
        err = ctypes.create_string_buffer(512)
        res = self.lib.rd_kafka_conf_set(
            conf, name.encode("utf-8", "surrogatepass"),
            value.encode("utf-8", "surrogatepass"), err, len(err))
        return None if res == 0 else err.value.decode("utf-8", "replace")

    def set_and_get(self, name: str, value: str) -> tuple[str | None, str]:
        """Sets one property on a fresh conf: (error or None, stored)."""
        conf = self.lib.rd_kafka_conf_new()
        try:
            err = self.conf_set(conf, name, value)
            buf = ctypes.create_string_buffer(4096)
            size = ctypes.c_size_t(len(buf))
            self.lib.rd_kafka_conf_get(conf, name.encode(), buf,
                                       ctypes.byref(size))
            return err, buf.value.decode("utf-8", "replace")
        finally:
            self.lib.rd_kafka_conf_destroy(conf)


_RANGE = re.compile(r"^(-?\d+(?:\.\d+)?)\s*\.\.\s*(-?\d+(?:\.\d+)?)$")
_TYPE = re.compile(r"\*Type: ([^*]+)\*")
_INT = re.compile(r"^-?\d+$")
_FLOAT = re.compile(r"^-?\d+\.\d*$")


def _infer_kind(default: str) -> str:
    """Type of a property that only rd_kafka_conf_dump() knows, from its
    default."""
    if default in ("true", "false"):
        return "boolean"
    if _INT.match(default):
        return "integer"
    if _FLOAT.match(default):
        return "float"
    if default.startswith("0x"):
        return "see dedicated API"  # a function pointer
    return "string"


def load_properties(rd: RdKafka) -> dict[str, Prop]:
    """Every property librdkafka knows, with its type, range and default.
    Topic-level properties are included (librdkafka forwards them from
    the global conf)."""
    props: dict[str, Prop] = {}
    for line in rd.table().splitlines():
        cols = [c.strip() for c in line.split("|")]
        if len(cols) < 6 or cols[0] in ("Property", "") or \
                cols[0].startswith("-"):
            continue
        name, scope, rng, default = cols[0], cols[1], cols[2], cols[3]
        m = _TYPE.search(cols[5])
        kind = m.group(1).strip() if m else _infer_kind(default)
        lo = hi = None
        values: tuple[str, ...] = ()
        rm = _RANGE.match(rng)
        if rm:
            lo, hi = float(rm.group(1)), float(rm.group(2))
        elif rng:
            values = tuple(v.strip() for v in rng.split(",") if v.strip())
        if name not in props:
            props[name] = Prop(name, scope, kind, default, lo, hi, values)
    for name, default in rd.dump().items():
        if name not in props:
            props[name] = Prop(name, "*", _infer_kind(default), default)
    return props


_RD: RdKafka | None = None
_PROPS: dict[str, Prop] | None = None


def rdkafka() -> RdKafka:
    global _RD
    if _RD is None:
        _RD = RdKafka()
    return _RD


def properties() -> dict[str, Prop]:
    global _PROPS
    if _PROPS is None:
        _PROPS = load_properties(rdkafka())
    return _PROPS


#: Never drawn: they load code, run commands, or reach the network.
EXCLUDED = {
    "plugin.library.paths",  # dlopen()s libraries
    "ssl.engine.location",  # loads an OpenSSL engine
    "ssl.providers",  # loads OpenSSL provider modules
    "sasl.kerberos.kinit.cmd",  # a shell command
    # pinned to 0 in every config: no kinit run at all
    "sasl.kerberos.min.time.before.relogin",
}
#: Properties whose valid values are drawn from a safe set only.
PATHS_NOWHERE = "/nonexistent-aiokafka-c-hyp"

# --------------------------------------------------------------------------
# recipes: drawn values are Python source, built in the example's process,
# so that a falsifying example prints as code to paste into a reproducer.


class Code:
    """A value as Python source; built with eval() in NS."""

    __slots__ = ("src",)

    def __init__(self, src: str) -> None:
        self.src = src

    def __repr__(self) -> str:
        return self.src

    def build(self) -> Any:
        return eval(self.src, NS)


def lit(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Code]:
    return strategy.map(lambda v: Code(repr(v)))


def src(*options: str) -> st.SearchStrategy[Code]:
    return st.sampled_from([Code(s) for s in options])


def blob(n: int) -> bytes:
    """n deterministic, varied bytes."""
    base = bytes(range(256))
    return (base * (n // 256 + 1))[:n]


def released() -> memoryview:
    mv = memoryview(b"released")
    mv.release()
    return mv


class BytesSub(bytes):
    pass


class StrSub(str):
    pass


class IntSub(int):
    pass


class ListSub(list):  # type: ignore[type-arg]
    pass


class DictSub(dict):  # type: ignore[type-arg]
    pass


class Boom(Exception):
    """Raised on purpose by test callbacks."""


def _boom_cb(*args: Any) -> None:
    raise Boom("callback raised on purpose")


def _noop_cb(*args: Any) -> None:
    return None


async def _async_cb(*args: Any) -> None:
    await asyncio.sleep(0)


async def _async_boom_cb(*args: Any) -> None:
    await asyncio.sleep(0)
    raise Boom("async callback raised on purpose")


class BrokenLogger:
    """Has log(), which raises."""

    def log(self, *args: Any, **kwargs: Any) -> None:
        raise Boom("logger raised on purpose")


class LogAttr:
    """Has a 'log' attribute that is not callable."""

    log = 5




def recording_logger(name: str = "aiokafka_c.hyp") -> logging.Logger:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    for h in list(logger.handlers):
        logger.removeHandler(h)
    logger.addHandler(RecordingHandler())
    return logger


def records(logger: logging.Logger) -> list[logging.LogRecord]:
    h = logger.handlers[0]
    assert isinstance(h, RecordingHandler)
    with h._lock:
        return list(h.records)


NS: dict[str, Any] = {
    "array": array,
    "ctypes": ctypes,
    "types": types,
    "logging": logging,
    "blob": blob,
    "released": released,
    "unused_port": unused_port,
    "BytesSub": BytesSub,
    "StrSub": StrSub,
    "IntSub": IntSub,
    "ListSub": ListSub,
    "DictSub": DictSub,
    "BrokenLogger": BrokenLogger,
    "LogAttr": LogAttr,
    "boom_cb": _boom_cb,
    "noop_cb": _noop_cb,
    "async_cb": _async_cb,
    "async_boom_cb": _async_boom_cb,
    "NOWHERE": PATHS_NOWHERE,
    "nan": float("nan"),
    "inf": float("inf"),
}

# --------------------------------------------------------------------------
# the fork runner


class ExampleFailed(AssertionError):
    """A property failed in the example's process."""


class ExampleCrashed(AssertionError):
    """The example's process died (signal, abort, ASan report)."""


class ExampleHung(AssertionError):
    """The example's process did not finish within its time bound."""


_FAILED_CLASSES: dict[str, type[ExampleFailed]] = {}


def _failed_class(key: str) -> type[ExampleFailed]:
    """One class per failure site in the example's process, so that
    hypothesis tells distinct bugs apart (it keys them by exception type
    and raising line, and every failure is re-raised here)."""
    cls = _FAILED_CLASSES.get(key)
    if cls is None:
        cls = type(f"ExampleFailed<{key}>", (ExampleFailed,), {})
        _FAILED_CLASSES[key] = cls
    return cls


_BAD_STDERR = re.compile(
    r"ERROR: AddressSanitizer|runtime error:|Fatal Python error|"
    r"LeakSanitizer|double free|corrupted|Segmentation fault")


def _failure_site(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    here = [f for f in frames if f.filename == __file__]
    f = here[-1] if here else (frames[-1] if frames else None)
    line = f"{os.path.basename(f.filename)}:{f.lineno}" if f else "?"
    return f"{type(exc).__name__}@{line}"


def _tail(text: str, n: int = 6000) -> str:
    return text if len(text) <= n else "...\n" + text[-n:]


def _report(stderr: str, n: int = 12000) -> str:
    """A sanitizer report from its first line (its top frames are what
    matters), else the tail of stderr."""
    k = stderr.find("==ERROR: AddressSanitizer")
    if k < 0:
        k = stderr.find("runtime error:")
    if k >= 0:
        k = stderr.rfind("\n", 0, k) + 1
        return stderr[k:k + n]
    return _tail(stderr)


def run_isolated(fn: Callable[..., dict[str, int]], *args: Any,
                 timeout: float) -> dict[str, int]:
    """Runs fn(*args) in a forked process; returns its counters (a dict of
    outcome -> count), or raises ExampleFailed/ExampleCrashed/ExampleHung
    with the process's stderr attached."""
    if NOFORK:
        return fn(*args)
    rfd, wfd = os.pipe()
    errfile = tempfile.TemporaryFile()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the example's process
        code = 0
        try:
            os.close(rfd)
            os.dup2(errfile.fileno(), 2)
            sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
            faulthandler.enable(file=sys.stderr, all_threads=True)
            faulthandler.register(signal.SIGUSR1, file=sys.stderr,
                                  all_threads=True)
            try:
                result: dict[str, Any] = {"ok": True, "stats": fn(*args)}
            except BaseException as exc:  # noqa: BLE001
                result = {
                    "ok": False,
                    "site": _failure_site(exc),
                    "tb": "".join(traceback.format_exception(exc)),
                }
            data = pickle.dumps(result)
            while data:
                data = data[os.write(wfd, data):]
        except BaseException:  # noqa: BLE001
            code = 3
        finally:
            os._exit(code)  # no atexit: leaked (hung) producers stay put

    os.close(wfd)
    chunks = []
    deadline = time.monotonic() + timeout
    hung = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            hung = True
            break
        ready, _, _ = select.select([rfd], [], [], left)
        if ready:
            chunk = os.read(rfd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(rfd)
    if hung:
        try:
            os.kill(pid, signal.SIGUSR1)  # faulthandler: dump all threads
            time.sleep(0.5 * SLOW)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status = os.waitpid(pid, 0)
    errfile.seek(0)
    stderr = errfile.read().decode("utf-8", "replace")
    errfile.close()
    if hung:
        raise ExampleHung(
            f"the example did not finish within {timeout:.0f} s; its "
            f"threads:\n{_tail(stderr)}")
    if os.WIFSIGNALED(status) or os.WEXITSTATUS(status) != 0 or not chunks:
        how = (f"killed by signal {os.WTERMSIG(status)} "
               f"({signal.Signals(os.WTERMSIG(status)).name})"
               if os.WIFSIGNALED(status)
               else f"exit status {os.WEXITSTATUS(status)}")
        raise ExampleCrashed(f"the example's process died: {how}; "
                             f"stderr:\n{_report(stderr)}")
    result = pickle.loads(b"".join(chunks))
    if _BAD_STDERR.search(stderr):
        raise ExampleCrashed(
            f"the example finished ({'ok' if result['ok'] else 'failed'}) "
            f"but its stderr reports a memory error:\n{_report(stderr)}")
    if not result["ok"]:
        raise _failed_class(result["site"])(
            f"{result['tb']}\n-- stderr of the example:\n"
            f"{_tail(stderr, 3000)}")
    return result["stats"]


class Watch:
    """Collects what must stay empty: sys.unraisablehook calls, warnings,
    and (via loop_handler) the event loop's exception handler."""

    def __init__(self) -> None:
        self.unraisable: list[str] = []
        self.loop_errors: list[dict[str, Any]] = []
        self.warnings: list[str] = []

    def __enter__(self) -> Watch:
        self._old_hook = sys.unraisablehook
        sys.unraisablehook = self._on_unraisable
        self._wcm = warnings.catch_warnings(record=True)
        self._wlist = self._wcm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.unraisablehook = self._old_hook
        self.warnings = [str(w.message) for w in self._wlist]
        self._wcm.__exit__(*exc)

    def _on_unraisable(self, u: Any) -> None:
        self.unraisable.append(
            f"{u.exc_type.__name__}: {u.exc_value!r} (err_msg={u.err_msg!r}, "
            f"object={u.object!r})\n"
            + "".join(traceback.format_tb(u.exc_traceback)))

    def loop_handler(self, loop: Any, ctx: dict[str, Any]) -> None:
        self.loop_errors.append(ctx)

    def unexpected_loop_errors(self) -> list[str]:
        """Loop errors other than our own Boom from async callbacks (an
        async callback's task that raised: asyncio reports it there)."""
        return [repr(c) for c in self.loop_errors
                if not isinstance(c.get("exception"), Boom)]


def run_loop(main: Callable[[], Any], use_uvloop: bool) -> Any:
    """Runs main() on a fresh loop (asyncio's, or uvloop's), then cancels
    leftover tasks and closes the loop, like asyncio.run()."""
    if use_uvloop:
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        try:
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in tasks:
                t.cancel()
            if tasks:
                loop.run_until_complete(
                    asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


#: Producers of examples that hung: kept alive so that nothing joins a
#: stuck poll thread (the example's process then ends with os._exit).
LEAKED: list[Any] = []


def _quiet_default_logger() -> None:
    lg = logging.getLogger("aiokafka_c")
    lg.propagate = False
    lg.handlers[:] = [logging.NullHandler()]


# --------------------------------------------------------------------------
# 1. random configs

TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
ASCII = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
ODD_TEXT = src("''", "' '", "'\\x00'", "'a\\x00b'", "'\\ud800'",
               "'é'", "'\\u2603\\U0001f600'", "'x' * 5000", "'%s%n'")
WRONG_TYPES = src("None", "[1]", "{}", "b'1'", "object()", "1j",
                  "bytearray(b'1')", "(1,)", "{'a'}")
HUGE_INTS = st.sampled_from(
    [2**31, 2**32, 2**32 + 1, 2**40, 2**63, -(2**63) - 1, 10**30,
     -(10**30)])
JUNK = st.one_of(lit(TEXT), ODD_TEXT, WRONG_TYPES, lit(HUGE_INTS),
                 lit(st.integers()), lit(st.floats()), lit(st.booleans()))

#: Values for properties that must not be drawn freely.
SPECIAL: dict[str, st.SearchStrategy[Code]] = {
    "test.mock.num.brokers": st.one_of(
        lit(st.sampled_from([0, 1, 2, 3, "1", "3"])),
        lit(st.sampled_from([10001, -1, "x", "", 1.5, 2**32, 10**30]))),
    "test.mock.broker.rtt": lit(st.sampled_from([0, 1, 50, -1, "x", ""])),
    # A signal librdkafka installs a no-op handler for: never one that
    # matters to the test process (SEGV, ABRT, USR1, ALRM, ...).
    "internal.termination.signal": lit(
        st.sampled_from([0, 40, "0", -1, 129, "x", "", 1.5])),
    "bootstrap.servers": src(
        "f'127.0.0.1:{unused_port()}'", "f'localhost:{unused_port()}'",
        "f'[::1]:{unused_port()}'", "''", "','",
        "f'PLAINTEXT://127.0.0.1:{unused_port()}'",
        "f'127.0.0.1:{unused_port()},127.0.0.1:{unused_port()}'",
        "'127.0.0.1:0'", "'127.0.0.1:99999'", "'127.0.0.1:-1'", "1",
        "None"),
    # never "oidc": it would fetch tokens over HTTP
    "sasl.oauthbearer.method": st.one_of(
        src("'default'", "''", "'DEFAULT'", "'x'", "1", "None")),
    "sasl.oauthbearer.token.endpoint.url": src(
        "'http://127.0.0.1:1/token'", "''", "'not a url'", "None"),
    "sasl.mechanisms": st.one_of(
        lit(st.sampled_from(["GSSAPI", "PLAIN", "SCRAM-SHA-256",
                             "SCRAM-SHA-512", "OAUTHBEARER", "plain"])),
        JUNK),
    "partitioner": st.one_of(
        lit(st.sampled_from(["random", "consistent", "consistent_random",
                             "murmur2", "murmur2_random", "fnv1a",
                             "fnv1a_random"])),
        JUNK),
    "broker.version.fallback": st.one_of(
        lit(st.sampled_from(["0.10.0", "0.9.0", "0.8.2", "2.8.0", "9"])),
        JUNK),
    "sasl.oauthbearer.config": st.one_of(
        lit(st.sampled_from(["principal=admin", "principal=a scope=b",
                             "lifeSeconds=1 principal=x", "=", "a=b"])),
        JUNK),
}
SPECIAL["metadata.broker.list"] = SPECIAL["bootstrap.servers"]
SPECIAL["sasl.mechanism"] = SPECIAL["sasl.mechanisms"]
PEM = ("'-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n'")

CALLBACK_KEYS = ("error_cb", "stats_cb", "throttle_cb")
CALLBACK_VALUES = src("None", "noop_cb", "boom_cb", "async_cb",
                      "async_boom_cb", "list", "1", "'cb'", "object()",
                      "b''")
LOGGER_VALUES = src("None", "LOG", "logging.getLogger('aiokafka_c.hyp2')",
                    "BrokenLogger()", "LogAttr()", "5", "'logger'",
                    "object()")


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]
             ) -> st.SearchStrategy[Any]:
    """one_of() with integer weights."""
    return st.one_of(*[s for w, s in choices for _ in range(w)])


def _int_values(prop: Prop) -> st.SearchStrategy[Code]:
    lo = int(prop.lo) if prop.lo is not None else -(2**31)
    hi = int(prop.hi) if prop.hi is not None else INT32_MAX
    small_hi = min(hi, lo + 100000) if lo < 0 else min(hi, 100000)
    small_lo = max(lo, -100)
    valid = st.one_of(st.integers(max(lo, 0) if hi >= 0 else lo,
                                  max(small_hi, max(lo, 0) if hi >= 0
                                      else lo)),
                      st.integers(small_lo, max(small_lo, small_hi)),
                      st.sampled_from([lo, hi]))
    invalid = st.sampled_from(
        [v for v in (lo - 1, hi + 1) if -(2**64) < v < 2**64])
    return weighted(
        (6, lit(valid)), (3, lit(valid.map(str))), (1, lit(valid.map(float))),
        (1, lit(invalid)), (1, lit(invalid.map(str))), (1, lit(HUGE_INTS)),
        (1, lit(st.sampled_from(["", " 5", "5 ", "0x10", "1e3", "abc",
                                 "true", 1.5, 0.5, float("nan")]))),
        (1, JUNK))


def _float_values(prop: Prop) -> st.SearchStrategy[Code]:
    lo = prop.lo if prop.lo is not None else -1e9
    hi = prop.hi if prop.hi is not None else 1e9
    valid = st.floats(lo, hi, allow_nan=False)
    return weighted(
        (4, lit(valid)), (2, lit(valid.map(repr))),
        (2, lit(st.integers(int(lo), int(hi)))),
        (1, lit(st.sampled_from([lo - 1, hi + 1, float("inf"),
                                 float("-inf"), float("nan"), "nan", "inf",
                                 "1e3", "", "x", 10**30]))),
        (1, JUNK))


_VALUES_CACHE: dict[str, st.SearchStrategy[Code]] = {}


def _values_for(prop: Prop) -> st.SearchStrategy[Code]:
    s = _VALUES_CACHE.get(prop.name)
    if s is None:
        s = _VALUES_CACHE[prop.name] = _values_for0(prop)
    return s


def _values_for0(prop: Prop) -> st.SearchStrategy[Code]:
    name = prop.name
    if name in SPECIAL:
        return SPECIAL[name]
    if name in CALLBACK_KEYS:
        return CALLBACK_VALUES
    if name.endswith((".location", ".path", ".keytab")) or \
            name.endswith("keytab"):
        return st.one_of(
            src("NOWHERE + '/file.pem'", "NOWHERE + '/'", "''",
                "NOWHERE + '/\\u00e9'"),
            lit(HUGE_INTS), WRONG_TYPES)
    kind = prop.kind
    if kind == "integer":
        return _int_values(prop)
    if kind == "float":
        return _float_values(prop)
    if kind == "boolean":
        return weighted(
            (6, lit(st.booleans())),
            (2, lit(st.sampled_from(["true", "false", "True", "1", "0", "t",
                                     "yes", "", 2, 0, 1]))),
            (1, JUNK))
    if kind == "enum value" and prop.values:
        vals = st.sampled_from(list(prop.values))
        return weighted((6, lit(vals)), (1, lit(vals.map(str.upper))),
                        (1, JUNK))
    if kind == "CSV flags" and prop.values:
        flags = st.lists(st.sampled_from(list(prop.values)), max_size=4)
        return weighted((4, lit(flags.map(",".join))),
                        (2, lit(flags.map(", ".join))), (1, JUNK))
    if kind == "pattern list":
        return st.one_of(
            lit(st.sampled_from(["^a.*", "t,^x$", "(", "[", "a**", "\\",
                                 "^(a+)+$", ""])),
            JUNK)
    if kind == "see dedicated API":
        return JUNK
    if name.endswith(".pem"):
        return st.one_of(src(PEM, "'garbage'", "''"), JUNK)
    # plain strings
    return weighted((4, lit(ASCII)), (2, lit(TEXT)), (2, ODD_TEXT),
                    (1, JUNK))


#: Known conflicting or interesting combinations.
CONFLICTS = [
    "'acks': 0, 'enable.idempotence': True",
    "'acks': 1, 'enable.idempotence': True",
    "'acks': '0'",
    "'acks': 1",
    "'request.required.acks': 'all', 'acks': 0",
    "'acks': True",
    "'enable.idempotence': 'auto'",
    "'max.in.flight': 6",
    "'max.in.flight': 6, 'enable.idempotence': True",
    "'max.in.flight.requests.per.connection': 1000000, 'acks': 'all'",
    "'retries': 0",
    "'retries': 0, 'enable.idempotence': True",
    "'transactional.id': 'tx'",
    "'transactional.id': 'tx', 'enable.idempotence': False",
    "'transactional.id': 'tx', 'transaction.timeout.ms': 1000, "
    "'message.timeout.ms': 5000",
    "'transactional.id': '', 'acks': 1",
    "'enable.gapless.guarantee': True",
    "'enable.gapless.guarantee': True, 'enable.idempotence': False",
    "'message.timeout.ms': 0",
    "'delivery.timeout.ms': 1, 'linger.ms': 100",
    "'message.timeout.ms': 10, 'linger.ms': 20",
    "'queue.buffering.max.messages': 0",
    "'queue.buffering.max.messages': 1, 'queue.buffering.max.kbytes': 1",
    "'message.max.bytes': 1000, 'batch.size': 1",
    "'batch.num.messages': 1, 'linger.ms': 0",
    "'compression.codec': 'gzip', 'compression.level': 12",
    "'compression.type': 'lz4', 'compression.level': 12",
    "'compression.codec': 'snappy', 'compression.level': 1",
    "'security.protocol': 'ssl', 'ssl.key.pem': 'garbage'",
    "'security.protocol': 'ssl', 'ssl.ca.location': NOWHERE + '/ca.pem'",
    "'security.protocol': 'ssl', 'ssl.certificate.pem': " + PEM,
    "'security.protocol': 'sasl_plaintext', 'sasl.mechanisms': 'PLAIN'",
    "'security.protocol': 'sasl_plaintext', 'sasl.mechanisms': 'PLAIN', "
    "'sasl.username': 'u', 'sasl.password': 'p'",
    "'security.protocol': 'sasl_ssl', 'sasl.mechanisms': 'GSSAPI'",
    "'security.protocol': 'sasl_plaintext', 'sasl.mechanisms': "
    "'OAUTHBEARER', 'enable.sasl.oauthbearer.unsecure.jwt': True, "
    "'sasl.oauthbearer.config': 'principal=admin'",
    "'security.protocol': 'sasl_plaintext', 'sasl.mechanisms': "
    "'OAUTHBEARER', 'enable.sasl.oauthbearer.unsecure.jwt': True, "
    "'sasl.oauthbearer.config': 'nonsense'",
    "'statistics.interval.ms': 5, 'stats_cb': noop_cb",
    "'statistics.interval.ms': 5, 'stats_cb': boom_cb",
    "'statistics.interval.ms': 5, 'stats_cb': async_boom_cb",
    "'error_cb': async_boom_cb, 'bootstrap.servers': "
    "f'127.0.0.1:{unused_port()}'",
    "'topic.metadata.refresh.interval.ms': -1",
    "'socket.timeout.ms': 10, 'socket.connection.setup.timeout.ms': 1000",
    "'debug': 'all'",
    "'debug': 'all', 'logger': BrokenLogger()",
    "'log_level': 7, 'debug': 'broker,mock'",
    "'linger.ms': 0.5",
    "'queue.buffering.max.ms': 900000, 'message.timeout.ms': 1000",
    "'dr_msg_cb': 'x'",
    "'log_cb': 1",
    "'default_topic_conf': ''",
    "'client.id': ''",
    "'partitioner': 'murmur2', 'sticky.partitioning.linger.ms': 0",
    "'error_cb': None, 'stats_cb': None, 'throttle_cb': None, "
    "'logger': None",
    "'test.mock.num.brokers': 3, 'acks': 'all'",
    "'test.mock.num.brokers': 0, 'bootstrap.servers': ''",
]

_PINNED = "'sasl.kerberos.min.time.before.relogin': 0"
_BASES = [
    "'test.mock.num.brokers': '1'",
    "'test.mock.num.brokers': '1'",
    "'test.mock.num.brokers': '1'",
    "'test.mock.num.brokers': 2",
    "'bootstrap.servers': f'127.0.0.1:{unused_port()}', "
    "'reconnect.backoff.max.ms': 100",
    "",
]
_ODD_KEYS = src("'ACKS'", "' acks'", "'acks\\x00x'", "'\\ud800'", "''",
                "'no.such.property'", "'acks '", "'é'", "1", "b'acks'",
                "None", "('acks',)", "StrSub('acks')", "'logger\\x00'")


@st.composite
def config_entries(draw: st.DrawFn) -> list[str]:
    props = properties()
    names = sorted(n for n in props if n not in EXCLUDED)
    entries = [_PINNED]
    base = draw(st.sampled_from(_BASES))
    if base:
        entries.append(base)
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 14))
        if kind == 0:
            key = draw(_ODD_KEYS)
            entries.append(f"{key!r}: {draw(JUNK)!r}")
        elif kind == 1:
            key = draw(st.sampled_from(CALLBACK_KEYS + ("logger",)))
            vals = LOGGER_VALUES if key == "logger" else CALLBACK_VALUES
            entries.append(f"{key!r}: {draw(vals)!r}")
        else:
            name = draw(st.sampled_from(names))
            entries.append(f"{name!r}: {draw(_values_for(props[name]))!r}")
    for _ in range(draw(st.integers(0, 2))):
        entries.append(draw(st.sampled_from(CONFLICTS)))
    return entries


@st.composite
def configs(draw: st.DrawFn) -> Code:
    body = "{" + ", ".join(draw(config_entries())) + "}"
    wrap = draw(st.sampled_from(
        ["dict"] * 12 + ["DictSub", "proxy", "items", "none"]))
    if wrap == "DictSub":
        return Code(f"DictSub({body})")
    if wrap == "proxy":
        return Code(f"types.MappingProxyType({body})")
    if wrap == "items":
        return Code(f"list({body}.items())")
    if wrap == "none":
        return Code("None")
    return Code(body)


def _has_surrogate(s: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in s)


def config_oracle(cfg: Any) -> tuple[str, Any]:
    """What AIOProducer(cfg) must do, mirroring the documented rules of
    conf.c (a Mapping; str keys; callables or None for the *_cb keys; a
    logger with a callable log(); str/int/float/bool values) with
    librdkafka's own rd_kafka_conf_set() (ctypes, fresh conf, same
    order): ("type", key) TypeError, ("unicode", key)
    UnicodeEncodeError, ("nul", key) must be refused (ValueError or
    KafkaException: a C string would silently cut the name or value at
    the NUL), ("kafka", errstr) KafkaException with librdkafka's message,
    ("ok", None) success, or KafkaException from rd_kafka_new()."""
    if isinstance(cfg, dict):
        items = list(cfg.items())
    elif callable(getattr(cfg, "items", None)) and \
            hasattr(cfg, "__getitem__"):
        items = list(cfg.items())  # any Mapping
    else:
        return ("type", None)
    rd = rdkafka()
    conf = rd.lib.rd_kafka_conf_new()
    try:
        for k, v in items:
            if not isinstance(k, str):
                return ("type", k)
            if _has_surrogate(k):
                return ("unicode", k)
            if "\0" in k:
                return ("nul", k)
            if k in CALLBACK_KEYS:
                if v is None or callable(v):
                    continue
                return ("type", k)
            if k == "logger":
                if v is None or callable(getattr(v, "log", None)):
                    continue
                return ("type", k)
            if isinstance(v, bool):
                s = "true" if v else "false"
            elif isinstance(v, str):
                if _has_surrogate(v):
                    return ("unicode", k)
                if "\0" in v:
                    return ("nul", k)
                s = v
            elif isinstance(v, (int, float)):
                s = str(v)
            else:
                return ("type", k)
            err = rd.conf_set(conf, k, s)
            if err is not None:
                return ("kafka", err)
            if isinstance(v, (int, float)) and not isinstance(v, bool) \
                    and not _stored_exactly(rd, conf, k, v):
                return ("range", k)
        return ("ok", None)
    finally:
        rd.lib.rd_kafka_conf_destroy(conf)


def _stored_exactly(rd: Any, conf: int, name: str, value: float) -> bool:
    """False if an integer property stored something other than value
    (librdkafka wraps to 32 bits and cuts "2.9" or "1e+20" short):
    AIOProducer must then refuse it with ValueError."""
    buf = ctypes.create_string_buffer(64)
    size = ctypes.c_size_t(len(buf))
    if rd.lib.rd_kafka_conf_get(conf, name.encode(), buf,
                                ctypes.byref(size)) != 0:
        return True
    stored = buf.value.decode("utf-8", "replace")
    if not _INT.match(stored):
        return True  # not an integer property
    return int(stored) == value


_LOOP_KINDS_SYNC = ["absent", "absent", "absent", "None", "fresh",
                    "closed", "5", "object()"]
_LOOP_KINDS_ASYNC = ["absent", "absent", "None", "running"]


def _refusal_problem(exc: BaseException, expect: tuple[str, Any],
                     bad_loop: bool) -> str | None:
    """None if exc is the right refusal for what the oracle expects."""
    kind, what = expect
    if kind == "nul" and isinstance(exc, (ValueError, TypeError,
                                          KafkaException)):
        return None  # refused: what matters is that it is not accepted
    if isinstance(exc, KafkaException):
        err = exc.args[0] if exc.args else None
        if not isinstance(err, KafkaError):
            return f"KafkaException without a KafkaError: {exc!r}"
        if kind == "kafka":
            if what.strip() and what.strip() not in err.str():
                return (f"KafkaException {err.str()!r} does not carry "
                        f"librdkafka's message {what!r}")
            return None
        if kind in ("ok", "nul"):
            return None  # rd_kafka_new() refused it / NUL refused
        return f"expected {kind} for {what!r}, got {exc!r}"
    if isinstance(exc, UnicodeEncodeError):
        return None if kind == "unicode" else \
            f"expected {kind} ({what!r}), got {exc!r}"
    if isinstance(exc, TypeError):
        if kind == "type" or (kind == "ok" and bad_loop):
            return None
        return f"expected {kind} ({what!r}), got {exc!r}"
    if isinstance(exc, ValueError):
        if kind in ("nul", "range") or (kind == "ok" and bad_loop):
            return None
        return f"expected {kind} ({what!r}), got {exc!r}"
    return f"unexpected exception type {type(exc).__name__}: {exc!r}"


def _check_watch(w: Watch, problems: list[str], *, allow_logger: bool) -> None:
    for u in w.unraisable:
        # A logger that raises (or whose log is not callable) is reported
        # through sys.unraisablehook by design; nothing else may be.
        if allow_logger and ("BrokenLogger" in u or "LogAttr" in u or
                             "Boom" in u):
            continue
        problems.append(f"unraisable exception: {u}")
    for c in w.unexpected_loop_errors():
        problems.append(f"loop exception handler: {c}")
    for m in w.warnings:
        problems.append(f"warning: {m}")


def _gc_sweep(fail: Callable[[], Any], n: int = 300) -> None:
    """Runs a failing construction n times, each time right after a young
    collection with the young-generation threshold at 1, 2, ..., n: one of
    them runs a collection at each allocation the failure path makes (for
    instance inside the deallocation of the half-made object), while that
    object is still young, so that collector bugs there show up every
    time, not once in a while."""
    old = gc.get_threshold()
    try:
        for t in range(1, n + 1):
            gc.collect(0)
            gc.set_threshold(t)
            try:
                fail()
            except Exception:  # noqa: BLE001, S110
                pass
    finally:
        gc.set_threshold(*old)


def check_config(config: Code, loop_kind: str, mode: str,
                 close_timeout: float | None, nmsgs: int,
                 use_uvloop: bool, eager_gc: bool) -> dict[str, int]:
    _quiet_default_logger()
    if eager_gc:
        gc.set_threshold(1)  # a collection at every chance
    NS["LOG"] = recording_logger()
    stats: collections.Counter[str] = collections.Counter()
    problems: list[str] = []
    bad_loop = loop_kind in ("5", "object()")

    def construct(cfg: Any, loop: Any) -> Any:
        if loop_kind == "absent":
            return AIOProducer(cfg)
        return AIOProducer(cfg, loop)

    def refused(exc: BaseException, expect: tuple[str, Any]) -> None:
        stats[f"refused:{type(exc).__name__}"] += 1
        why = _refusal_problem(exc, expect, bad_loop)
        if why:
            problems.append(why)

    def accepted(expect: tuple[str, Any]) -> None:
        stats["constructed"] += 1
        if expect[0] != "ok":
            problems.append(f"accepted a config it must refuse: {expect}")
        elif bad_loop:
            problems.append(f"accepted loop={loop_kind}")

    with Watch() as w:
        cfg = config.build()
        expect = config_oracle(cfg)
        stats[f"oracle:{expect[0]}"] += 1
        if mode in ("sync", "gc"):
            loop: Any = None
            if loop_kind == "fresh":
                loop = asyncio.new_event_loop()
            elif loop_kind == "closed":
                loop = asyncio.new_event_loop()
                loop.close()
            elif loop_kind != "absent":
                loop = eval(loop_kind, NS)
            p = None
            try:
                p = construct(cfg, loop)
            except Exception as exc:  # noqa: BLE001
                refused(exc, expect)
            if p is None:
                if eager_gc:  # (outside the except: no exception context)
                    _gc_sweep(lambda: construct(config.build(), loop))
            else:
                accepted(expect)
                t0 = time.monotonic()
                if mode == "sync":
                    r = p.close(close_timeout)
                    if r is None or not hasattr(r, "__await__"):
                        problems.append(f"close() returned {r!r}")
                    p.close()  # idempotent
                    if len(p) != 0:
                        problems.append(f"len() after close: {len(p)}")
                else:
                    del p
                    gc.collect()
                took = time.monotonic() - t0
                if took > (close_timeout or 0) + MARGIN:
                    problems.append(f"{mode} close took {took:.1f} s")
            if isinstance(loop, asyncio.AbstractEventLoop):
                loop.close()
        else:

            async def main() -> None:
                running = asyncio.get_running_loop()
                running.set_exception_handler(w.loop_handler)
                loop = running if loop_kind == "running" else None
                try:
                    if mode == "async_with":
                        p = construct(cfg, loop)
                        async with p:
                            pass
                        accepted(expect)
                        return
                    p = construct(cfg, loop)
                except Exception as exc:  # noqa: BLE001
                    refused(exc, expect)
                    return
                accepted(expect)
                futs = []
                for i in range(nmsgs):
                    try:
                        if i % 2:
                            p.produce_nowait("t", b"x%d" % i)
                        else:
                            futs.append(p.produce("t", b"x%d" % i))
                    except KafkaException as exc:
                        stats[f"produce:{exc.args[0].name()}"] += 1
                t = 1.0 if close_timeout is None else close_timeout
                t0 = running.time()
                try:
                    await asyncio.wait_for(p.close(t), t + MARGIN)
                except asyncio.TimeoutError:
                    LEAKED.append(p)
                    problems.append(f"await close({t}) did not finish "
                                    f"within {t + MARGIN} s")
                    return
                for f in futs:
                    if not f.done():
                        problems.append("a produce() future is still "
                                        "pending after close()")
                    elif f.exception() is not None and not isinstance(
                            f.exception(), KafkaException):
                        problems.append(f"future failed with "
                                        f"{f.exception()!r}")
                    else:
                        stats["delivered" if f.exception() is None
                              else "failed"] += 1
                if len(p) != 0:
                    problems.append(f"len() after close: {len(p)}")
                await asyncio.sleep(0)

            run_loop(main, use_uvloop)
    _check_watch(w, problems, allow_logger=True)
    assert not problems, "\n".join(problems)
    return dict(stats)


_LOOP_KINDS = sorted(set(_LOOP_KINDS_SYNC) | set(_LOOP_KINDS_ASYNC))


@given(
    config=configs(),
    loop_kind=st.sampled_from(_LOOP_KINDS),
    mode=st.sampled_from(["sync", "sync", "gc", "async", "async",
                          "async_with"]),
    close_timeout=st.sampled_from([None, 0, 0.1, 1.0]),
    nmsgs=st.integers(0, 3),
    use_uvloop=st.booleans(),
    eager_gc=st.integers(0, 3).map(lambda i: i == 0),
)
# Known bugs and former crashes, always checked first:
# a NUL in a name or value is cut by the C string librdkafka gets
@example(Code("{'acks\\x00junk': 1}"), "absent", "sync", None, 0, False,
         False)
@example(Code("{'client.id': 'a\\x00b', 'linger.ms': '5\\x00x'}"),
         "absent", "sync", None, 0, False, False)
# a failed __init__ deallocated while the collector runs (Py < 3.12)
@example(Code("{'error_cb': 1}"), "absent", "sync", None, 0, False, True)
# rd_kafka_new() refusing the config; a loop that is not one
@example(Code("{'acks': 0, 'enable.idempotence': True}"), "absent", "sync",
         None, 0, False, False)
@example(Code("{'test.mock.num.brokers': 1}"), "5", "sync", None, 0, False,
         False)
def hyp_config(config: Code, loop_kind: str, mode: str,
               close_timeout: float | None, nmsgs: int,
               use_uvloop: bool, eager_gc: bool) -> None:
    kinds = _LOOP_KINDS_SYNC if mode in ("sync", "gc") else _LOOP_KINDS_ASYNC
    lk = loop_kind if loop_kind in kinds else "absent"
    _run(check_config, config, lk, mode, close_timeout, nmsgs, use_uvloop,
         eager_gc, timeout=60 * SLOW)


# --------------------------------------------------------------------------
# 2. random produce() / produce_nowait() arguments on a mock cluster


class Recorder:
    """An on_delivery callback that records its calls, then behaves as
    told: "ok" returns None, "raise" raises Boom, "async"/"async_raise"
    return a coroutine (which raises Boom), "value" returns 42."""

    def __init__(self, mode: str = "ok", action: str | None = None) -> None:
        self.mode = mode
        self.action = action  # reentrancy tests: what to do when called
        self.calls: list[tuple[int, Any, Any]] = []
        self.ran = 0
        self.coro = False  # returned a coroutine
        self.sent = False
        self.expect: Expected | None = None
        self.poll_thread = False
        REGISTRY.append(self)

    def __call__(self, err: Any, msg: Any) -> Any:
        self.calls.append((threading.get_ident(), err, msg))
        if self.action is not None:
            ACTIONS.run(self.action)
        if self.mode == "raise":
            raise Boom("on_delivery raised on purpose")
        if self.mode in ("async", "async_raise"):
            self.coro = True
            return self._body()
        if self.mode == "value":
            return 42
        return None

    async def _body(self) -> None:
        self.ran += 1
        await asyncio.sleep(0)
        if self.mode == "async_raise":
            raise Boom("async on_delivery raised on purpose")


REGISTRY: list[Recorder] = []
NS.update(rec=Recorder, KafkaError=KafkaError)


class Expected:
    """What a delivered Message must carry."""

    __slots__ = ("topic", "value", "key", "headers", "partition",
                 "timestamp")

    def __init__(self, topic: str, value: bytes | None, key: bytes | None,
                 headers: list[tuple[str, bytes | None]] | None,
                 partition: int | None, timestamp: int | None) -> None:
        self.topic, self.value, self.key = topic, value, key
        self.headers, self.partition = headers, partition
        self.timestamp = timestamp


def _as_bytes(v: Any) -> bytes | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v.encode("utf-8")
    return memoryview(v).tobytes()


def _is_buffer(v: Any) -> bool:
    if isinstance(v, str):
        return False
    try:
        memoryview(v).release()
        return True
    except (TypeError, ValueError):
        return False


def _payload_ok(v: Any) -> str | None:
    if v is None or _is_buffer(v):
        return None
    if isinstance(v, str):
        return "surrogate" if _has_surrogate(v) else None
    return f"payload of type {type(v).__name__}"


def _headers_ok(h: Any) -> str | None:
    if h is None:
        return None
    if isinstance(h, dict):
        items = list(h.items())
    elif isinstance(h, (list, tuple)):
        items = list(h)
    else:
        return f"headers of type {type(h).__name__}"
    for pair in items:
        if not isinstance(pair, tuple) or len(pair) != 2:
            return f"header {pair!r:.40} is not a pair"
        name, value = pair
        if not isinstance(name, str):
            return f"header name of type {type(name).__name__}"
        if _has_surrogate(name):
            return "surrogate in a header name"
        if value is not None and not _is_buffer(value):
            if not isinstance(value, str):
                return f"header value of type {type(value).__name__}"
            if _has_surrogate(value):
                return "surrogate in a header value"
    return None


def _expected_headers(h: Any) -> list[tuple[str, bytes | None]] | None:
    if h is None:
        return None
    items = h.items() if isinstance(h, dict) else h
    return [(n, _as_bytes(v)) for n, v in items]


_POSITIONAL = ("topic", "value", "key")
_KEYWORD = ("partition", "timestamp", "headers", "on_delivery")


def classify_call(method: str, args: list[Any],
                  kwargs: dict[str, Any]) -> tuple[str, str]:
    """("valid", ""), ("nul", why): must be refused (a NUL in the topic
    would be cut by librdkafka's C string), or ("invalid", why)."""
    allowed = _POSITIONAL + _KEYWORD + (
        ("dispatch",) if method == "produce_nowait" else ())
    if len(args) > 3:
        return ("invalid", "too many positional arguments")
    bound = dict(zip(_POSITIONAL, args))
    for k, v in kwargs.items():
        if k not in allowed:
            return ("invalid", f"unknown keyword {k}")
        if k in bound:
            return ("invalid", f"{k} given twice")
        bound[k] = v
    if "topic" not in bound:
        return ("invalid", "no topic")
    topic = bound["topic"]
    if not isinstance(topic, str):
        return ("invalid", f"topic of type {type(topic).__name__}")
    if _has_surrogate(topic):
        return ("invalid", "surrogate in topic")
    for name in ("value", "key"):
        why = _payload_ok(bound.get(name))
        if why:
            return ("invalid", f"{name}: {why}")
    part = bound.get("partition")
    if part is not None and (not isinstance(part, int) or
                             isinstance(part, bool) or
                             not -1 <= part <= INT32_MAX):
        return ("invalid", f"partition {part!r}")
    ts = bound.get("timestamp")
    if ts is not None and (not isinstance(ts, int) or isinstance(ts, bool)
                           or not 0 <= ts <= INT64_MAX):
        return ("invalid", f"timestamp {ts!r}")
    why = _headers_ok(bound.get("headers"))
    if why:
        return ("invalid", why)
    cb = bound.get("on_delivery")
    if cb is not None and not callable(cb):
        return ("invalid", "on_delivery not callable")
    if "dispatch" in bound:
        d = bound["dispatch"]
        if not isinstance(d, str) or d not in ("loop", "poll_thread"):
            return ("invalid", f"dispatch {d!r}")
    if "\0" in topic:
        return ("nul", "NUL in topic")
    return ("valid", "")


def expected_of(args: list[Any], kwargs: dict[str, Any]) -> Expected:
    b = dict(zip(_POSITIONAL, args))
    b.update(kwargs)
    part = b.get("partition")
    ts = b.get("timestamp")
    return Expected(
        b["topic"], _as_bytes(b.get("value")), _as_bytes(b.get("key")),
        _expected_headers(b.get("headers")),
        None if part is None or part == -1 else int(part),
        None if not ts else int(ts))


def check_message(msg: Any, exp: Expected | None, where: str) -> list[str]:
    """Problems with a Message reported as delivered."""
    if not isinstance(msg, Message):
        return [f"{where}: not a Message: {msg!r}"]
    out = []
    if msg.error() is not None:
        out.append(f"{where}: delivered Message with error {msg.error()!r}")
    if exp is None:
        return out
    if msg.topic() != exp.topic:
        out.append(f"{where}: topic {msg.topic()!r} != {exp.topic!r}")
    if msg.value() != exp.value:
        out.append(f"{where}: value {msg.value()!r:.80} != "
                   f"{exp.value!r:.80}")
    if msg.key() != exp.key:
        out.append(f"{where}: key {msg.key()!r:.80} != {exp.key!r:.80}")
    if msg.headers() != exp.headers:
        out.append(f"{where}: headers {msg.headers()!r:.200} != "
                   f"{exp.headers!r:.200}")
    part = msg.partition()
    if not isinstance(part, int) or part < 0 or (
            exp.partition is not None and part != exp.partition):
        out.append(f"{where}: partition {part!r}, asked {exp.partition}")
    off = msg.offset()
    # None: not known (e.g. a DUPLICATE_SEQUENCE_NUMBER answer counts as
    # delivered, without an offset)
    if off is not None and (not isinstance(off, int) or off < 0):
        out.append(f"{where}: offset {off!r}")
    tstype, ts = msg.timestamp()
    # (the mock broker sometimes answers with a LogAppendTime of its own)
    if tstype not in (TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME) or (
            tstype == TIMESTAMP_CREATE_TIME and exp.timestamp is not None
            and ts != exp.timestamp) or ts <= 0:
        out.append(f"{where}: timestamp {(tstype, ts)}, asked "
                   f"{exp.timestamp}")
    if len(msg) != len(exp.value or b""):
        out.append(f"{where}: len(msg) {len(msg)} != {len(exp.value or b'')}")
    lat = msg.latency()
    if not isinstance(lat, float) or lat < 0:
        out.append(f"{where}: latency {lat!r}")
    return out


def check_failure(exc: BaseException | None, where: str) -> list[str]:
    if not isinstance(exc, KafkaException):
        return [f"{where}: failed with {exc!r}, not KafkaException"]
    err = exc.args[0] if exc.args else None
    if not isinstance(err, KafkaError) or err.code() == 0:
        return [f"{where}: KafkaException without a KafkaError: {exc!r}"]
    return []


class Call:
    """One produce()/produce_nowait() call, as source."""

    def __init__(self, method: str, args: list[Code],
                 kwargs: list[tuple[str, Code]]) -> None:
        self.method, self.args, self.kwargs = method, args, kwargs

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args]
        parts += [f"{k}={v!r}" for k, v in self.kwargs]
        return f"p.{self.method}({', '.join(parts)})"

    def build(self) -> tuple[list[Any], dict[str, Any]]:
        args = [a.build() for a in self.args]
        kwargs: dict[str, Any] = {}
        for k, v in self.kwargs:
            kwargs[k] = v.build()
        return args, kwargs


class Op:
    """Something done between calls."""

    def __init__(self, name: str, arg: Any = None) -> None:
        self.name, self.arg = name, arg

    def __repr__(self) -> str:
        return f"<{self.name}{'' if self.arg is None else f' {self.arg!r}'}>"


class ProduceExample:
    def __init__(self, conf: str, mto: int, mmb: int, steps: list[Any],
                 end: str, close_timeout: float | None,
                 use_uvloop: bool, eager_gc: bool, repeat: int = 1,
                 fast_switch: bool = False) -> None:
        self.conf, self.mto, self.mmb = conf, mto, mmb
        self.steps, self.end = steps, end
        self.close_timeout, self.use_uvloop = close_timeout, use_uvloop
        self.eager_gc = eager_gc
        self.repeat = repeat  # the whole scenario, n times, one process
        self.fast_switch = fast_switch  # sys.setswitchinterval(1e-6)

    def __repr__(self) -> str:
        steps = "".join(f"\n    {s!r}," for s in self.steps)
        return (f"ProduceExample(\n  conf={self.conf},\n  uvloop="
                f"{self.use_uvloop}, eager_gc={self.eager_gc}, end="
                f"{self.end!r}, close_timeout={self.close_timeout}, "
                f"repeat={self.repeat}, fast_switch={self.fast_switch},\n"
                f"  steps=[{steps}\n  ])")


SIZED = ["blob({})", "bytearray(blob({}))", "memoryview(blob({}))",
         "'\\u00e9' * ({} // 2)"]
ODD_PAYLOADS = src(
    "None", "b''", "''", "memoryview(blob(24))[::2]",
    "memoryview(bytearray(24)).cast('B', (2, 3, 4))",
    "memoryview(blob(24)).cast('i')", "memoryview(blob(100))[10:20]",
    "memoryview(b'')", "bytearray()", "BytesSub(b'sub')", "StrSub('sub')",
    "(ctypes.c_int32 * 3)(1, 2, 3)", "array.array('d', [1.5, 2.5])",
    "released()", "'\\ud800'", "'a\\ud800b'", "'a\\x00b'", "b'a\\x00b'",
    "'\\U0001f600'")
BAD_PAYLOADS = src("1", "1.5", "True", "object()", "[b'x']", "{}",
                   "10**30", "Ellipsis", "StrSub")
TEXT_ANY = st.text(st.characters(codec=None), max_size=24)  # surrogates too


def payloads(mmb: int) -> st.SearchStrategy[Code]:
    sizes = st.one_of(
        st.integers(0, 64), st.integers(0, mmb + 200),
        st.sampled_from([max(0, mmb - 100), mmb, mmb + 1, mmb + 100]))
    sized = st.tuples(st.sampled_from(SIZED), sizes).map(
        lambda t: Code(t[0].format(t[1])))
    arrays = st.tuples(st.sampled_from("bBhHiIlLqQfd"),
                       st.integers(0, 50)).map(
        lambda t: Code(f"array.array({t[0]!r}, range({t[1]}))"))
    return st.one_of(src("None"), lit(st.binary(max_size=64)),
                     lit(TEXT_ANY), sized, ODD_PAYLOADS, arrays,
                     BAD_PAYLOADS)


HNAMES = st.one_of(
    lit(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E),
                max_size=8)),
    src("''", "'a\\x00b'", "'\\ud800'", "'é'", "StrSub('h')", "b'h'",
        "1", "None"))
HVALUES = st.one_of(
    src("None"), lit(st.binary(max_size=16)), lit(ASCII),
    src("'\\ud800'", "bytearray(b'ba')", "memoryview(b'mv')",
        "memoryview(blob(10))[::3]", "array.array('i', [1, 2])", "b''", "''",
        "'é'", "1", "1.5", "object()", "released()"))


@st.composite
def headers_code(draw: st.DrawFn) -> Code:
    kind = draw(st.integers(0, 9))
    if kind <= 2:
        pairs = draw(st.lists(st.tuples(HNAMES, HVALUES), max_size=5))
        body = ", ".join(f"({n!r}, {v!r})" for n, v in pairs)
        shape = draw(st.sampled_from(["[{}]", "({},)" if pairs else "()",
                                      "ListSub([{}])"]))
        return Code(shape.format(body))
    if kind <= 4:
        pairs = draw(st.lists(st.tuples(HNAMES, HVALUES), max_size=5))
        body = ", ".join(f"{n!r}: {v!r}" for n, v in pairs)
        shape = draw(st.sampled_from(["{{{}}}", "DictSub({{{}}})"]))
        return Code(shape.format(body))
    return draw(src(
        "None", "None", "[]", "()", "{}", "[('a',)]", "[('a', b'x', 1)]",
        "[['a', b'x']]", "[b'ab']", "5", "'abc'", "iter([])",
        "{('a', b'x')}", "[('h%d' % i, b'v') for i in range(1000)]",
        "[('h%d' % i, b'v') for i in range(20000)]",
        "{'h%d' % i: None for i in range(5000)}",
        "[('big', blob(5000))] * 300"))


TOPICS = st.one_of(
    src("'t'", "'t'", "'topic-1'", "'a.b_c'"),
    lit(st.from_regex(r"[a-zA-Z0-9._-]{1,20}", fullmatch=True)),
    lit(TEXT_ANY),
    src("''", "'x' * 249", "'x' * 250", "'x' * 512", "'x' * 513",
        "'x' * 10000", "'t\\x00x'", "'\\x00'", "StrSub('t')", "'é'",
        "'a b/c'", "b't'", "None", "1", "['t']"))
PARTITIONS = st.one_of(
    lit(st.sampled_from([None, -1, 0, 1, 2, 3])),
    lit(st.sampled_from([-2, 4, 100, INT32_MAX, 2**31, -(2**31), -(2**63),
                         2**63, 2**64, True, False, 1.0, "1"])),
    src("IntSub(1)"))
TIMESTAMPS = st.one_of(
    lit(st.sampled_from([None, 0, 1_700_000_000_000])),
    lit(st.integers(0, INT64_MAX)),
    lit(st.sampled_from([-1, 1, 2**62, INT64_MAX, 2**63, -(2**63), 1.5,
                         True, "1"])),
    src("IntSub(5)"))
CALLBACKS = src("None", "rec()", "rec()", "rec('raise')", "rec('async')",
                "rec('async_raise')", "rec('value')", "1", "'cb'", "dict",
                "noop_cb")
DISPATCH = src("'loop'", "'poll_thread'", "'poll_thread'", "'thread'", "1",
               "None", "StrSub('poll_thread')", "'loop\\x00'", "''")
SAFE_TOPICS = src("'t'", "'t'", "'topic-1'", "'a.b_c'")
SAFE_PAYLOADS = st.one_of(src("None", "b''", "'é'", "bytearray(b'ba')",
                              "memoryview(blob(24))[::2]"),
                          lit(st.binary(max_size=32)))
SAFE_PARTITIONS = lit(st.sampled_from([None, -1, 0, 1, 3, 4, 100]))
SAFE_DISPATCH = src("'loop'", "'poll_thread'")
ERROR_CODES = [
    "NOT_LEADER_FOR_PARTITION", "REQUEST_TIMED_OUT", "MSG_SIZE_TOO_LARGE",
    "NOT_ENOUGH_REPLICAS", "UNKNOWN_TOPIC_OR_PART", "LEADER_NOT_AVAILABLE",
    "INVALID_MSG", "OUT_OF_ORDER_SEQUENCE_NUMBER",
    "DUPLICATE_SEQUENCE_NUMBER", "UNKNOWN_PRODUCER_ID",
    "INVALID_PRODUCER_EPOCH", "TOPIC_AUTHORIZATION_FAILED",
    "CLUSTER_AUTHORIZATION_FAILED", "POLICY_VIOLATION",
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "KAFKA_STORAGE_ERROR",
    "INVALID_RECORD", "THROTTLING_QUOTA_EXCEEDED", "UNKNOWN"]


@st.composite
def calls(draw: st.DrawFn, mmb: int, allow_bad: bool = True,
          callbacks: st.SearchStrategy[Code] = CALLBACKS) -> Call:
    method = draw(st.sampled_from(["produce", "produce_nowait"]))
    shape = draw(st.sampled_from(
        ["std"] * 20 + (["extra_kw", "too_many", "no_topic", "dup",
                         "dispatch_on_produce", "topic_kw"]
                        if allow_bad else [])))
    # allow_bad=False (the reentrancy test): well-formed arguments only
    pay = payloads(mmb) if allow_bad else SAFE_PAYLOADS
    topic = draw(TOPICS if allow_bad else SAFE_TOPICS)
    args: list[Code] = []
    kwargs: list[tuple[str, Code]] = []
    if shape == "topic_kw":
        kwargs.append(("topic", topic))
    elif shape != "no_topic":
        args.append(topic)
    value = draw(pay) if draw(st.booleans()) else None
    key = draw(pay) if draw(st.integers(0, 2)) == 0 else None
    positional = draw(st.booleans()) and shape != "topic_kw"
    if value is not None:
        if positional:
            args.append(value)
        else:
            kwargs.append(("value", value))
    if key is not None:
        if positional and value is not None:
            args.append(key)
        else:
            kwargs.append(("key", key))
    if draw(st.integers(0, 2)) == 0:
        kwargs.append(("partition", draw(PARTITIONS if allow_bad
                                         else SAFE_PARTITIONS)))
    if draw(st.integers(0, 3)) == 0 and allow_bad:
        kwargs.append(("timestamp", draw(TIMESTAMPS)))
    if draw(st.integers(0, 2)) == 0 and allow_bad:
        kwargs.append(("headers", draw(headers_code())))
    if draw(st.integers(0, 1)) == 0:
        kwargs.append(("on_delivery", draw(callbacks)))
    if method == "produce_nowait" and draw(st.integers(0, 1)) == 0:
        kwargs.append(("dispatch", draw(DISPATCH if allow_bad
                                        else SAFE_DISPATCH)))
    if shape == "extra_kw":
        kwargs.append(("nope", Code("1")))
    elif shape == "too_many":
        while len(args) < 4:
            args.append(Code("b'x'"))
    elif shape == "dup":
        if not args:
            args.append(topic)
        if len(args) == 1:
            kwargs.append(("topic", topic))
        else:
            kwargs.append(("value", Code("b'dup'")))
    elif shape == "dispatch_on_produce" and method == "produce":
        kwargs.append(("dispatch", Code("'loop'")))
    for k in {k for k, _ in kwargs}:  # a duplicate keyword: keep the last
        idx = [i for i, (kk, _) in enumerate(kwargs) if kk == k]
        for i in idx[:-1]:
            kwargs[i] = ("", Code("None"))
    kwargs = [kv for kv in kwargs if kv[0]]
    return Call(method, args, kwargs)


OPS = st.one_of(
    st.sampled_from([Op("sleep0"), Op("sleep"), Op("len"), Op("flush0"),
                     Op("flush_short"), Op("purge"), Op("cancel"),
                     Op("mutate"), Op("gc"), Op("broker_down"),
                     Op("broker_up")]),
    st.lists(st.sampled_from(ERROR_CODES), min_size=1, max_size=5).map(
        lambda codes: Op("push_errors", codes)))


@st.composite
def producer_confs(draw: st.DrawFn) -> tuple[str, int, int]:
    brokers = draw(st.sampled_from([1, 1, 1, 2, 3]))
    mto = draw(st.sampled_from([200, 500, 1000]))
    mmb = draw(st.sampled_from([1000000, 1000000, 10000, 1000]))
    entries = [f"'test.mock.num.brokers': {brokers}",
               f"'message.timeout.ms': {mto}",
               f"'message.max.bytes': {mmb}", "'logger': LOG"]
    opt = {
        "linger.ms": [0, 1, 5, 20],
        "queue.buffering.max.messages": [1, 3, 10, 0],
        "queue.buffering.max.kbytes": [1, 64],
        "batch.num.messages": [1, 2],
        "enable.idempotence": [True, False],
        "acks": ["all", 1, 0],
        "compression.type": ["gzip", "snappy", "lz4", "zstd"],
        "partitioner": ["random", "murmur2", "fnv1a_random", "consistent"],
        "test.mock.broker.rtt": [10],
        "retries": [1, 5],  # 0 would conflict with (automatic) idempotence
        "sticky.partitioning.linger.ms": [0],
    }
    for name, values in opt.items():
        if draw(st.integers(0, 3)) == 0:
            entries.append(f"{name!r}: {draw(st.sampled_from(values))!r}")
    text = ", ".join(entries)
    if "'enable.idempotence': True" in text:  # a valid config, always
        entries = [e for e in entries
                   if not e.startswith(("'acks'", "'retries'"))]
    return "{" + ", ".join(entries) + "}", mto, mmb


@st.composite
def produce_examples(draw: st.DrawFn, reentrant: bool = False) -> Any:
    conf, mto, mmb = draw(producer_confs())
    steps: list[Any] = []
    cbs = REENTRANT_CALLBACKS if reentrant else CALLBACKS
    for _ in range(draw(st.integers(1, 25))):
        if draw(st.integers(0, 3)) == 0:
            steps.append(draw(OPS))
        else:
            steps.append(draw(calls(mmb, allow_bad=not reentrant,
                                    callbacks=cbs)))
    end = draw(st.sampled_from(
        ["flush_close", "flush_close", "close", "close", "drop",
         "purge_close", "aexit", "close_spin"]))
    close_timeout = draw(st.sampled_from([None, 0, 0.05, 0.5]))
    use_uvloop = draw(st.integers(0, 3)) == 0
    eager_gc = draw(st.integers(0, 7)) == 0
    repeat = 1 if reentrant else draw(st.sampled_from([1] * 10 + [2, 3]))
    fast_switch = draw(st.integers(0, 3)) == 0
    return ProduceExample(conf, mto, mmb, steps, end, close_timeout,
                          use_uvloop, eager_gc, repeat, fast_switch)


_LOG_OK = re.compile(
    r"^(librdkafka |aiokafka_c: delivery failed|aiokafka_c: KafkaError"
    r"|aiokafka_c: on_delivery callback raised)")


def _check_logs(logger: logging.Logger, problems: list[str], *,
                dropped: bool, reentrant: bool) -> None:
    for r in records(logger):
        if r.levelno < logging.WARNING:
            continue
        msg = r.getMessage()
        if msg.startswith("aiokafka_c: on_delivery callback raised"):
            exc = r.exc_info[1] if r.exc_info else None
            ok: tuple[type[BaseException], ...] = (Boom, TypeError)
            if reentrant:
                ok += (RuntimeError, KafkaException, ValueError)
            if not isinstance(exc, ok):
                problems.append(f"on_delivery raised unexpectedly: {exc!r}")
            continue
        if _LOG_OK.match(msg):
            continue
        if dropped and "garbage-collected without close" in msg:
            continue
        if reentrant and re.match(r"aiokafka_c: (error_cb|stats_cb) raised",
                                  msg):
            continue
        problems.append(f"unexpected log {r.levelname}: {msg}")


async def _wait_until(pred: Callable[[], bool], timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def check_produce(ex: ProduceExample, reentrant: bool = False
                  ) -> dict[str, int]:
    _quiet_default_logger()
    log = NS["LOG"] = recording_logger()
    REGISTRY.clear()
    if ex.eager_gc:
        gc.set_threshold(1)
    stats: collections.Counter[str] = collections.Counter()
    problems: list[str] = []
    bound = 2 * ex.mto / 1000 + MARGIN  # waiting for room + delivery
    main_thread = threading.get_ident()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(w.loop_handler)
        conf = eval(ex.conf, NS)
        p = AIOProducer(conf)
        holder = [p]
        # (ACTIONS keeps this producer until the next repetition starts:
        # a closed producer may outlive its loop, and nothing of it may
        # still be pending then)
        ACTIONS.reset(holder, stats)
        futs: list[tuple[asyncio.Future[Any], Expected | None, str]] = []
        cancelled: set[int] = set()
        mutable: list[bytearray] = []
        for i, step in enumerate(ex.steps):
            if isinstance(step, Op):
                try:
                    await _do_op(p, step, futs, cancelled, mutable, stats)
                except RuntimeError as exc:
                    # a callback may have closed the producer
                    if not (reentrant and _closed_error(exc)):
                        raise
                continue
            where = f"step {i} {step!r:.300}"
            args, kwargs = step.build()
            verdict, why = classify_call(step.method, args, kwargs)
            rec = kwargs.get("on_delivery")
            exp = expected_of(args, kwargs) if verdict == "valid" else None
            try:
                r = getattr(p, step.method)(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                stats[f"raised:{type(exc).__name__}"] += 1
                if reentrant and _closed_error(exc):
                    continue  # a callback closed the producer
                if verdict == "valid":
                    if not isinstance(exc, KafkaException):
                        problems.append(f"{where}: a valid call raised "
                                        f"{exc!r}")
                    elif isinstance(rec, Recorder) and rec.calls:
                        problems.append(f"{where}: refused, but its "
                                        "on_delivery was called")
                elif verdict == "nul":
                    if not isinstance(exc, (ValueError, KafkaException)):
                        problems.append(f"{where}: {why}: raised {exc!r}")
                elif not isinstance(exc, (TypeError, ValueError,
                                          OverflowError)):
                    problems.append(f"{where}: invalid ({why}) but raised "
                                    f"{exc!r}")
                continue
            stats["accepted"] += 1
            if verdict != "valid":
                problems.append(f"{where}: accepted although {why}")
                if isinstance(rec, Recorder):
                    rec.sent = True
                if step.method == "produce" and asyncio.isfuture(r):
                    futs.append((r, None, where))
                continue
            for v in list(args) + list(kwargs.values()):
                if isinstance(v, bytearray) and len(v):
                    mutable.append(v)
            if isinstance(rec, Recorder):
                rec.sent, rec.expect = True, exp
                rec.poll_thread = kwargs.get("dispatch") == "poll_thread"
            if step.method == "produce":
                if not asyncio.isfuture(r):
                    problems.append(f"{where}: returned {r!r}, not a "
                                    "future")
                    continue
                futs.append((r, exp, where))
            elif r is not None:
                problems.append(f"{where}: produce_nowait returned {r!r}")
        del p
        await _finish(holder, ex, futs, cancelled, problems, stats, bound,
                      reentrant)
        # what every delivery left behind
        for f, exp, where in futs:
            if not f.done():
                continue  # reported by _finish
            if f.cancelled():
                if id(f) not in cancelled:
                    problems.append(f"{where}: future cancelled, not by us")
                stats["cancelled"] += 1
            elif f.exception() is not None:
                problems.extend(check_failure(f.exception(), where))
                stats[f"failed:{f.exception().args[0].name()}"] += 1
            else:
                problems.extend(check_message(f.result(), exp, where))
                stats["delivered"] += 1
        await _check_recorders(problems, stats, main_thread)
        if reentrant:
            await _wait_until(lambda: all(f.done() for f in ACTIONS.futs),
                              bound)
            problems.extend(_check_action_futures())
            for f in ACTIONS.futs:
                if f.done() and not f.cancelled() and f.exception() and \
                        not isinstance(f.exception(), KafkaException):
                    problems.append(f"a future made in a callback failed "
                                    f"with {f.exception()!r}")

    if ex.fast_switch:
        sys.setswitchinterval(1e-6)  # more thread interleavings
    with Watch() as w:
        for _ in range(ex.repeat):
            REGISTRY.clear()
            run_loop(main, ex.use_uvloop)
            if problems:
                break
    _check_watch(w, problems, allow_logger=False)
    _check_logs(log, problems, dropped=ex.end == "drop" or reentrant,
                reentrant=reentrant)
    assert not problems, "\n".join(problems)
    return dict(stats)


def _closed_error(exc: BaseException) -> bool:
    return isinstance(exc, RuntimeError) and "clos" in str(exc)


async def _do_op(p: Any, op: Op, futs: list[Any], cancelled: set[int],
                 mutable: list[bytearray],
                 stats: collections.Counter[str]) -> None:
    name = op.name
    stats[f"op:{name}"] += 1
    if name == "sleep0":
        await asyncio.sleep(0)
    elif name == "sleep":
        await asyncio.sleep(0.005)
    elif name == "len":
        n = len(p)
        assert isinstance(n, int) and n >= 0, n
    elif name == "flush0":
        n = await p.flush(0)
        assert isinstance(n, int) and n >= 0, n
    elif name == "flush_short":
        n = await asyncio.wait_for(p.flush(0.05), MARGIN)
        assert isinstance(n, int) and n >= 0, n
    elif name == "purge":
        assert p.purge() is None
    elif name == "cancel":
        if futs:
            f = futs[-1][0]
            if f.cancel():
                cancelled.add(id(f))
    elif name == "mutate":
        if mutable:
            mutable.pop()[:] = b"CHANGED"  # a copy was taken: no effect
    elif name == "gc":
        gc.collect()
    elif name == "push_errors":
        p._mock_push_errors([getattr(KafkaError, c) for c in op.arg])
    elif name in ("broker_down", "broker_up"):
        p._mock_set_broker_up(1, name == "broker_up")


async def _finish(holder: list[Any], ex: ProduceExample, futs: list[Any],
                  cancelled: set[int], problems: list[str],
                  stats: collections.Counter[str], bound: float,
                  reentrant: bool) -> None:
    """Ends the example as ex.end says; afterwards nothing may be pending
    and no future may be left undone."""
    p = holder[0] if holder else None
    live = [f for f, _, _ in futs if id(f) not in cancelled]
    end = ex.end
    t = ex.close_timeout
    try:
        if p is None:  # dropped by a callback
            pass
        elif end in ("flush_close", "purge_close"):
            if end == "purge_close":
                p.purge()
            if live:
                _, pending = await asyncio.wait(live, timeout=bound)
                if pending:
                    LEAKED.append(p)
                    problems.append(
                        f"{len(pending)} produce() futures not done within "
                        f"{bound:.1f} s (2 x message.timeout.ms + margin)")
                    return
            n = await asyncio.wait_for(p.flush(10), 10 + MARGIN)
            for _ in range(3 if reentrant else 0):
                # a callback that ran in that flush may have produced more
                if n != 0 or len(p) == 0:
                    break
                n = await asyncio.wait_for(p.flush(10), 10 + MARGIN)
            if n != 0 or len(p) != 0:
                problems.append(f"flush(10) -> {n}, len(p) == {len(p)}")
            await asyncio.wait_for(p.close(t), (t or bound) + MARGIN)
        elif end in ("close", "aexit"):
            aw = p.close(t) if end == "close" else p.__aexit__(None, None,
                                                               None)
            limit = (bound if t is None or end == "aexit" else t) + MARGIN
            await asyncio.wait_for(aw, limit)
        elif end == "close_spin":
            # close, then close() again from the loop until it is done
            first = p.close(t)
            deadline = time.monotonic() + (t or bound) + MARGIN
            while not p.close().done():
                if time.monotonic() > deadline:
                    LEAKED.append(p)
                    problems.append("close() never reported closed")
                    return
                await asyncio.sleep(0)
            await asyncio.wait_for(first, MARGIN)
        elif end == "drop":
            holder.clear()
            p = None
            gc.collect()
        if p is not None and len(p) != 0:
            problems.append(f"len(p) == {len(p)} after {end}")
    except RuntimeError as exc:
        if not (reentrant and _closed_error(exc)) or p is None:
            raise
        # A callback closed it: that close must finish, bounded.
        try:
            await asyncio.wait_for(p.close(), bound + MARGIN)
        except asyncio.TimeoutError:
            LEAKED.append(p)
            problems.append("a close() started by a callback did not "
                            "finish in time")
            return
        stats["closed by a callback"] += 1
        if len(p) != 0:
            problems.append(f"len(p) == {len(p)} after the close")
    except asyncio.TimeoutError:
        if p is not None:
            LEAKED.append(p)
        problems.append(f"{end} (timeout={t}) did not finish in time")
        return
    # After close (or dropping the producer) every future is done, or is
    # about to be (the dispatcher runs on the loop's next iterations).
    if live:
        _, pending = await asyncio.wait(live, timeout=MARGIN)
        if pending:
            problems.append(f"{len(pending)} futures still pending after "
                            f"{end}")
    stats[f"end:{end}"] += 1


async def _check_recorders(problems: list[str],
                           stats: collections.Counter[str],
                           main_thread: int) -> None:
    """Every accepted on_delivery ran exactly once; refused ones never."""
    ok = await _wait_until(
        lambda: all(len(r.calls) >= 1 for r in REGISTRY if r.sent), MARGIN)
    if not ok:
        n = sum(1 for r in REGISTRY if r.sent and not r.calls)
        problems.append(f"{n} on_delivery callbacks never called (a "
                        "message silently dropped?)")
    for r in REGISTRY:
        if not r.sent:
            if r.calls:
                problems.append("on_delivery of a refused call was called")
            continue
        if len(r.calls) != 1:
            problems.append(f"on_delivery called {len(r.calls)} times")
            continue
        thread, err, msg = r.calls[0]
        where = f"on_delivery({r.mode})"
        if err is None:
            problems.extend(check_message(msg, r.expect, where))
            if r.poll_thread == (thread == main_thread):
                problems.append(f"{where}: ran on the wrong thread "
                                f"(poll_thread={r.poll_thread})")
            stats["cb:delivered"] += 1
        else:
            if not isinstance(err, KafkaError):
                problems.append(f"{where}: err is {err!r}")
            elif not isinstance(msg, Message) or msg.error() != err:
                problems.append(f"{where}: msg.error() {msg!r} != {err!r}")
            stats["cb:failed"] += 1
    # async callbacks dispatched on the loop run to the end
    ok = await _wait_until(
        lambda: all(r.ran >= 1 for r in REGISTRY
                    if r.sent and r.coro and r.calls[0][0] == main_thread),
        MARGIN)
    if not ok:
        problems.append("an async on_delivery never ran")
    if any(r.ran > 1 for r in REGISTRY):
        problems.append("an async on_delivery ran twice")


_CONF = ("{'test.mock.num.brokers': 1, 'message.timeout.ms': 1000, "
         "'logger': LOG}")


@given(ex=produce_examples())
# known bug: a NUL in the topic is cut by librdkafka's C string (the
# message goes to topic 't'); it must be refused
@example(ProduceExample(_CONF, 1000, 1000000,
                        [Call("produce", [Code("'t\\x00x'"), Code("b'x'")],
                              [])], "flush_close", 1.0, False, False))
# known race: close() on the loop while the poll thread finishes the close
# reaps a poller that then frees itself (use-after-free, double free)
@example(ProduceExample(_CONF, 1000, 1000000,
                        [Call("produce_nowait", [Code("'t'"), Code("b'x'")],
                              [])], "close_spin", 0, False, False,
                        repeat=200, fast_switch=True))
def hyp_produce(ex: ProduceExample) -> None:
    _run(check_produce, ex,
         timeout=ex.repeat * (4 * ex.mto / 1000 + 60 * SLOW))


# --------------------------------------------------------------------------
# 3. callbacks that use the producer (from the loop and the poll thread)


class Actions:
    """What reentrant callbacks do to the producer of the example."""

    def __init__(self) -> None:
        self.holder: list[Any] = []
        self.futs: list[Any] = []

    def reset(self, holder: list[Any], stats: Any) -> None:
        self.holder, self.futs, self.stats = holder, [], stats

    def run(self, action: str) -> None:
        p = self.holder[0] if self.holder else None
        if p is None:
            return
        self.stats[f"action:{action}"] += 1
        if action == "produce_nowait":
            p.produce_nowait("t", b"from a callback")
        elif action == "produce":
            self.futs.append(p.produce("t", b"from a callback"))
        elif action == "flush":
            self.futs.append(p.flush())
        elif action == "flush0":
            self.futs.append(p.flush(0))
        elif action == "purge":
            p.purge()
        elif action == "close":
            p.close()
        elif action == "close0":
            p.close(0)
        elif action == "close_short":
            p.close(0.1)
        elif action == "len":
            len(p)
        elif action == "gc":
            gc.collect()
        elif action == "drop":  # the last strong reference, if ours
            self.holder.clear()
        elif action == "raise":
            raise Boom("callback action raised on purpose")
        elif action == "sleep":
            time.sleep(0.02)
        elif action == "mock_down":
            p._mock_set_broker_up(1, False)


ACTIONS = Actions()


def act(action: str) -> Callable[..., None]:
    """A config callback (error_cb, stats_cb, throttle_cb) doing action,
    the first time it is called (a stats_cb producing on every call would
    keep flush() from ever reaching 0, rightly)."""
    done = []

    def cb(*args: Any) -> None:
        if not done:
            done.append(1)
            ACTIONS.run(action)

    return cb


NS["act"] = act
REENTRANT_ACTION_NAMES = [
    "produce_nowait", "produce", "flush", "flush0", "purge", "close",
    "close0", "close_short", "len", "gc", "drop", "raise", "sleep",
    "mock_down", None]
REENTRANT_CALLBACKS = st.tuples(
    st.sampled_from(["ok", "ok", "raise", "async"]),
    st.sampled_from(REENTRANT_ACTION_NAMES)).map(
    lambda t: Code(f"rec({t[0]!r}, {t[1]!r})"))


@st.composite
def reentrant_examples(draw: st.DrawFn) -> ProduceExample:
    ex = draw(produce_examples(reentrant=True))
    extra = []
    for name in ("error_cb", "stats_cb"):
        if draw(st.booleans()):
            a = draw(st.sampled_from(REENTRANT_ACTION_NAMES[:-1]))
            extra.append(f"{name!r}: act({a!r})")
    if any(e.startswith("'stats_cb'") for e in extra):
        extra.append("'statistics.interval.ms': 10")
    if extra:
        ex.conf = ex.conf[:-1] + ", " + ", ".join(extra) + "}"
    return ex


def check_reentrant(ex: ProduceExample) -> dict[str, int]:
    stats = check_produce(ex, reentrant=True)
    return stats


def _check_action_futures() -> list[str]:
    return [f"a future made in a callback is not done: {f!r}"
            for f in ACTIONS.futs if not f.done()]


@given(ex=reentrant_examples())
# former hang: close() from a dispatch="poll_thread" callback
@example(ProduceExample(_CONF, 1000, 1000000, [Call(
    "produce_nowait", [Code("'t'"), Code("b'x'")],
    [("on_delivery", Code("rec('ok', 'close')")),
     ("dispatch", Code("'poll_thread'"))])], "flush_close", 1.0, False,
    False))
def hyp_reentrancy(ex: ProduceExample) -> None:
    _run(check_reentrant, ex,
         timeout=ex.repeat * (4 * ex.mto / 1000 + 60 * SLOW))


# --------------------------------------------------------------------------
# 4. what reaches the (mock) broker is what was produced


ROUND_TOPICS = st.one_of(
    src("'t'", "'rt-1'", "'é-topic'", "'t\\x00x'", "'a b'"),
    lit(st.from_regex(r"[a-zA-Z0-9._-]{1,12}", fullmatch=True)))
ROUND_PAYLOADS = st.one_of(
    src("None", "b''", "''", "memoryview(blob(24))[::2]",
        "memoryview(bytearray(24)).cast('B', (2, 3, 4))",
        "bytearray(b'ba')", "BytesSub(b'sub')", "StrSub('sub')",
        "array.array('q', range(5))", "'\\U0001f600'"),
    lit(st.binary(max_size=64)), lit(TEXT),
    st.integers(0, 5000).map(lambda n: Code(f"blob({n})")))
ROUND_HEADERS = st.one_of(
    src("None", "[]"),
    st.lists(st.tuples(
        lit(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E),
                    max_size=6)),
        st.one_of(src("None", "b''", "'é'", "memoryview(b'mv')"),
                  lit(st.binary(max_size=12)))),
        min_size=1, max_size=4).map(
        lambda ps: Code("[" + ", ".join(f"({n!r}, {v!r})" for n, v in ps)
                        + "]")))


@st.composite
def roundtrip_examples(draw: st.DrawFn) -> tuple[str, list[Call]]:
    brokers = draw(st.sampled_from([1, 1, 2]))
    conf = (f"{{'test.mock.num.brokers': {brokers}, 'logger': LOG, "
            f"'message.timeout.ms': 5000, 'linger.ms': "
            f"{draw(st.sampled_from([0, 5]))}, 'compression.type': "
            f"{draw(st.sampled_from(['none', 'gzip', 'lz4', 'zstd']))!r}}}")
    out = []
    for _ in range(draw(st.integers(1, 12))):
        kw = [("value", draw(ROUND_PAYLOADS)), ("key", draw(ROUND_PAYLOADS)),
              ("headers", draw(ROUND_HEADERS))]
        if draw(st.booleans()):
            kw.append(("partition", draw(lit(st.integers(0, 3)))))
        if draw(st.booleans()):
            kw.append(("timestamp",
                       draw(lit(st.integers(1, 2**50)))))
        out.append(Call("produce", [draw(ROUND_TOPICS)], kw))
    return conf, out


def _read_back(boot: str, sent: list[tuple[Message, Expected]],
               problems: list[str]) -> None:
    """Reads every delivered message back from the mock cluster with
    confluent-kafka (its own librdkafka) and compares."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": boot, "group.id": "hyp",
                  "enable.auto.commit": False, "log_level": 0,
                  "enable.partition.eof": False})
    try:
        md = c.list_topics(timeout=10 * SLOW)
        on_broker = {t for t in md.topics if not t.startswith("__")}
        asked = {e.topic for _, e in sent}
        if on_broker != asked:
            problems.append(f"topics on the broker {sorted(on_broker)!r} != "
                            f"topics produced to {sorted(asked)!r}")
        want: dict[tuple[str, int, int], Expected] = {}
        for m, e in sent:
            if "\0" not in e.topic:
                want[(e.topic, m.partition(), m.offset())] = e
        starts: dict[tuple[str, int], int] = {}
        for t, part, off in want:
            starts[(t, part)] = min(off, starts.get((t, part), off))
        if not want:
            return
        c.assign([TopicPartition(t, part, off)
                  for (t, part), off in starts.items()])
        got: dict[tuple[str, int, int], Any] = {}
        deadline = time.monotonic() + 10 * SLOW
        while not set(want) <= set(got) and time.monotonic() < deadline:
            for cm in c.consume(100, 0.2):
                if cm.error() is None:
                    got[(cm.topic(), cm.partition(), cm.offset())] = cm
        for k, e in want.items():
            m = got.get(k)
            if m is None:
                problems.append(f"message {k} not found on the broker")
                continue
            hdrs = m.headers()
            if (m.value(), m.key()) != (e.value, e.key):
                problems.append(f"{k}: on the broker value/key "
                                f"{(m.value(), m.key())!r:.200} != "
                                f"{(e.value, e.key)!r:.200}")
            if (hdrs or None) != (e.headers or None):
                problems.append(f"{k}: on the broker headers {hdrs!r} != "
                                f"{e.headers!r}")
            if e.timestamp is not None and m.timestamp() != (
                    TIMESTAMP_CREATE_TIME, e.timestamp):
                problems.append(f"{k}: on the broker timestamp "
                                f"{m.timestamp()} != {e.timestamp}")
    finally:
        c.close()


def check_roundtrip(conf_src: str, msgs: list[Call]) -> dict[str, int]:
    _quiet_default_logger()
    log = NS["LOG"] = recording_logger()
    problems: list[str] = []
    stats: collections.Counter[str] = collections.Counter()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(w.loop_handler)
        p = AIOProducer(eval(conf_src, NS))

        def mock_address() -> str | None:
            for r in records(log):
                m = re.search(r"replaced with (\S+)", r.getMessage())
                if m:
                    return m.group(1)
            return None

        await _wait_until(lambda: mock_address() is not None, MARGIN)
        boot = mock_address()
        assert boot, "no mock cluster address in the logs"
        futs = []
        for i, c in enumerate(msgs):
            args, kwargs = c.build()
            exp = expected_of(args, kwargs)
            try:
                futs.append((p.produce(*args, **kwargs), exp, i))
            except (ValueError, KafkaException):  # NUL in the topic
                stats["refused"] += 1
                if "\0" not in exp.topic:
                    raise
        sent: list[tuple[Message, Expected]] = []
        for f, exp, i in futs:
            try:
                m = await asyncio.wait_for(f, 10 + MARGIN)
            except KafkaException as exc:
                problems.append(f"message {i} ({msgs[i]!r:.200}) failed on "
                                f"a healthy mock cluster: {exc!r}")
                continue
            problems.extend(check_message(m, exp, f"message {i}"))
            sent.append((m, exp))
        stats["delivered"] += len(sent)
        # The mock cluster lives in the producer's handle: read back now.
        await asyncio.to_thread(_read_back, boot, sent, problems)
        await asyncio.wait_for(p.close(5), 5 + MARGIN)

    with Watch() as w:
        run_loop(main, False)
    _check_watch(w, problems, allow_logger=False)
    assert not problems, "\n".join(problems)
    return dict(stats)


@given(ex=roundtrip_examples())
# known bug: the message for 't\\x00x' lands in topic 't'
@example(("{'test.mock.num.brokers': 1, 'logger': LOG}",
          [Call("produce", [Code("'t\\x00x'")], [("value", Code("b'x'"))]),
           Call("produce", [Code("'t'")], [("value", Code("b'y'"))])]))
def hyp_roundtrip(ex: tuple[str, list[Call]]) -> None:
    _run(check_roundtrip, *ex, timeout=60 * SLOW)


# --------------------------------------------------------------------------
# 5. a number in the config is stored as that number, or refused


def _numeric_props() -> list[str]:
    skip = set(SPECIAL) | EXCLUDED | {"enabled_events"}
    return sorted(n for n, pr in properties().items()
                  if pr.kind in ("integer", "float") and n not in skip)


def check_numeric_refused(name: str, value: Any, stored: str
                          ) -> dict[str, int]:
    try:
        p = AIOProducer({"test.mock.num.brokers": 1, name: value})
    except (TypeError, ValueError, KafkaException):
        return {"refused": 1}
    p.close(0)
    raise AssertionError(
        f"AIOProducer accepted {{{name!r}: {value!r}}}, which librdkafka "
        f"silently stores as {stored!r} (the extension passes "
        f"str(value) = {str(value)!r})")


@given(name=st.deferred(lambda: st.sampled_from(_numeric_props())),
       value=st.one_of(
           st.integers(-(2**31), INT32_MAX), st.integers(),
           st.sampled_from([2**32, 2**32 + 1, 2**31, 10**30, 2**63,
                            0.5, 1.5, 1e20, 5.0, -0.0])))
# known: 2**32 wraps to 0 (no timeout at all), 1e20 parses as 1
@example("message.timeout.ms", 2**32)
@example("queue.buffering.max.messages", 1e20)
def hyp_numeric(name: str, value: Any) -> None:
    prop = properties()[name]
    err, stored = rdkafka().set_and_get(name, str(value))
    if err is not None:
        _count({"librdkafka refuses": 1})
        return  # refused: test_config_properties checks the exception
    if prop.kind == "integer":
        exact = isinstance(value, int) or float(value).is_integer()
        exact = exact and int(stored) == value
    else:
        exact = abs(float(stored) - value) <= 1e-5 * max(1.0, abs(value))
    if exact:
        _count({"stored exactly": 1})
        return
    _run(check_numeric_refused, name, value, stored, timeout=30 * SLOW)


# --------------------------------------------------------------------------
# 6. the interpreter exits cleanly with producers alive


EXIT_STEPS = st.sampled_from([
    "p.produce_nowait('t', b'x')",
    "KEEP.append(p.produce('t', b'y'))",
    "p.produce_nowait('t', b'z', on_delivery=slow_cb, dispatch='poll_thread')",
    "p.produce_nowait('t', b'z', on_delivery=slow_cb)",
    "p.produce_nowait('t', b'w', partition=100)",
    "[p.produce_nowait('t', b'%d' % i) for i in range(1000)]",
    "await asyncio.sleep(0.01)",
    "await p.flush(0.05)",
    "p.close()",
    "p._mock_set_broker_up(1, False)",
])


@st.composite
def exit_scripts(draw: st.DrawFn) -> str:
    conf = draw(st.sampled_from([
        "{'test.mock.num.brokers': 1, 'message.timeout.ms': 500}",
        "{'test.mock.num.brokers': 1, 'message.timeout.ms': 60000, "
        "'linger.ms': 50}",
        "{'bootstrap.servers': '127.0.0.1:%d' % unused_port(), "
        "'message.timeout.ms': 60000}",
    ]))
    nprod = draw(st.integers(1, 3))
    body = []
    for _ in range(nprod):
        body.append(f"p = AIOProducer({conf})")
        body.append("KEEP.append(p)")
        for step in draw(st.lists(EXIT_STEPS, max_size=5)):
            body += ["try:", f"    {step}",
                     "except (RuntimeError, KafkaException):",
                     "    pass  # closing (p.close() came first), refused"]
    if draw(st.booleans()):
        body.append("del p")
    if draw(st.integers(0, 4)) == 0:
        body.append("sys.exit(0)")
    runner = draw(st.sampled_from([
        "asyncio.run(main())",
        "loop = asyncio.new_event_loop()\nloop.run_until_complete(main())",
        "t = threading.Thread(target=asyncio.run, args=(main(),))\n"
        "t.start()\nt.join()",
        "p0 = AIOProducer({'test.mock.num.brokers': 1})\nKEEP.append(p0)",
    ]))
    after = draw(st.sampled_from(["", "KEEP.clear()", "gc.collect()",
                                  "KEEP.clear()\ngc.collect()"]))
    return "\n".join([
        "import asyncio, gc, logging, sys, threading, time",
        "from aiokafka_c import AIOProducer, KafkaException",
        "from tests.helpers import unused_port",
        "KEEP = []",
        "def slow_cb(err, msg):",
        "    time.sleep(0.05)",
        "async def main():",
        textwrap.indent("\n".join(body), "    "),
        runner,
        after,
        "print('END', flush=True)",
    ])


def run_exit_script(script: str) -> dict[str, int]:
    """Runs the script in a fresh interpreter (as often as a "# runs: N"
    line says: for intermittent exit crashes)."""
    m = re.search(r"^# runs: (\d+)$", script, re.M)
    stats: collections.Counter[str] = collections.Counter()
    for _ in range(int(m.group(1)) if m else 1):
        stats.update(_run_exit_script_once(script))
    return dict(stats)


def _run_exit_script_once(script: str) -> dict[str, int]:
    env = _child_env()
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-X", "faulthandler", "-c", script],
            capture_output=True, text=True, timeout=30 * SLOW, env=env,
            cwd=ROOT)
    except subprocess.TimeoutExpired as exc:
        raise ExampleHung(f"the script did not exit within {30 * SLOW} s:\n"
                          f"{_tail(str(exc.stderr or ''))}") from None
    took = time.monotonic() - t0
    out = f"stdout:\n{_tail(proc.stdout, 2000)}\nstderr:\n{_tail(proc.stderr)}"
    if proc.returncode != 0:
        raise ExampleCrashed(f"exit status {proc.returncode}\n{out}")
    if _BAD_STDERR.search(proc.stderr):
        raise ExampleCrashed(f"a memory error on exit\n{out}")
    if "sys.exit(0)" not in script and "END" not in proc.stdout:
        raise ExampleFailed(f"the script did not reach its end\n{out}")
    if "Traceback" in proc.stderr or "Exception ignored" in proc.stderr:
        raise ExampleFailed(f"an exception on exit\n{out}")
    return {"exited": 1, "slow exit (>5 s)": int(took > 5 * SLOW)}


_EXIT_THREAD_LOOP = """\
# runs: 8
import asyncio, threading, time
from aiokafka_c import AIOProducer
from tests.helpers import unused_port
KEEP = []
def slow_cb(err, msg):
    time.sleep(0.05)
async def main():
    for i in range(3):
        p = AIOProducer({'bootstrap.servers': '127.0.0.1:%d' % unused_port(),
                         'message.timeout.ms': 60000})
        KEEP.append(p)
        if i == 1:
            KEEP.append(p.produce('t', b'y'))
        if i == 2:
            p.produce_nowait('t', b'z', on_delivery=slow_cb,
                             dispatch='poll_thread')
t = threading.Thread(target=asyncio.run, args=(main(),))
t.start()
t.join()
KEEP.clear()
print('END', flush=True)
"""


@given(script=exit_scripts())
# known (91a1c55): producers of a thread's loop that ended, dropped on the
# main thread, then exit: intermittent segfault in atexit
# (akc_pollers_stop_all -> producer_forget_handle on a dropped producer)
@example(_EXIT_THREAD_LOOP)
def hyp_exit(script: str) -> None:
    t0 = time.monotonic()
    try:
        _count(run_exit_script(script))
    finally:
        _TIMES.append(time.monotonic() - t0)


# --------------------------------------------------------------------------
# running the searches: one process per test function


#: name -> (hypothesis test, share of the profile's max_examples)
HYP_TESTS: dict[str, tuple[Any, float]] = {
    "config": (hyp_config, 1.5),
    "numeric": (hyp_numeric, 1.0),
    "produce": (hyp_produce, 0.5),
    "reentrancy": (hyp_reentrancy, 0.4),
    "roundtrip": (hyp_roundtrip, 0.3),
    "exit": (hyp_exit, 0.15),
}
_STATS: collections.Counter[str] = collections.Counter()
_EXAMPLES = [0]


_TIMES: list[float] = []


def _count(stats: dict[str, int]) -> None:
    _EXAMPLES[0] += 1
    _STATS.update(stats)


def _run(fn: Callable[..., dict[str, int]], *args: Any,
         timeout: float) -> None:
    t0 = time.monotonic()
    try:
        _count(run_isolated(fn, *args, timeout=timeout))
    finally:
        _TIMES.append(time.monotonic() - t0)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    pkg_root = os.path.dirname(os.path.dirname(
        os.path.abspath(aiokafka_c.__file__)))
    paths = [pkg_root, ROOT] + [
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _child_main(name: str) -> None:
    """Runs one search in this process (the script entry point)."""
    fn, share = HYP_TESTS[name]
    profile = _hyp.profile_name()
    base = settings.get_profile(profile)
    n = max(3, round(base.max_examples * share))
    # @given captured the settings of its import; these replace them.
    fn = settings(base, max_examples=n)(fn)
    properties()  # introspect librdkafka once, before any example
    force_seed = os.environ.get("AIOKAFKA_C_HYPOTHESIS_SEED")
    if force_seed:
        fn = seed(int(force_seed))(fn)
    print(f"[{name}] profile={profile} max_examples={n} "
          f"librdkafka={aiokafka_c.librdkafka_version()[0]} "
          f"asan={UNDER_ASAN} fork={not NOFORK}", flush=True)
    t0 = time.monotonic()
    code = 0
    try:
        fn()
    except BaseException:  # noqa: BLE001
        traceback.print_exc(file=sys.stdout)
        code = 1
    took = time.monotonic() - t0
    top = ", ".join(f"{k}={v}" for k, v in sorted(_STATS.items()))
    ts = sorted(_TIMES) or [0.0]
    top += (f"\n[{name}] per example: median {ts[len(ts) // 2]:.2f} s, "
            f"max {ts[-1]:.2f} s, {sum(t > 1 for t in ts)} over 1 s")
    print(f"[{name}] {'FAILED' if code else 'passed'}: {_EXAMPLES[0]} "
          f"examples run in {took:.1f} s\n[{name}] outcomes: {top}",
          flush=True)
    sys.stdout.flush()
    os._exit(code)  # never join a poll thread an example left stuck


_CHILD_TIMEOUT = {"ci": 200, "asan": 900, "dev": 0}
#: test function -> search
_TEST_SEARCH = {
    "test_config_properties": "config",
    "test_numeric_config_values_are_exact": "numeric",
    "test_produce_arguments": "produce",
    "test_callbacks_using_the_producer": "reentrancy",
    "test_roundtrip_through_the_mock_broker": "roundtrip",
    "test_interpreter_exit_with_live_producers": "exit",
}


class _Searches:
    """Runs the searches of the selected tests as child processes, at
    most `parallel` at a time (their examples mostly wait on timers and
    the mock cluster), in test order; each test collects its own."""

    def __init__(self, names: list[str], parallel: int,
                 seed: Any) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.profile = _hyp.profile_name()
        self.timeout = _CHILD_TIMEOUT.get(self.profile, 0) or None
        self.seed = seed
        self.pool = ThreadPoolExecutor(max(1, parallel),
                                       thread_name_prefix="hyp-search")
        self.futures = {n: self.pool.submit(self._one, n) for n in names}

    def _one(self, name: str) -> tuple[str, int | None, str, str, float]:
        env = _child_env()
        env[_hyp.PROFILE_ENV] = self.profile
        if self.seed is not None:
            env["AIOKAFKA_C_HYPOTHESIS_SEED"] = str(self.seed)
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-X", "faulthandler",
             os.path.abspath(__file__), name], env=env, cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=self.timeout)
            status = "done"
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            status = "timeout"
        return status, proc.returncode, out, err, time.monotonic() - t0

    def check(self, name: str) -> None:
        status, rc, out, err, took = self.futures[name].result()
        print(out[-3000:])
        print(f"[{name}] wall time of the search process: {took:.1f} s")
        if status == "timeout":
            pytest.fail(f"the {name} search did not finish within "
                        f"{self.timeout} s\n{_tail(out, 20000)}\nstderr:\n"
                        f"{_tail(err)}", pytrace=False)
        if rc != 0:
            pytest.fail(f"the {name} search failed (exit {rc}):\n"
                        f"{_tail(out, 30000)}\nstderr:\n{_tail(err)}",
                        pytrace=False)


@pytest.fixture(scope="module")
def searches(request: pytest.FixtureRequest) -> Any:
    here = os.path.abspath(__file__)
    names = [_TEST_SEARCH[item.originalname]
             for item in request.session.items
             if os.path.abspath(str(item.fspath)) == here
             and getattr(item, "originalname", "") in _TEST_SEARCH]
    parallel = int(os.environ.get("AIOKAFKA_C_HYP_PARALLEL", "0")) or \
        (os.cpu_count() or 2)
    s = _Searches(list(dict.fromkeys(names)), parallel,
                  request.config.getoption("hypothesis_seed", None))
    yield s
    s.pool.shutdown(wait=False, cancel_futures=True)


def _timeout_mark() -> Any:
    t = _CHILD_TIMEOUT.get(_hyp.profile_name(), 0)
    # a test may wait for the searches started before its own
    return pytest.mark.timeout(3 * t + 60 if t else 0)


@_timeout_mark()
def test_config_properties(searches: Any) -> None:
    """Random configs from librdkafka's real properties: construction
    raises KafkaException/TypeError/ValueError exactly when the oracle
    says so, or succeeds; closing (sync, async, by GC) is bounded."""
    searches.check("config")


@_timeout_mark()
def test_numeric_config_values_are_exact(searches: Any) -> None:
    """A number in the config is stored by librdkafka as that number, or
    AIOProducer refuses it (no silent wrap-around or truncation)."""
    searches.check("numeric")


@_timeout_mark()
def test_produce_arguments(searches: Any) -> None:
    """Random produce()/produce_nowait() arguments and operations on a
    mock cluster: clean synchronous errors, or a future/callback that
    completes (Message with the right fields, or KafkaException) within
    2 x message.timeout.ms + margin; then flush() == 0 and len() == 0."""
    searches.check("produce")


@_timeout_mark()
def test_callbacks_using_the_producer(searches: Any) -> None:
    """on_delivery/error_cb/stats_cb that produce, flush, purge, close or
    drop the producer, on the loop and on the poll thread: no crash, no
    hang, every future completes."""
    searches.check("reentrancy")


@_timeout_mark()
def test_roundtrip_through_the_mock_broker(searches: Any) -> None:
    """What a consumer (confluent-kafka) reads back from the mock cluster
    is what was produced: topic, value, key, headers, timestamp."""
    searches.check("roundtrip")


@_timeout_mark()
def test_interpreter_exit_with_live_producers(searches: Any) -> None:
    """Scripts that exit with producers open, messages pending, loops
    closed or not: exit status 0, no crash, no hang."""
    searches.check("exit")


if __name__ == "__main__":
    _child_main(sys.argv[1])
