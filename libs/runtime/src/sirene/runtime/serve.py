"""Runs a service's ASGI app with uvicorn, logging through the masked handler, on uvloop with
the httptools HTTP parser (both C: per request and per loop iteration they cost a fraction of
asyncio's pure-Python loop and h11, which matters on the channel workers' hand-off path)."""

from __future__ import annotations

import asyncio

import uvicorn
import uvloop
from fastapi import FastAPI

from .logging import configure_logging
from .settings import ServiceSettings


def serve(app: FastAPI, settings: ServiceSettings) -> None:
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
        loop="uvloop",
        http="httptools",
    )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(uvicorn.Server(config).serve())
