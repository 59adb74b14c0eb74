"""The five endpoints on confluent_kafka.aio.AIOProducer (defaults).
It has no callback-on-a-thread path, so /items3 is not served."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.aio import AIOProducer
from fastapi import FastAPI, HTTPException

from benchmarks.webapps.common import (
    Counter,
    Item,
    future_counter,
    now_ms,
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


app = FastAPI(lifespan=lifespan)


@app.post("/items1")
async def items1(item: Item) -> dict[str, Any]:
    try:
        fut = await state["p"].produce(TOPIC, item.name)
        msg = await fut
    except KafkaException as ex:
        raise HTTPException(status_code=500, detail=ex.args[0].str())
    return {"timestamp": msg.timestamp()[1], "partition": msg.partition(),
            "offset": msg.offset()}


@app.post("/items2")
async def items2(item: Item) -> dict[str, Any]:
    fut = await state["p"].produce(TOPIC, item.name)
    fut.add_done_callback(oob_done)
    return {"timestamp": now_ms()}


@app.post("/items4")
async def items4(item: Item) -> dict[str, Any]:
    await state["p"].produce(TOPIC, item.name)
    return {"timestamp": now_ms()}


@app.post("/items5")
async def items5(item: Item) -> dict[str, Any]:
    return {"timestamp": now_ms()}
