"""Edges of the client core found by adversarial review, each in its own
interpreter (a regression here is a crash, and must not take the test
session with it).  All run on librdkafka's mock cluster: they need a
producer's threads and timing, not a broker."""

from __future__ import annotations

import pytest

from tests.test_lifecycle import assert_clean_exit, run_script

MOCK = '{"test.mock.num.brokers": "1"}'


def test_subclass_dropped_while_its_close_finishes() -> None:
    """A subclass instance's __dict__ is cleared (running an attribute's
    __del__, which releases the GIL) before the base dealloc runs; the
    poll thread finishing the close meanwhile must not revive it."""
    r = run_script(
        f"""
        import asyncio, time
        from aiokafka_c import AIOProducer
        class Slow:
            def __del__(self):
                time.sleep(0.3)
        class P(AIOProducer):
            pass
        async def main():
            p = P({MOCK})
            p.attr = Slow()
            await p.produce("t", b"x")
            p.close()
            while True:  # until the poll thread took the handle away
                try:
                    p._mock_set_broker_up(1, True)
                except RuntimeError:
                    break
                time.sleep(0.0005)
            del p
            await asyncio.sleep(0.3)
            print("survived")
        asyncio.run(main())
        """
    )
    assert_clean_exit(r)
    assert "survived" in r.stdout


def test_thread_close_racing_the_atexit_hook() -> None:
    """A daemon thread's blocking close() joins the poll thread while the
    atexit hook stops every thread: each thread is joined and freed once."""
    r = run_script(
        f"""
        import sys, threading
        from aiokafka_c import AIOProducer, _core
        sys.setswitchinterval(1e-6)
        p = AIOProducer({MOCK})
        t = threading.Thread(target=p.close, daemon=True)
        t.start()
        while True:
            try:
                p.produce_nowait("t")
            except RuntimeError as e:
                if "closed" in str(e):
                    break
        for _ in range(50):
            _core._atexit()
        t.join(30)
        print("joined", not t.is_alive())
        """
    )
    assert_clean_exit(r)
    assert "joined True" in r.stdout


def test_produce_closed_by_its_own_arguments() -> None:
    """Building a message runs user code (a headers list subclass's
    __iter__); if that closes the producer, produce() raises instead of
    handing the message to a destroyed handle."""
    r = run_script(
        f"""
        import asyncio, time
        from aiokafka_c import AIOProducer
        P = None
        class Hdrs(list):
            def __iter__(self):
                P.close()
                time.sleep(0.3)
                return super().__iter__()
        async def main():
            global P
            P = AIOProducer({MOCK})
            await P.produce("warm", b"x")
            try:
                await P.produce("t", b"v", headers=Hdrs([("h", b"1")]))
                print("delivered")
            except RuntimeError as e:
                print("refused:", e)
        asyncio.run(main())
        """
    )
    assert_clean_exit(r)
    assert "refused:" in r.stdout and "closed" in r.stdout


def test_str_subclass_topic_purged_from_its_hash() -> None:
    """A str-subclass topic's __hash__ may run anything (here purge() on
    the poll thread while a message waits for room): the topic is kept as
    an exact str, so the overflow drain runs no user code, and every
    message gets exactly one result."""
    r = run_script(
        f"""
        import asyncio
        from aiokafka_c import AIOProducer
        P = None
        armed = False
        hashed_armed = []
        class Topic(str):
            def __hash__(self):
                global armed
                if armed:
                    armed = False
                    hashed_armed.append(1)
                    P.purge()
                return str.__hash__(self)
            __eq__ = str.__eq__
        def first(err, msg):
            global armed
            armed = True
        async def main():
            global P
            P = AIOProducer({{"test.mock.num.brokers": "1",
                             "queue.buffering.max.messages": 1}})
            t = Topic("t")
            await P.produce(t, b"warm")
            P.produce_nowait(t, b"1", on_delivery=first,
                             dispatch="poll_thread")
            fut = P.produce(t, b"2")
            try:
                m = await asyncio.wait_for(fut, 10)
                print("second:", type(m.topic()).__name__, m.error())
            except Exception as e:
                print("second failed:", e)
            print("pending", len(P), "hash ran armed:", bool(hashed_armed))
            await P.close(2)
        asyncio.run(main())
        """
    )
    assert_clean_exit(r)
    assert "pending 0 hash ran armed: False" in r.stdout
    assert "second: str None" in r.stdout


