"""The five endpoints on confluent_kafka.aio.AIOProducer (defaults).
It has no callback-on-a-thread path, so /items3 is not served."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.aio import AIOProducer
from fastapi import FastAPI

from benchmarks.webapps.common import (
    Counter,
    Delivery,
    build_app,
    future_counter,
    kafka_exception_text,
    rdkafka_config,
    topic,
)

TOPIC = topic()
state: dict[str, Any] = {}
oob_done = future_counter(Counter())


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    state["p"] = AIOProducer(rdkafka_config())
    yield
    await state["p"].close()


async def awaited(name: str) -> Delivery:
    fut = await state["p"].produce(TOPIC, name)
    msg = await fut
    return msg.timestamp()[1], msg.partition(), msg.offset()


async def on_loop(name: str) -> None:
    fut = await state["p"].produce(TOPIC, name)
    fut.add_done_callback(oob_done)


async def fire_and_forget(name: str) -> None:
    await state["p"].produce(TOPIC, name)


app = build_app(lifespan, awaited=awaited, on_loop=on_loop,
                fire_and_forget=fire_and_forget,
                errors=(KafkaException,), error_text=kafka_exception_text)
