"""The five endpoints on aiokafka (pure Python, all on the loop thread).
It has no producer thread, so /items3 is not served."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI

from benchmarks.webapps.common import (
    Counter,
    Delivery,
    build_app,
    future_counter,
    rdkafka_config,
    topic,
)

TOPIC = topic()
state: dict[str, Any] = {}
oob_done = future_counter(Counter())


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    conf = rdkafka_config()
    acks = str(conf.get("acks", "1"))
    p = AIOKafkaProducer(
        bootstrap_servers=conf["bootstrap.servers"],
        acks="all" if acks in ("all", "-1") else int(acks),
        linger_ms=int(conf.get("linger.ms", 5)),
    )
    await p.start()
    state["p"] = p
    yield
    await p.stop()


async def awaited(name: str) -> Delivery:
    md = await state["p"].send_and_wait(TOPIC, name.encode())
    return md.timestamp, md.partition, md.offset


async def on_loop(name: str) -> None:
    fut = await state["p"].send(TOPIC, name.encode())
    fut.add_done_callback(oob_done)


async def fire_and_forget(name: str) -> None:
    await state["p"].send(TOPIC, name.encode())


app = build_app(lifespan, awaited=awaited, on_loop=on_loop,
                fire_and_forget=fire_and_forget,
                errors=(KafkaError,))
