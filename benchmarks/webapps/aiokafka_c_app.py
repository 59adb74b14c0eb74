"""The five endpoints on aiokafka_c in the same bare shape as the peer
apps (no counters page, no body-size middleware): the like-for-like view.
The shipped example app (aiokafka_c.example.app) is measured separately."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException

from aiokafka_c import AIOProducer, KafkaException
from benchmarks.webapps.common import (
    Counter,
    Item,
    now_ms,
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


app = FastAPI(lifespan=lifespan)


@app.post("/items1")
async def items1(item: Item) -> dict[str, Any]:
    try:
        msg = await state["p"].produce(TOPIC, item.name)
    except KafkaException as ex:
        raise HTTPException(status_code=500, detail=ex.args[0].str())
    return {"timestamp": msg.timestamp()[1], "partition": msg.partition(),
            "offset": msg.offset()}


@app.post("/items2")
async def items2(item: Item) -> dict[str, Any]:
    state["p"].produce_nowait(TOPIC, item.name, on_delivery=oob_loop)
    return {"timestamp": now_ms()}


@app.post("/items3")
async def items3(item: Item) -> dict[str, Any]:
    state["p"].produce_nowait(TOPIC, item.name, on_delivery=oob_thread,
                              dispatch="poll_thread")
    return {"timestamp": now_ms()}


@app.post("/items4")
async def items4(item: Item) -> dict[str, Any]:
    state["p"].produce_nowait(TOPIC, item.name)
    return {"timestamp": now_ms()}


@app.post("/items5")
async def items5(item: Item) -> dict[str, Any]:
    return {"timestamp": now_ms()}
