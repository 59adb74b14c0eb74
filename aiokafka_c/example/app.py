"""The Confluent blog's FastAPI example, on aiokafka_c.

Five ``POST`` endpoints take ``{"name": str}`` and differ only in how they
produce ``name`` to Kafka:

- ``/items1`` awaits ``producer.produce()`` and answers with the delivered
  message's timestamp, partition and offset (or the Kafka error);
- ``/items2`` out-of-band: ``produce_nowait`` with an ``on_delivery``
  callback run on the event loop;
- ``/items3`` out-of-band: the callback runs on the producer's native poll
  thread, so a delivery costs the loop nothing;
- ``/items4`` fire-and-forget (failures are logged by the library);
- ``/items5`` produces nothing: the baseline.

``GET /stats`` and ``GET /healthz`` report on it, ``GET /`` is a live page,
and ``/ws/items`` is a WebSocket streaming every item the app's consumer
reads from the topic (see ``feed.py``).
Run it with ``python -m aiokafka_c.example`` or
``uvicorn aiokafka_c.example.app:app``; see ``settings.py`` for the
environment variables.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Request, WebSocket
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import AfterValidator, BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as ASGIMessage

from aiokafka_c import AIOProducer, KafkaError, KafkaException, Message

from .feed import FeedHub, LiveFeed, serve_viewer
from .metrics import (
    ClusterHealth,
    Counters,
    LatencyWindow,
    RateLimitedLog,
    describe_error,
)
from .settings import Settings

__all__ = ["MAX_BODY_BYTES", "MAX_NAME_BYTES", "app", "create_app"]

log = logging.getLogger("aiokafka_c.example")

MAX_NAME_BYTES = 64 * 1024
"""Longest accepted ``name``, in bytes of UTF-8 (422 beyond)."""
MAX_BODY_BYTES = 256 * 1024
"""Largest accepted request body (413 beyond): room for a ``name`` of
``MAX_NAME_BYTES`` even when JSON escapes inflate it."""

ENDPOINTS = ("items1", "items2", "items3", "items4", "items5")

# The feed's consumer closes before the producer flushes, within this or
# the flush timeout, whichever is shorter.
FEED_CLOSE_TIMEOUT_S = 5.0

# Delivery errors that mean "the cluster cannot be reached right now" and
# get a 503; any other delivery error is a 500.
UNAVAILABLE_ERRORS = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._RESOLVE,
        KafkaError._QUEUE_FULL,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.BROKER_NOT_AVAILABLE,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    }
)


def _check_name(name: str) -> str:
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("name is not valid Unicode text") from None
    if size > MAX_NAME_BYTES:
        raise ValueError(
            f"name is {size} bytes in UTF-8; at most {MAX_NAME_BYTES} allowed"
        )
    return name


class Item(BaseModel):
    """The request body of every ``/itemsN`` endpoint."""

    name: Annotated[
        str, Field(max_length=MAX_NAME_BYTES), AfterValidator(_check_name)
    ]


class Delivered(BaseModel):
    """``/items1``: where the message landed. ``timestamp`` is in ms since
    the epoch; ``timestamp_type`` 1 = create time, 2 = log append time."""

    timestamp: int
    timestamp_type: int
    partition: int
    offset: int


class Accepted(BaseModel):
    """``/items2``–``/items5``: the request was handled at ``timestamp``
    (ms since the epoch); delivery, if any, happens later."""

    timestamp: int


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII characters escaped: a validation error may quote
    input that is not valid Unicode (a lone surrogate), which UTF-8 cannot
    encode but a \\u escape can."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode("ascii")


_QUOTE_LIMIT = 200


async def validation_failed(
    request: Request, exc: Exception
) -> AsciiJSONResponse:
    """422 for a body that is not a valid Item; quotes of the input are cut
    to a few hundred characters (a rejected name can be 64 KiB)."""
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        error = dict(error)
        quoted = error.get("input")
        if isinstance(quoted, str) and len(quoted) > _QUOTE_LIMIT:
            error["input"] = (
                f"{quoted[:_QUOTE_LIMIT]}... ({len(quoted)} chars)"
            )
        errors.append(error)
    return AsciiJSONResponse(
        {"detail": jsonable_encoder(errors)}, status_code=422
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class BodySizeLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes``, before
    any of it reaches the app. A declared Content-Length is checked up
    front; a chunked body is counted as it is read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                # The server has already rejected a malformed value and
                # will not hand over more bytes than it declares.
                if int(value) > self.max_bytes:
                    await self._too_large(scope, receive, send)
                    return
                await self.app(scope, receive, send)
                return

        received = 0
        limit = self.max_bytes

        async def counting_receive() -> ASGIMessage:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI passes an HTTPException raised while it reads
                    # the body through to its exception handler.
                    raise HTTPException(413, self._detail())
            return message

        await self.app(scope, counting_receive, send)

    def _detail(self) -> str:
        return f"request body is larger than {self.max_bytes} bytes"

    async def _too_large(
        self, scope: Scope, receive: Receive, send: Send
    ) -> None:
        # "connection: close" makes the server drop the unread body.
        response = JSONResponse(
            {"detail": self._detail()},
            status_code=413,
            headers={"connection": "close"},
        )
        await response(scope, receive, send)


class ExampleState:
    """The app's moving parts. The producer and the live feed exist between
    lifespan startup and shutdown; everything else lives as long as the
    app."""

    def __init__(self, settings: Settings | None) -> None:
        self._settings = settings
        self._producer: AIOProducer | None = None
        self.started_at = time.monotonic()
        self.counters = {
            name: Counters(
                tracks_delivery=name in ("items1", "items2", "items3")
            )
            for name in ENDPOINTS
        }
        self.latency = LatencyWindow()
        self.delivery_latency = LatencyWindow()
        self.health = ClusterHealth(0.0)
        self.feed: LiveFeed | None = None
        self._stats_seen: asyncio.Event | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            raise RuntimeError("the app has not started (lifespan not run)")
        return self._settings

    @property
    def producer(self) -> AIOProducer:
        producer = self._producer
        if producer is None:
            raise RuntimeError("the app has not started (lifespan not run)")
        return producer

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """Create the producer, then start the live feed; yield while the
        app serves; then stop the feed, flush the producer (bounded by
        ``settings.flush_timeout``) and close it."""
        _ensure_log_handler()
        if self._settings is None:
            self._settings = Settings.from_env()
        settings = self._settings
        self.health = ClusterHealth(settings.stats_interval_s())
        config: dict[str, Any] = dict(settings.producer_config())
        config["error_cb"] = self._on_error
        config["stats_cb"] = self._on_stats
        config["throttle_cb"] = self.health.on_throttle
        # Bind to the serving loop now, not at the first produce: statistics
        # and error events must flow before any request arrives.
        loop = asyncio.get_running_loop()
        self._stats_seen = asyncio.Event()
        self._producer = producer = AIOProducer(config, loop=loop)
        log.info(
            "aiokafka_c example [%d]: %s", os.getpid(), settings.describe()
        )
        try:
            if settings.feed_enabled:
                self.feed = LiveFeed(
                    settings.feed_config(),
                    settings.topic,
                    FeedHub(settings.feed_queue_size),
                    self._cluster_address,
                )
                self.feed.start()
            yield
        finally:
            try:
                if self.feed is not None:
                    budget = min(FEED_CLOSE_TIMEOUT_S, settings.flush_timeout)
                    await self.feed.stop(budget)
            finally:
                await self._shutdown(producer, settings.flush_timeout)

    async def _cluster_address(self) -> str:
        """``bootstrap.servers`` for the feed's consumer. The embedded mock
        cluster runs inside the producer; its address is in the producer's
        statistics, so this waits for the first report."""
        settings = self.settings
        if settings.bootstrap_servers:
            return settings.bootstrap_servers
        if settings.stats_interval_s() <= 0:
            raise RuntimeError(
                "the feed finds the embedded cluster through the producer's "
                "statistics, and statistics.interval.ms is 0"
            )
        assert self._stats_seen is not None
        while True:
            await self._stats_seen.wait()
            self._stats_seen.clear()
            summary = self.health.summary or {}
            names = {
                str(b["nodename"])
                for b in summary.get("brokers", [])
                if b.get("nodename")
            }
            if names:
                return ",".join(sorted(names))

    def _on_stats(self, json_str: str) -> None:
        self.health.on_stats(json_str)
        if self._stats_seen is not None:
            self._stats_seen.set()

    async def _shutdown(self, producer: AIOProducer, budget: float) -> None:
        queued = len(producer)
        log.info(
            "shutting down: flushing %d queued message(s), at most %.1f s",
            queued,
            budget,
        )
        started = time.monotonic()
        remaining = queued
        try:
            remaining = await producer.flush(timeout=budget)
        finally:
            left = max(0.0, budget - (time.monotonic() - started))
            await producer.close(timeout=left)
        if remaining:
            log.warning(
                "%d message(s) not delivered within %.1f s; they failed",
                remaining,
                budget,
            )
        log.info("producer closed after %.2f s", time.monotonic() - started)

    def _on_error(self, err: KafkaError) -> None:
        self.health.on_error(err)
        level = logging.ERROR if err.fatal() else logging.WARNING
        log.log(level, "Kafka error %s: %s", err.name(), err.str())

    def snapshot(self) -> dict[str, Any]:
        """The ``/stats`` document."""
        healthy, reason = self.health.status()
        settings = self._settings
        producer = self._producer
        loop = type(asyncio.get_running_loop())
        return {
            "pid": os.getpid(),
            "loop": f"{loop.__module__}.{loop.__qualname__}",
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "kafka": {
                "embedded": settings.embedded if settings else None,
                "bootstrap_servers": settings.bootstrap_servers
                if settings
                else None,
                "topic": settings.topic if settings else None,
            },
            "endpoints": {n: c.snapshot() for n, c in self.counters.items()},
            "latency_ms": self.latency.snapshot(),
            "delivery_latency_ms": self.delivery_latency.snapshot(recent=0),
            "in_flight": len(producer) if producer is not None else None,
            "feed": self.feed.snapshot()
            if self.feed is not None
            else {"state": "off", "detail": "APP_FEED_ENABLED=0"},
            "health": {"ok": healthy, "reason": reason},
            "librdkafka": self._librdkafka_summary(),
        }

    def _librdkafka_summary(self) -> dict[str, Any] | None:
        health = self.health
        if health.summary is None or health.stats_at is None:
            return None
        return {
            **health.summary,
            "age_s": round(time.monotonic() - health.stats_at, 3),
            "throttle_events": health.throttle_events,
            "last_throttle": health.last_throttle,
            "last_error": None
            if health.last_error is None
            else {
                "error": health.last_error.name,
                "reason": health.last_error.reason,
                "age_s": round(time.monotonic() - health.last_error.at, 3),
            },
        }


def _ensure_log_handler() -> None:
    """Show the ``aiokafka_c`` loggers (ours, the library's fire-and-forget
    failures, librdkafka's log) unless logging was configured already, at
    uvicorn's ``--log-level`` when uvicorn set one up."""
    root = logging.getLogger("aiokafka_c")
    if root.hasHandlers():
        return
    handler = logging.StreamHandler()
    try:
        from uvicorn.logging import DefaultFormatter

        handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
    except ImportError:  # pragma: no cover - uvicorn comes with the extra
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.addHandler(handler)
    if root.level == logging.NOTSET:
        uvicorn_log = logging.getLogger("uvicorn.error")
        configured = bool(logging.getLogger("uvicorn").handlers)
        root.setLevel(
            uvicorn_log.getEffectiveLevel() if configured else logging.INFO
        )


def _delivery_error(
    exc: KafkaException, health: ClusterHealth
) -> HTTPException:
    """The HTTP error for a failed produce: 503 when the cluster is out of
    reach, 500 otherwise; the body names the Kafka error."""
    err = exc.args[0] if exc.args else None
    if not isinstance(err, KafkaError):
        return HTTPException(500, {"error": "unknown", "reason": str(exc)})
    unreachable = err.code() in UNAVAILABLE_ERRORS or not health.status()[0]
    if unreachable:
        return HTTPException(
            503, describe_error(err), headers={"retry-after": "1"}
        )
    return HTTPException(500, describe_error(err))


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app. ``settings=None`` reads the environment at startup."""
    state = ExampleState(settings)
    page = (
        resources.files(__package__ or "aiokafka_c.example")
        .joinpath("index.html")
        .read_text(encoding="utf-8")
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with state.run():
            yield

    app = FastAPI(
        title="aiokafka_c example",
        summary="The Confluent blog's five endpoints on aiokafka_c.",
        lifespan=lifespan,
        # The interactive docs pull their JS from a CDN; this app must work
        # offline. /openapi.json stays.
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.state.example = state

    counters = state.counters
    c1, c2, c3, c4, c5 = (counters[n] for n in ENDPOINTS)
    latency = state.latency
    delivery_latency = state.delivery_latency

    @app.post("/items1", response_model=Delivered)
    async def items1(item: Item) -> Delivered:
        """Produce and wait for the delivery report."""
        c1.requests += 1
        started = time.perf_counter()
        try:
            msg = await state.producer.produce(state.settings.topic, item.name)
        except KafkaException as exc:
            c1.failed()
            raise _delivery_error(exc, state.health) from None
        latency.add(time.perf_counter() - started)
        c1.delivered()
        msg_latency = msg.latency()
        if msg_latency is not None and msg_latency >= 0:
            delivery_latency.add(msg_latency)
        ts_type, ts = msg.timestamp()
        partition, offset = msg.partition(), msg.offset()
        if partition is None or offset is None:
            # A delivered message always has both; say so if not.
            raise HTTPException(500, "delivery report lacks partition/offset")
        return Delivered(
            timestamp=ts,
            timestamp_type=ts_type,
            partition=partition,
            offset=offset,
        )

    log2 = RateLimitedLog(log, "/items2")

    def delivered_on_loop(err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            c2.delivered()
        else:
            c2.failed()
            log2.failure(err)

    # Runs on the producer's native poll thread: touches only c3's
    # delivery counters (written by this thread alone) and logging.
    log3 = RateLimitedLog(log, "/items3")

    def delivered_on_poll_thread(
        err: KafkaError | None, _msg: Message
    ) -> None:
        if err is None:
            c3.delivered()
        else:
            c3.failed()
            log3.failure(err)

    def enqueue(
        counters: Counters,
        name: str,
        on_delivery: Callable[[KafkaError | None, Message], None] | None,
        dispatch: Literal["loop", "poll_thread"] = "loop",
    ) -> Accepted:
        counters.requests += 1
        try:
            state.producer.produce_nowait(
                state.settings.topic,
                name,
                on_delivery=on_delivery,
                dispatch=dispatch,
            )
        except KafkaException as exc:
            if counters.failures is not None:
                counters.failed()
            raise _delivery_error(exc, state.health) from None
        return Accepted(timestamp=_now_ms())

    @app.post("/items2", response_model=Accepted, status_code=202)
    async def items2(item: Item) -> Accepted:
        """Produce; the delivery report reaches a callback on the loop."""
        return enqueue(c2, item.name, delivered_on_loop)

    @app.post("/items3", response_model=Accepted, status_code=202)
    async def items3(item: Item) -> Accepted:
        """Produce; the delivery report reaches a callback on the native
        poll thread."""
        return enqueue(c3, item.name, delivered_on_poll_thread, "poll_thread")

    @app.post("/items4", response_model=Accepted, status_code=202)
    async def items4(item: Item) -> Accepted:
        """Fire and forget: the library logs failures."""
        return enqueue(c4, item.name, None)

    @app.post("/items5", response_model=Accepted)
    async def items5(item: Item) -> Accepted:
        """Produce nothing: the baseline for the other four."""
        c5.requests += 1
        return Accepted(timestamp=_now_ms())

    @app.get("/stats")
    async def stats() -> JSONResponse:
        """Counters, latency percentiles and librdkafka's statistics."""
        return JSONResponse(
            state.snapshot(), headers={"cache-control": "no-store"}
        )

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """200 while the producer can reach the cluster, else 503."""
        ok, reason = state.health.status()
        body = {
            "status": "ok" if ok else "unavailable",
            "reason": reason,
            "brokers_up": state.health.brokers_up(),
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.websocket("/ws/items")
    async def ws_items(websocket: WebSocket) -> None:
        """The live feed: each item the app's consumer reads from the topic
        from now on, as one JSON text message (topic, partition, offset,
        key, value, timestamp, timestamp_type)."""
        feed = state.feed
        if feed is None:
            await websocket.close(1008, "the live feed is off")
            return
        await serve_viewer(websocket, feed.hub)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        """The live page."""
        return HTMLResponse(page, headers={"cache-control": "no-store"})

    return app


app = create_app()
"""The app ``uvicorn aiokafka_c.example.app:app`` serves."""
