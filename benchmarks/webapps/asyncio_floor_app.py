"""No Kafka: /items1 awaits a future that a loop timer resolves the way
linger.ms resolves a batch: the first request of a batch starts a
linger.ms timer and every request that arrives before it fires is
answered with it (a client with no broker round trip and no cost of its
own); /items5 is the no-op.  What FastAPI and uvicorn themselves cost a request
that is suspended that long: the floor under every awaited endpoint (at
a fixed concurrency a suspended request also holds its connection, so
req/s falls with the wait even when the loop has CPU to spare)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from benchmarks.webapps.common import Delivery, build_app, rdkafka_config

WAIT_S = int(rdkafka_config().get("linger.ms", 5)) / 1000


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    yield


pending: list[asyncio.Future[None]] = []


def _linger_done() -> None:
    batch = pending[:]
    pending.clear()
    for fut in batch:
        if not fut.done():
            fut.set_result(None)


async def awaited(name: str) -> Delivery:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    if not pending:
        loop.call_later(WAIT_S, _linger_done)
    pending.append(fut)
    await fut
    return 0, 0, 0


async def nothing(name: str) -> None:
    """Only /items1 and /items5 are measured for this app."""


app = build_app(lifespan, awaited=awaited, on_loop=nothing,
                fire_and_forget=nothing, errors=(RuntimeError,))
