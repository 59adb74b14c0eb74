"""The live feed: one consumer per app process, fanned out to every browser
watching ``/ws/items``.

``LiveFeed`` owns the process's one ``AIOConsumer``. It does not join a
consumer group: it assigns itself every partition of the topic at the
partition's high watermark as it was when the feed started, so the feed
shows every item produced from then on, in every app process (each has its
own consumer), with no group membership, no rebalance and nothing committed
on the cluster. Partitions added later are found by a periodic metadata
check and read from their beginning (all they hold is newer than the feed).

``FeedHub`` fans each item out: one bounded queue per viewer, filled with
``put_nowait`` by the consumer task, which never waits for a viewer. A
viewer whose queue is full is too slow: it is dropped (its socket closed
with code 1008) and the others and the consumer go on as if it had never
been there.

Everything here runs on the event loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiokafka_c import (
    OFFSET_BEGINNING,
    AIOConsumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_TOO_SLOW",
    "FeedHub",
    "LiveFeed",
    "Viewer",
    "ViewerSocket",
    "item_document",
    "serve_viewer",
]

log = logging.getLogger("aiokafka_c.example")

CLOSE_TOO_SLOW = 1008
"""WebSocket close code for a viewer dropped because its queue filled up
(1008: policy violation)."""
CLOSE_GOING_AWAY = 1001
"""WebSocket close code for the viewers still there at shutdown."""

# How long closing a dropped viewer's socket may take: the close frame waits
# behind whatever the viewer has not read yet, and a viewer too slow to
# keep up may not read it at all.
_CLOSE_WAIT_S = 1.0

# librdkafka calls that ask the cluster something are bounded by this.
_REQUEST_TIMEOUT_S = 5.0
# The consumer hands over at most this many messages per wake-up (and
# never more than a viewer's queue holds), and wakes up at least this often
# to look for new partitions.
_BATCH = 500
_POLL_TIMEOUT_S = 1.0
_METADATA_INTERVAL_S = 10.0
# Waiting for the cluster or the topic: from the first to the last delay.
_RETRY_FIRST_S = 0.2
_RETRY_MAX_S = 5.0


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "replace")


def item_document(msg: Message) -> dict[str, Any]:
    """What a viewer gets for one consumed message: where it is, its key
    and value as text (invalid UTF-8 replaced) and its timestamp (ms since
    the epoch; ``timestamp_type`` 1 = create time, 2 = log append time)."""
    ts_type, ts = msg.timestamp()
    return {
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "key": _text(msg.key()),
        "value": _text(msg.value()),
        "timestamp": ts,
        "timestamp_type": ts_type,
    }


class Viewer:
    """One connected browser: the queue of JSON texts waiting to be sent
    to it, and, once the hub lets it go, why."""

    __slots__ = ("close_code", "close_reason", "closed", "queue")

    def __init__(self, queue_size: int) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""

    def _close(self, code: int, reason: str) -> None:
        # What is still queued will not be sent: drop it now.
        while not self.queue.empty():
            self.queue.get_nowait()
        self.close_code = code
        self.close_reason = reason
        self.closed.set()


class FeedHub:
    """Fans items out to viewers, each with a queue of ``queue_size``."""

    def __init__(self, queue_size: int) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.queue_size = queue_size
        self._viewers: set[Viewer] = set()
        self._closed = False
        self.viewers_total = 0
        self.viewers_dropped = 0
        self.items_fanned_out = 0

    def __len__(self) -> int:
        """Viewers connected now."""
        return len(self._viewers)

    def join(self) -> Viewer:
        """A new viewer, fed from the next published item on. After
        ``close()`` it comes back already closed (going away)."""
        viewer = Viewer(self.queue_size)
        self.viewers_total += 1
        if self._closed:
            viewer._close(CLOSE_GOING_AWAY, "the server is shutting down")
        else:
            self._viewers.add(viewer)
        return viewer

    def leave(self, viewer: Viewer) -> None:
        """Forget ``viewer`` (it disconnected, or was dropped); idempotent."""
        self._viewers.discard(viewer)

    def publish(self, item: Mapping[str, Any]) -> int:
        """Queue ``item`` as JSON for every viewer; a viewer whose queue is
        full is dropped. Returns how many viewers got it. Never waits."""
        if not self._viewers:
            return 0
        text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        sent = 0
        for viewer in list(self._viewers):
            try:
                viewer.queue.put_nowait(text)
            except asyncio.QueueFull:
                self._drop(viewer)
            else:
                sent += 1
        self.items_fanned_out += sent
        return sent

    def _drop(self, viewer: Viewer) -> None:
        self._viewers.discard(viewer)
        self.viewers_dropped += 1
        viewer._close(
            CLOSE_TOO_SLOW,
            f"too slow: {self.queue_size} items waiting to be sent",
        )

    def close(self) -> None:
        """Let every viewer go (going away); later viewers are refused."""
        self._closed = True
        viewers, self._viewers = self._viewers, set()
        for viewer in viewers:
            viewer._close(CLOSE_GOING_AWAY, "the server is shutting down")

    def snapshot(self) -> dict[str, int]:
        return {
            "viewers": len(self._viewers),
            "viewers_total": self.viewers_total,
            "viewers_dropped": self.viewers_dropped,
            "queue_size": self.queue_size,
            "items_fanned_out": self.items_fanned_out,
        }


class ViewerSocket(Protocol):
    """The part of Starlette's ``WebSocket`` that ``serve_viewer`` uses."""

    async def accept(self) -> None: ...
    async def send_text(self, data: str) -> None: ...
    async def receive(self) -> Mapping[str, Any]: ...
    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        ...


