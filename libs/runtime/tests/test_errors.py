"""Domain errors become 4xx answers with the service's texts in the caller's language."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter

from sirene.runtime.errors import (
    Catalogue,
    ConflictError,
    DomainError,
    InvalidInputError,
    NotFoundError,
    install_error_handlers,
    message,
)

CATALOGUE = Catalogue(
    {
        "too_long": ("Höchstens {limit} Zeichen.", "At most {limit} characters."),
        "gone": ("Nicht gefunden.", "Not found."),
        "busy": ("Gleichzeitig geändert.", "Changed concurrently."),
    }
)


def test_a_catalogue_holds_its_own_and_the_shared_texts() -> None:
    assert CATALOGUE.message("too_long", "de", limit=5) == "Höchstens 5 Zeichen."
    assert CATALOGUE.message("too_long", "en", limit=5) == "At most 5 characters."
    assert CATALOGUE.message("unauthorized", "fr").startswith("Anmeldung erforderlich")
    assert "unauthorized" in CATALOGUE
    assert message("unauthorized", "en").startswith("Authentication required")
    with pytest.raises(KeyError):
        message("too_long", "de")


def test_a_catalogue_may_not_redefine_a_shared_text() -> None:
    with pytest.raises(ValueError, match="unauthorized"):
        Catalogue({"unauthorized": ("Nein.", "No.")})


def _app(rejected: Counter) -> FastAPI:
    app = FastAPI()
    errors: dict[str, DomainError] = {
        "invalid": InvalidInputError(("body", "text", 0), "too_long", limit=5),
        "missing": NotFoundError("gone"),
        "conflict": ConflictError("busy"),
        "plain": DomainError("gone"),
    }

    @app.get("/{kind}")
    async def fail(kind: str) -> None:
        raise errors[kind]

    install_error_handlers(app, catalogue=CATALOGUE, rejected=rejected)
    return app


@pytest.mark.parametrize(
    ("kind", "language", "status", "body"),
    [
        (
            "invalid",
            "en",
            422,
            {
                "detail": [
                    {"loc": ["body", "text", 0], "msg": "At most 5 characters.", "type": "too_long"}
                ]
            },
        ),
        ("missing", "de", 404, {"detail": "Nicht gefunden.", "code": "gone"}),
        ("conflict", "en-US", 409, {"detail": "Changed concurrently.", "code": "busy"}),
        ("plain", "fr", 400, {"detail": "Nicht gefunden.", "code": "gone"}),
    ],
)
async def test_domain_errors_become_4xx_answers(
    kind: str, language: str, status: int, body: object
) -> None:
    registry = CollectorRegistry()
    rejected = Counter("demo_rejected_total", "Refused requests.", ["reason"], registry=registry)
    transport = httpx.ASGITransport(app=_app(rejected))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(f"/{kind}", headers={"Accept-Language": language})
    assert response.status_code == status
    assert response.json() == body
    reason = {"invalid": "too_long", "missing": "gone", "conflict": "busy", "plain": "gone"}[kind]
    assert registry.get_sample_value("demo_rejected_total", {"reason": reason}) == 1
