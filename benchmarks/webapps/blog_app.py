"""The blog post's FastAPI app on its own bridge (benchmarks/blog_producer):
``AIOProducer`` for /items1 and /items2, ``Producer`` (callback on the poll
thread) for /items3 and /items4."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from confluent_kafka import KafkaException
from fastapi import FastAPI, HTTPException

from benchmarks.blog_producer import AIOProducer, Producer
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
    conf = rdkafka_config()
    state["aio"] = AIOProducer(conf)
    state["oob"] = Producer(conf)
    yield
    for p in (state["aio"], state["oob"]):
        p.flush(10)
        p.close()


app = FastAPI(lifespan=lifespan)


@app.post("/items1")
async def items1(item: Item) -> dict[str, Any]:
    try:
        msg = await state["aio"].produce(TOPIC, item.name)
    except KafkaException as ex:
        raise HTTPException(status_code=500, detail=ex.args[0].str())
    return {"timestamp": msg.timestamp()[1], "partition": msg.partition(),
            "offset": msg.offset()}


@app.post("/items2")
async def items2(item: Item) -> dict[str, Any]:
    state["aio"].produce2(TOPIC, item.name, on_delivery=oob_loop)
    return {"timestamp": now_ms()}


@app.post("/items3")
async def items3(item: Item) -> dict[str, Any]:
    state["oob"].produce(TOPIC, item.name, on_delivery=oob_thread)
    return {"timestamp": now_ms()}


@app.post("/items4")
async def items4(item: Item) -> dict[str, Any]:
    state["oob"].produce(TOPIC, item.name)
    return {"timestamp": now_ms()}


@app.post("/items5")
async def items5(item: Item) -> dict[str, Any]:
    return {"timestamp": now_ms()}