async def _send_items(socket: ViewerSocket, viewer: Viewer) -> None:
    while True:
        await socket.send_text(await viewer.queue.get())


async def _until_disconnect(socket: ViewerSocket) -> None:
    # What the browser sends is ignored; reading is how a disconnect shows.
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def serve_viewer(socket: ViewerSocket, hub: FeedHub) -> None:
    """Feed one WebSocket from ``hub`` until the client disconnects or the
    hub lets it go; then close the socket with the hub's code.

    The viewer joins before the handshake completes, so a client whose
    connection is open gets every item published after that."""
    viewer = hub.join()
    try:
        await socket.accept()
        sender = asyncio.ensure_future(_send_items(socket, viewer))
        listener = asyncio.ensure_future(_until_disconnect(socket))
        released = asyncio.ensure_future(viewer.closed.wait())
        tasks = {sender, listener, released}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            # Collect every outcome (a send to a socket that went away
            # raises) so that none is reported as never retrieved.
            await asyncio.gather(*tasks, return_exceptions=True)
        still_there = not (listener.done() and not listener.cancelled())
        if viewer.close_code is not None and still_there:
            with contextlib.suppress(Exception, asyncio.TimeoutError):
                await asyncio.wait_for(
                    socket.close(viewer.close_code, viewer.close_reason),
                    _CLOSE_WAIT_S,
                )
    finally:
        hub.leave(viewer)


