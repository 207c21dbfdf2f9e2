"""Domain errors with user-facing reasons in German and English.

Service functions raise these with a message code; the API turns them into 4xx answers in the
caller's language (`Accept-Language`, German by default). Each service keeps the texts of its
own codes in a `Catalogue`, layered over the shared texts of `SHARED_MESSAGES`, and hands it to
`install_error_handlers`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter

Texts = Mapping[str, tuple[str, str]]
"""Message code → (German text, English text); texts may hold `{param}` placeholders."""

SHARED_MESSAGES: Texts = {
    "unauthorized": (
        "Anmeldung erforderlich (Authorization: Bearer <Token>).",
        "Authentication required (Authorization: Bearer <token>).",
    ),
}
"""Texts every service may use (the service's own catalogue may not redefine them)."""


def language_of(request: Request) -> str:
    """'en' when the caller prefers English (Accept-Language), else German."""
    accept = request.headers.get("accept-language", "")
    return "en" if accept.strip().lower().startswith("en") else "de"


LanguageDep = Annotated[str, Depends(language_of)]


class Catalogue:
    """The texts of one service's message codes together with the shared ones."""

    def __init__(self, texts: Texts) -> None:
        clash = sorted(SHARED_MESSAGES.keys() & texts.keys())
        if clash:
            raise ValueError(f"message codes already shared by sirene.runtime: {clash}")
        self.texts: dict[str, tuple[str, str]] = {**SHARED_MESSAGES, **texts}

    def __contains__(self, code: object) -> bool:
        return code in self.texts

    def message(self, code: str, language: str, **params: Any) -> str:
        """The text of `code` in `language` ('de' or 'en'), with `params` filled in."""
        german, english = self.texts[code]
        return (english if language == "en" else german).format(**params)


SHARED = Catalogue({})
"""Only the shared texts (for code outside any one service, such as the staff login)."""


def message(code: str, language: str, **params: Any) -> str:
    """A shared text (see `SHARED_MESSAGES`) in `language`, with `params` filled in."""
    return SHARED.message(code, language, **params)


class DomainError(Exception):
    """A request the service refuses, with a message code and its parameters."""

    status_code = 400

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


class InvalidInputError(DomainError):
    """Input that passed the schema but not the rules (422, with the field location)."""

    status_code = 422

    def __init__(self, loc: tuple[str | int, ...], code: str, **params: Any) -> None:
        super().__init__(code, **params)
        self.loc = loc


class NotFoundError(DomainError):
    """Nothing with that id in the caller's tenant (404)."""

    status_code = 404


class ConflictError(DomainError):
    """The record is in a state that does not allow the request, or already exists (409)."""

    status_code = 409


def install_error_handlers(
    app: FastAPI, *, catalogue: Catalogue, rejected: Counter | None = None
) -> None:
    """Turns domain errors into 4xx answers in the caller's language, with the texts of
    `catalogue`; counts each in `rejected` (label `reason` = the message code) if given.

    Body: 422 → `{"detail": [{"loc", "msg", "type"}]}` like FastAPI's own validation errors;
    any other → `{"detail": <text>, "code": <code>}`."""

    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)  # noqa: S101 - registered for DomainError only
        if rejected is not None:
            rejected.labels(reason=exc.code).inc()
        text = catalogue.message(exc.code, language_of(request), **exc.params)
        if isinstance(exc, InvalidInputError):
            body: object = {"detail": [{"loc": list(exc.loc), "msg": text, "type": exc.code}]}
        else:
            body = {"detail": text, "code": exc.code}
        return JSONResponse(body, status_code=exc.status_code)

    app.add_exception_handler(DomainError, domain_error)
