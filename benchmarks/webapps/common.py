"""Shared bits of the benchmark web apps: settings, the request model, the
delivery counters and ``build_app``, which serves the five endpoints over a
client's produce functions."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel


class Item(BaseModel):
    name: str


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def topic() -> str:
    return os.environ.get("KAFKA_TOPIC", "items")


def rdkafka_config() -> dict[str, Any]:
    """librdkafka properties from the environment, like the example app:
    ``KAFKA_CONFIG_LINGER_MS=5`` -> ``linger.ms=5``."""
    conf: dict[str, Any] = {
        "bootstrap.servers": os.environ.get(
            "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"
        )
    }
    prefix = "KAFKA_CONFIG_"
    for key, value in os.environ.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            parts = key[len(prefix):].lower().split("__")
            conf["_".join(p.replace("_", ".") for p in parts)] = value
    return conf


class Counter:
    """Delivery outcomes of the out-of-band endpoints (kept, like any real
    app would, so the callbacks do some work)."""

    __slots__ = ("failed", "ok")

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0

    def __call__(self, err: Any, msg: Any) -> None:
        if err is None:
            self.ok += 1
        else:
            self.failed += 1


def future_counter(counter: Counter):  # type: ignore[no-untyped-def]
    """A done-callback for clients whose out-of-band path is a future."""

    def done(fut: Any) -> None:
        if fut.cancelled() or fut.exception() is not None:
            counter.failed += 1
        else:
            counter.ok += 1

    return done


# What an awaited produce answers: timestamp, partition, offset.
Delivery = tuple[Any, Any, Any]
Send = Callable[[str], Awaitable[None]]


def kafka_exception_text(ex: Any) -> str:
    """The text of a confluent-style KafkaException (aiokafka_c's too):
    its KafkaError argument's."""
    return str(ex.args[0].str())


def build_app(
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    *,
    awaited: Callable[[str], Awaitable[Delivery]],
    on_loop: Send,
    fire_and_forget: Send,
    on_thread: Send | None = None,
    errors: tuple[type[BaseException], ...],
    error_text: Callable[[Any], str] = str,
) -> FastAPI:
    """The FastAPI app with /items1 (``awaited``; an exception in
    ``errors`` answers 500 with ``error_text`` of it), /items2
    (``on_loop``), /items3 (``on_thread``, served only when given),
    /items4 (``fire_and_forget``) and the no-op /items5. Each function
    gets the request's name as the message value."""
    app = FastAPI(lifespan=lifespan)

    @app.post("/items1")
    async def items1(item: Item) -> dict[str, Any]:
        try:
            timestamp, partition, offset = await awaited(item.name)
        except errors as ex:
            raise HTTPException(status_code=500, detail=error_text(ex))
        return {"timestamp": timestamp, "partition": partition,
                "offset": offset}

    @app.post("/items2")
    async def items2(item: Item) -> dict[str, Any]:
        await on_loop(item.name)
        return {"timestamp": now_ms()}

    if on_thread is not None:
        thread_send = on_thread

        @app.post("/items3")
        async def items3(item: Item) -> dict[str, Any]:
            await thread_send(item.name)
            return {"timestamp": now_ms()}

    @app.post("/items4")
    async def items4(item: Item) -> dict[str, Any]:
        await fire_and_forget(item.name)
        return {"timestamp": now_ms()}

    @app.post("/items5")
    async def items5(item: Item) -> dict[str, Any]:
        return {"timestamp": now_ms()}

    return app