class LiveFeed:
    """The app process's consumer, publishing every item to ``hub``.

    ``start()`` returns at once; the consumer is made and positioned in a
    task, so the app serves while the cluster is still out of reach.
    ``bootstrap`` says where the cluster is (awaited once, in that task):
    for the embedded mock cluster it waits until the producer knows.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        topic: str,
        hub: FeedHub,
        bootstrap: Callable[[], Awaitable[str]],
    ) -> None:
        self._config = dict(config)
        self.topic = topic
        self.hub = hub
        self._bootstrap = bootstrap
        self._consumer: AIOConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._partitions: set[int] = set()
        self.state = "starting"
        self.detail = "looking for the cluster"
        self.items_consumed = 0
        self.errors = 0
        self._next_error_log = 0.0

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self, timeout: float) -> None:
        """Stop reading, let the viewers go, close the consumer (at most
        ``timeout`` seconds)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
            if not task.cancelled() and task.exception() is not None:
                log.error("live feed: %r", task.exception())
        self.hub.close()
        consumer, self._consumer = self._consumer, None
        self.state, self.detail = "stopped", "the app is shutting down"
        if consumer is not None:
            started = time.monotonic()
            await consumer.close(timeout)
            log.info(
                "live feed: consumer closed after %.2f s",
                time.monotonic() - started,
            )

    def snapshot(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "detail": self.detail,
            "topic": self.topic,
            "partitions": len(self._partitions),
            "items_consumed": self.items_consumed,
            "errors": self.errors,
            **self.hub.snapshot(),
        }

    # -- the task

    async def _run(self) -> None:
        try:
            config = dict(self._config)
            config["bootstrap.servers"] = await self._bootstrap()
            config["error_cb"] = self._on_error
            self._consumer = consumer = AIOConsumer(config)
            await self._go_live(consumer)
            await self._read(consumer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The app goes on without its feed.
            self.state, self.detail = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("live feed stopped")

    async def _go_live(self, consumer: AIOConsumer) -> None:
        """Assign every partition at its high watermark, once the topic
        can be seen."""
        delay = _RETRY_FIRST_S
        missing = False  # then all it will hold comes after our start
        while True:
            try:
                partitions = await self._list_partitions(consumer)
                if partitions:
                    starts = [
                        TopicPartition(
                            self.topic, p,
                            OFFSET_BEGINNING if missing else await self._end(p))
                        for p in sorted(partitions)
                    ]
                    break
                missing = True
                self.state = "waiting"
                self.detail = f"topic {self.topic!r} does not exist yet"
            except KafkaException as exc:
                self.state = "waiting"
                self.detail = f"cannot reach the cluster: {_reason(exc)}"
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)
        await consumer.assign(starts)
        self._partitions = set(partitions)
        self.state = "live"
        self.detail = (
            f"reading {len(starts)} partition(s) of {self.topic!r} from "
            + ("the beginning (the topic came after the feed)" if missing
               else "where they ended at start")
        )
        log.info(
            "live feed: reading topic %r from offsets %s",
            self.topic,
            ", ".join(f"{tp.partition}:{tp.offset}" for tp in starts),
        )

    async def _end(self, partition: int) -> int:
        assert self._consumer is not None
        _low, high = await self._consumer.get_watermark_offsets(
            TopicPartition(self.topic, partition), timeout=_REQUEST_TIMEOUT_S
        )
        return high

    async def _list_partitions(self, consumer: AIOConsumer) -> set[int]:
        """The topic's partitions; empty while it does not exist."""
        md = await consumer.list_topics(self.topic, timeout=_REQUEST_TIMEOUT_S)
        topic = md.topics.get(self.topic)
        if topic is None or topic.error is not None:
            return set()
        return set(topic.partitions)

    async def _read(self, consumer: AIOConsumer) -> None:
        # A batch is published without a pause, so it must fit in the
        # queue of a viewer that keeps up; between batches the viewers'
        # senders get their turn.
        batch_size = min(_BATCH, self.hub.queue_size)
        next_check = time.monotonic() + _METADATA_INTERVAL_S
        while True:
            try:
                batch = await consumer.consume(batch_size, _POLL_TIMEOUT_S)
            except KafkaException as exc:
                self._count_error(_reason(exc))
                await asyncio.sleep(_RETRY_FIRST_S)
                continue
            for msg in batch:
                err = msg.error()
                if err is not None:
                    self._count_error(f"{err.name()}: {err.str()}")
                    continue
                self.items_consumed += 1
                if len(self.hub):
                    self.hub.publish(item_document(msg))
            await asyncio.sleep(0)
            if time.monotonic() >= next_check:
                await self._follow_new_partitions(consumer)
                next_check = time.monotonic() + _METADATA_INTERVAL_S

    async def _follow_new_partitions(self, consumer: AIOConsumer) -> None:
        try:
            partitions = await self._list_partitions(consumer)
        except KafkaException:
            return  # the next check will do
        new = sorted(partitions - self._partitions)
        if not new:
            return
        await consumer.incremental_assign(
            [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in new]
        )
        self._partitions.update(new)
        log.info("live feed: new partition(s) %s of %r", new, self.topic)

    def _on_error(self, err: KafkaError) -> None:
        self._count_error(f"{err.name()}: {err.str()}")

    def _count_error(self, what: str) -> None:
        """Count a consumer error; log one a second at most."""
        self.errors += 1
        now = time.monotonic()
        if now >= self._next_error_log:
            self._next_error_log = now + 1.0
            log.warning("live feed: %s", what)


def _reason(exc: KafkaException) -> str:
    err = exc.args[0] if exc.args else None
    if isinstance(err, KafkaError):
        return f"{err.name()}: {err.str()}"
    return str(exc)
