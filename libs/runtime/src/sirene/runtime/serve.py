"""Runs a service's ASGI app with uvicorn and its httptools HTTP parser, logging through the
masked handler. A service may run on uvloop (`event_loop="uvloop"`): per request and per loop
iteration it costs a fraction of asyncio's loop, which matters on the channel workers'
hand-off path, so they do (they use no MongoDB). The other services stay on the standard loop
until they are measured and tested on uvloop."""

from __future__ import annotations

import asyncio
from typing import Literal

import uvicorn
import uvloop
from fastapi import FastAPI

from .logging import configure_logging
from .settings import ServiceSettings


def serve(
    app: FastAPI, settings: ServiceSettings, *, event_loop: Literal["asyncio", "uvloop"] = "asyncio"
) -> None:
    """Blocks serving `app` on the configured host and port until SIGINT/SIGTERM."""
    configure_logging(settings.service_name, level=settings.log_level, json_lines=settings.log_json)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=20,
        loop=event_loop,
        http="httptools",
    )
    with asyncio.Runner(
        loop_factory=uvloop.new_event_loop if event_loop == "uvloop" else None
    ) as runner:
        runner.run(uvicorn.Server(config).serve())
