"""Composition root of issues: builds every client once and wires routes and the lifespan."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from sirene.runtime import Infra, infra_lifespan, ops_router

from .api import Context, router
from .handlers import register_handlers
from .repository import Repository
from .settings import IssuesSettings


def create_app(settings: IssuesSettings | None = None, **overrides: Any) -> FastAPI:
    """The issues app. `overrides` replace settings fields (handy in tests)."""
    settings = IssuesSettings.resolve(settings, **overrides)
    # No topics yet: reports are not published until the routing workflow exists.
    infra = Infra(settings, topics=[], redis=False)
    repo = Repository(infra.db)
    register_handlers(infra)

    app = FastAPI(
        title="Sirene issues",
        description="Citizen reports of problems in public space (Mängelmelder).",
        version="0.1.0",
        lifespan=infra_lifespan(infra, prepare=[repo.ensure_indexes]),
    )
    app.state.ctx = Context(settings=settings, repo=repo)
    app.state.infra = infra
    app.include_router(ops_router(infra))
    app.include_router(router)
    return app
