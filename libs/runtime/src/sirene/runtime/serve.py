"""Runs a service's ASGI app with uvicorn, logging through the masked handler."""

from __future__ import annotations

import asyncio

import uvicorn
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
    )
    asyncio.run(uvicorn.Server(config).serve())
