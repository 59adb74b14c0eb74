"""The example app's live-feed fan-out (``aiokafka_c.example.feed``), in
process: the hub fed by a fake source, ``serve_viewer`` on fake sockets.
The feed through the real app and consumer is in test_example_app.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

pytest.importorskip("fastapi")

from aiokafka_c.example.feed import (
    CLOSE_GOING_AWAY,
    CLOSE_TOO_SLOW,
    FeedHub,
    Viewer,
    item_document,
    serve_viewer,
)

pytestmark = pytest.mark.asyncio


def item(n: int) -> dict[str, Any]:
    return {"topic": "items", "partition": 0, "offset": n, "value": f"v{n}"}


def drain(viewer: Viewer) -> list[dict[str, Any]]:
    got = []
    while not viewer.queue.empty():
        got.append(json.loads(viewer.queue.get_nowait()))
    return got


async def until(what: str, check: Callable[[], bool]) -> None:
    """Let the loop run until ``check()``; fails after many turns (no
    clock involved)."""
    for _ in range(10_000):
        if check():
            return
        await asyncio.sleep(0)
    pytest.fail(f"never happened: {what}")


class FakeSocket:
    """Starlette's WebSocket as ``serve_viewer`` uses it. ``stalled``: the
    client reads nothing, so a send never completes (and neither does a
    close, with ``close_stalls``)."""

    def __init__(self, *, stalled: bool = False, close_stalls: bool = False):
        self.accepted = False
        self.sent: list[dict[str, Any]] = []
        self.closed_with: tuple[int, str | None] | None = None
        self.close_started = False
        self._incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._flowing = asyncio.Event()
        if not stalled:
            self._flowing.set()
        self._close_stalls = close_stalls
        self.fail_sends = False

    async def accept(self) -> None:
        self.accepted = True

    async def send_text(self, data: str) -> None:
        if self.fail_sends:
            raise RuntimeError("the client went away")
        await self._flowing.wait()
        self.sent.append(json.loads(data))

    async def receive(self) -> Mapping[str, Any]:
        return await self._incoming.get()

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.close_started = True
        if self._close_stalls:
            await asyncio.Event().wait()
        self.closed_with = (code, reason)

    def client_sends(self, text: str) -> None:
        self._incoming.put_nowait({"type": "websocket.receive", "text": text})

    def client_disconnects(self) -> None:
        self._incoming.put_nowait({"type": "websocket.disconnect", "code": 1001})


# --------------------------------------------------------------------------
# the hub alone


async def test_every_viewer_gets_every_item_in_order() -> None:
    hub = FeedHub(queue_size=10)
    viewers = [hub.join() for _ in range(3)]
    assert len(hub) == 3
    for n in range(5):
        assert hub.publish(item(n)) == 3
    for viewer in viewers:
        assert drain(viewer) == [item(n) for n in range(5)]
    snap = hub.snapshot()
    assert snap["viewers"] == 3
    assert snap["viewers_total"] == 3
    assert snap["viewers_dropped"] == 0
    assert snap["items_fanned_out"] == 15


async def test_publishing_to_no_viewer_is_a_no_op() -> None:
    hub = FeedHub(queue_size=1)
    assert hub.publish(item(0)) == 0
    assert hub.snapshot()["items_fanned_out"] == 0


async def test_a_full_queue_drops_that_viewer_only() -> None:
    """A fake source publishes while one viewer drains its queue and
    another never does: the stalled one is dropped when its queue is full,
    with the policy close code; the other gets everything."""
    hub = FeedHub(queue_size=3)
    fast, slow = hub.join(), hub.join()
    got: list[dict[str, Any]] = []

    async def fast_reader() -> None:
        while True:
            got.append(json.loads(await fast.queue.get()))

    reader = asyncio.ensure_future(fast_reader())
    try:
        counts = []
        for n in range(10):
            counts.append(hub.publish(item(n)))
            await until("the fast viewer to catch up", fast.queue.empty)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)

    # Three fit in the slow viewer's queue; the fourth drops it.
    assert counts == [2, 2, 2, 1, 1, 1, 1, 1, 1, 1]
    assert got == [item(n) for n in range(10)]
    assert slow.closed.is_set() and not fast.closed.is_set()
    assert slow.close_code == CLOSE_TOO_SLOW
    assert "too slow" in slow.close_reason
    assert slow.queue.empty()  # what it had queued is let go
    assert len(hub) == 1
    snap = hub.snapshot()
    assert snap["viewers_dropped"] == 1
    assert snap["items_fanned_out"] == 3 * 2 + 7


async def test_leave_is_idempotent_and_stops_delivery() -> None:
    hub = FeedHub(queue_size=2)
    viewer = hub.join()
    hub.leave(viewer)
    hub.leave(viewer)
    assert len(hub) == 0
    assert hub.publish(item(0)) == 0
    assert viewer.queue.empty()
    assert not viewer.closed.is_set()


async def test_close_lets_every_viewer_go_and_refuses_new_ones() -> None:
    hub = FeedHub(queue_size=2)
    viewers = [hub.join() for _ in range(2)]
    hub.publish(item(0))
    hub.close()
    assert len(hub) == 0
    for viewer in viewers:
        assert viewer.closed.is_set()
        assert viewer.close_code == CLOSE_GOING_AWAY
        assert viewer.queue.empty()
    late = hub.join()
    assert late.closed.is_set() and late.close_code == CLOSE_GOING_AWAY
    assert hub.publish(item(1)) == 0


async def test_queue_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FeedHub(queue_size=0)


# --------------------------------------------------------------------------
# serve_viewer: a hub and (fake) WebSockets


async def test_serve_viewer_streams_until_the_client_disconnects() -> None:
    hub = FeedHub(queue_size=10)
    socket = FakeSocket()
    served = asyncio.ensure_future(serve_viewer(socket, hub))
    await until("the viewer to join", lambda: len(hub) == 1)
    assert socket.accepted
    hub.publish(item(0))
    hub.publish(item(1))
    await until("two items sent", lambda: len(socket.sent) == 2)
    socket.client_sends("ignored")  # what the client says is ignored
    hub.publish(item(2))
    await until("three items sent", lambda: len(socket.sent) == 3)
    assert socket.sent == [item(0), item(1), item(2)]

    socket.client_disconnects()
    await served
    assert len(hub) == 0
    assert socket.closed_with is None  # it is gone: nothing to close
    assert hub.publish(item(3)) == 0


async def test_a_stalled_viewer_is_closed_and_the_others_keep_up() -> None:
    hub = FeedHub(queue_size=4)
    fast, stalled = FakeSocket(), FakeSocket(stalled=True)
    tasks = [
        asyncio.ensure_future(serve_viewer(s, hub)) for s in (fast, stalled)
    ]
    await until("both viewers to join", lambda: len(hub) == 2)
    n = 0
    while not hub.viewers_dropped:
        assert n < 100, "the stalled viewer was never dropped"
        hub.publish(item(n))
        n += 1
        await until("the fast viewer to keep up", lambda: len(fast.sent) == n)
    await tasks[1]
    # One item is stuck in the stalled send, four fill the queue, the
    # sixth finds it full.
    assert n == 6
    assert stalled.closed_with is not None
    assert stalled.closed_with[0] == CLOSE_TOO_SLOW
    assert stalled.sent == []
    assert len(hub) == 1 and hub.snapshot()["viewers_dropped"] == 1

    for m in range(n, n + 20):
        hub.publish(item(m))
        await until("the fast viewer", lambda: len(fast.sent) == m + 1)
    assert fast.sent == [item(m) for m in range(n + 20)]
    fast.client_disconnects()
    await tasks[0]
    assert len(hub) == 0


async def test_closing_a_stalled_viewer_is_bounded() -> None:
    """A dropped viewer that does not even take the close frame: the
    handler gives up on the close and returns."""
    hub = FeedHub(queue_size=1)
    socket = FakeSocket(stalled=True, close_stalls=True)
    served = asyncio.ensure_future(serve_viewer(socket, hub))
    await until("the viewer to join", lambda: len(hub) == 1)
    for n in range(3):
        hub.publish(item(n))
    await served
    assert socket.close_started and socket.closed_with is None
    assert len(hub) == 0


async def test_a_send_that_fails_ends_the_viewer() -> None:
    hub = FeedHub(queue_size=5)
    socket = FakeSocket()
    socket.fail_sends = True
    served = asyncio.ensure_future(serve_viewer(socket, hub))
    await until("the viewer to join", lambda: len(hub) == 1)
    hub.publish(item(0))
    await served  # the send's exception does not escape
    assert len(hub) == 0


async def test_shutdown_closes_the_viewers_going_away() -> None:
    hub = FeedHub(queue_size=5)
    sockets = [FakeSocket(), FakeSocket(stalled=True)]
    tasks = [asyncio.ensure_future(serve_viewer(s, hub)) for s in sockets]
    await until("both viewers to join", lambda: len(hub) == 2)
    hub.publish(item(0))
    hub.close()
    await asyncio.gather(*tasks)
    for socket in sockets:
        assert socket.closed_with is not None
        assert socket.closed_with[0] == CLOSE_GOING_AWAY
    # A viewer arriving during shutdown is accepted and let go at once.
    late = FakeSocket()
    await serve_viewer(late, hub)
    assert late.accepted and late.closed_with is not None
    assert late.closed_with[0] == CLOSE_GOING_AWAY


async def test_many_viewers_come_and_go() -> None:
    hub = FeedHub(queue_size=50)
    sockets = [FakeSocket() for _ in range(200)]
    tasks = [asyncio.ensure_future(serve_viewer(s, hub)) for s in sockets]
    await until("all joined", lambda: len(hub) == 200)
    for n in range(10):
        hub.publish(item(n))
    for socket in sockets[::2]:
        socket.client_disconnects()
    await asyncio.gather(*tasks[::2])
    assert len(hub) == 100
    hub.publish(item(10))
    await until(
        "the rest to get all eleven",
        lambda: all(len(s.sent) == 11 for s in sockets[1::2]),
    )
    hub.close()
    await asyncio.gather(*tasks)
    assert hub.snapshot()["viewers_total"] == 200
    assert hub.snapshot()["viewers_dropped"] == 0


# --------------------------------------------------------------------------
# what a viewer is sent


class FakeMessage:
    def __init__(self, key: bytes | None, value: bytes | None) -> None:
        self._key, self._value = key, value

    def topic(self) -> str:
        return "items"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 41

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)


async def test_item_document() -> None:
    doc = item_document(FakeMessage(b"k", "n\u00e9e".encode()))  # type: ignore[arg-type]
    assert doc == {
        "topic": "items",
        "partition": 2,
        "offset": 41,
        "key": "k",
        "value": "n\u00e9e",
        "timestamp": 1_700_000_000_000,
        "timestamp_type": 1,
    }
    doc = item_document(FakeMessage(None, b"\xff"))  # type: ignore[arg-type]
    assert doc["key"] is None and doc["value"] == "\ufffd"
    assert item_document(FakeMessage(None, None))["value"] is None  # type: ignore[arg-type]
