"""The blog post's FastAPI app on its own bridge (benchmarks/blog_producer):
``AIOProducer`` for /items1 and /items2, ``Producer`` (callback on the poll
thread) for /items3 and /items4."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from confluent_kafka import KafkaException
from fastapi import FastAPI

from benchmarks.blog_producer import AIOProducer, Producer
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
    conf = rdkafka_config()
    state["aio"] = AIOProducer(conf)
    state["oob"] = Producer(conf)
    yield
    for p in (state["aio"], state["oob"]):
        p.flush(10)
        p.close()


async def awaited(name: str) -> Delivery:
    msg = await state["aio"].produce(TOPIC, name)
    return msg.timestamp()[1], msg.partition(), msg.offset()


async def on_loop(name: str) -> None:
    state["aio"].produce2(TOPIC, name, on_delivery=oob_loop)


async def on_thread(name: str) -> None:
    state["oob"].produce(TOPIC, name, on_delivery=oob_thread)


async def fire_and_forget(name: str) -> None:
    state["oob"].produce(TOPIC, name)


app = build_app(lifespan, awaited=awaited, on_loop=on_loop,
                on_thread=on_thread, fire_and_forget=fire_and_forget,
                errors=(KafkaException,), error_text=kafka_exception_text)
