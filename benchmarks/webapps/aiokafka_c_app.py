"""The five endpoints on aiokafka_c in the same bare shape as the peer
apps (no counters page, no body-size middleware): the like-for-like view.
The shipped example app (aiokafka_c.example.app) is measured separately."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from aiokafka_c import AIOProducer, KafkaException
from benchmarks.webapps.common import (
    Counter,
    Delivery,
    build_app,
    kafka_exception_text,
    rdkafka_config,
    topic,
)

TOPIC = topic()
state: dict[str, Any] = {}
oob_loop, oob_thread = Counter(), Counter()


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    p = AIOProducer(rdkafka_config())
    state["p"] = p
    yield
    await p.close(10)


async def awaited(name: str) -> Delivery:
    msg = await state["p"].produce(TOPIC, name)
    return msg.timestamp()[1], msg.partition(), msg.offset()


async def on_loop(name: str) -> None:
    state["p"].produce_nowait(TOPIC, name, on_delivery=oob_loop)


async def on_thread(name: str) -> None:
    state["p"].produce_nowait(TOPIC, name, on_delivery=oob_thread,
                              dispatch="poll_thread")


async def fire_and_forget(name: str) -> None:
    state["p"].produce_nowait(TOPIC, name)


app = build_app(lifespan, awaited=awaited, on_loop=on_loop,
                on_thread=on_thread, fire_and_forget=fire_and_forget,
                errors=(KafkaException,), error_text=kafka_exception_text)
