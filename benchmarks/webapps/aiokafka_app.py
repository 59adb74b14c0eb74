"""The five endpoints on aiokafka (pure Python, all on the loop thread).
It has no producer thread, so /items3 is not served."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
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


app = FastAPI(lifespan=lifespan)


@app.post("/items1")
async def items1(item: Item) -> dict[str, Any]:
    try:
        md = await state["p"].send_and_wait(TOPIC, item.name.encode())
    except KafkaError as ex:
        raise HTTPException(status_code=500, detail=str(ex))
    return {"timestamp": md.timestamp, "partition": md.partition,
            "offset": md.offset}


@app.post("/items2")
async def items2(item: Item) -> dict[str, Any]:
    fut = await state["p"].send(TOPIC, item.name.encode())
    fut.add_done_callback(oob_done)
    return {"timestamp": now_ms()}


@app.post("/items4")
async def items4(item: Item) -> dict[str, Any]:
    await state["p"].send(TOPIC, item.name.encode())
    return {"timestamp": now_ms()}


@app.post("/items5")
async def items5(item: Item) -> dict[str, Any]:
    return {"timestamp": now_ms()}