def test_flush_future_failing_its_hash_in_the_finalizer() -> None:
    """Answering flush waiters of a dropped producer may raise (a future's
    __hash__): reported as unraisable, never a second dealloc."""
    r = run_script(
        """
        import asyncio, sys
        from aiokafka_c import AIOProducer
        seen = []
        sys.unraisablehook = lambda u: seen.append(type(u.exc_value).__name__)
        class Fut(asyncio.Future):
            n = 0
            def __hash__(self):
                Fut.n += 1
                if Fut.n > 1:
                    raise RuntimeError("hash fails")
                return id(self) >> 4
        class Loop(asyncio.SelectorEventLoop):
            def create_future(self):
                return Fut(loop=self)
        async def main():
            p = AIOProducer({"bootstrap.servers": "127.0.0.1:1"})
            p.produce_nowait("t", b"x")
            f = p.flush()
            del p
            await asyncio.sleep(0.1)
        loop = Loop()
        loop.run_until_complete(main())
        loop.close()
        print("survived", seen)
        """
    )
    assert r.returncode == 0, r.stderr
    assert "Segmentation" not in r.stderr and "Fatal" not in r.stderr
    assert "survived ['RuntimeError']" in r.stdout


@pytest.mark.parametrize("via", ["logger", "error_cb"])
def test_cycle_through_a_config_callable_is_collected(via: str) -> None:
    """An object that holds the producer and is its logger (or error_cb)
    forms a cycle the collector can break: producer and threads go."""
    r = run_script(
        f"""
        import gc, os, time, weakref
        from aiokafka_c import AIOProducer
        def nthreads():
            return len(os.listdir("/proc/self/task"))
        class App:
            def __init__(self):
                cfg = {MOCK}
                cfg["{via}"] = self if "{via}" == "logger" else self.on_error
                self.p = AIOProducer(cfg)
            def log(self, level, msg, *a, **kw):
                pass
            def on_error(self, err):
                pass
        base = nthreads()
        app = App()
        ref = weakref.ref(app.p)
        del app
        gc.collect()
        for _ in range(100):
            if nthreads() <= base:
                break
            time.sleep(0.1)
        print("collected", ref() is None, "extra threads", nthreads() - base)
        """
    )
    assert_clean_exit(r)
    assert "collected True extra threads 0" in r.stdout


@pytest.mark.asyncio
async def test_nul_characters_are_refused() -> None:
    """A C string would cut "orders\\x00-eu" to "orders": refused."""
    from aiokafka_c import AIOProducer

    with pytest.raises(ValueError, match="NUL"):
        AIOProducer({"test.mock.num.brokers": "1", "client.id\x00x": "a"})
    with pytest.raises(ValueError, match="NUL"):
        AIOProducer({"test.mock.num.brokers": "1", "client.id": "a\x00b"})
    async with AIOProducer({"test.mock.num.brokers": "1"}) as p:
        with pytest.raises(ValueError, match="NUL"):
            p.produce("orders\x00-eu", b"v")
        assert len(p) == 0


def test_close_again_while_the_thread_finishes() -> None:
    """The loop may see its close future resolved, and call close() again
    (which joins the finished thread), while the poll thread is still
    finishing its last Python work: joined once, freed once."""
    r = run_script(
        f"""
        import asyncio, sys
        from aiokafka_c import AIOProducer
        sys.setswitchinterval(1e-6)
        async def main():
            for _ in range(150):
                p = AIOProducer({MOCK})
                first, second = p.close(), p.close()
                await first
                await p.close()
                await second
            print("done")
        asyncio.run(main())
        """,
        timeout=300,
    )
    assert_clean_exit(r)
    assert "done" in r.stdout
