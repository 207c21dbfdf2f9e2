"""HTTP API of subscriptions (staff, bearer token per tenant). Thin: validate, call the service
function, shape the answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse

from sirene.runtime import mask
from sirene.runtime.auth import staff_tenant_dependency
from sirene.runtime.errors import NotFoundError, language_of
from sirene.runtime.errors import install_error_handlers as install_domain_error_handlers
from sirene.runtime.http import IdPath
from sirene.runtime.logging import mask_phone
from sirene.runtime.outbox import OutboxRelay

from . import service
from .errors import MESSAGES
from .metrics import REJECTED_INPUT
from .models import (
    CitizenIn,
    CitizenOut,
    CitizenPage,
    CitizenPatch,
    CodeIn,
    ConsentOut,
    EmailChangeIn,
    EmailConfirmedOut,
    EmailConfirmIn,
    EmailVerificationOut,
    LoginIn,
    MePatch,
    PublicTopic,
    RegistrationIn,
    RelativeIn,
    RelativeOut,
    SessionOut,
    SubscriptionsIn,
    TopicChoiceIn,
    TopicIn,
    TopicOut,
    TopicPatch,
    VerificationOut,
)
from .ratelimit import RateLimitedError
from .repository import Repository
from .selfservice import SelfService
from .settings import SubscriptionsSettings

SESSION_COOKIE = "sirene_session"


@dataclass(frozen=True, slots=True)
class Context:
    """What the routes need, built once by `create_app`."""

    settings: SubscriptionsSettings
    repo: Repository
    relay: OutboxRelay
    selfservice: SelfService


def get_context(request: Request) -> Context:
    """The app's `Context`."""
    ctx: Context = request.app.state.ctx
    return ctx


ContextDep = Annotated[Context, Depends(get_context)]
staff_tenant = staff_tenant_dependency(get_context)
TenantDep = Annotated[str, Depends(staff_tenant)]

router = APIRouter(prefix="/api/v1", tags=["subscriptions"])


@router.post("/topics", status_code=status.HTTP_201_CREATED)
async def create_topic(body: TopicIn, tenant: TenantDep, ctx: ContextDep) -> TopicOut:
    """Creates a topic of the caller's tenant (id unique per tenant)."""
    doc = await service.create_topic(repo=ctx.repo, tenant=tenant, topic=body)
    return TopicOut.model_validate(doc)


@router.get("/topics")
async def list_topics(tenant: TenantDep, ctx: ContextDep) -> list[TopicOut]:
    """Every topic of the caller's tenant."""
    return [TopicOut.model_validate(doc) for doc in await ctx.repo.list_topics(tenant)]


@router.post("/citizens", status_code=status.HTTP_201_CREATED)
async def create_citizen(body: CitizenIn, tenant: TenantDep, ctx: ContextDep) -> CitizenOut:
    """Registers a citizen with contact points and channel choices; publishes the profile."""
    doc = await service.create_citizen(
        repo=ctx.repo,
        wake=ctx.relay.wake,
        tenant=tenant,
        body=body,
        default_region=ctx.settings.default_region,
        allowed_countries=ctx.settings.countries_for(tenant),
    )
    return CitizenOut.model_validate(service.citizen_view(doc))


@router.get("/citizens")
async def list_citizens(
    tenant: TenantDep,
    ctx: ContextDep,
    after: Annotated[
        str | None, Query(max_length=64, description="Last id of the page before.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CitizenPage:
    """Citizens of the caller's tenant, ordered by id, `limit` at a time."""
    docs = await ctx.repo.list_citizens(tenant, after=after, limit=limit)
    return CitizenPage(
        items=[CitizenOut.model_validate(service.citizen_view(d)) for d in docs],
        next_after=docs[-1]["id"] if len(docs) == limit else None,
    )


@router.get("/citizens/{citizen_id}")
async def get_citizen(citizen_id: IdPath, tenant: TenantDep, ctx: ContextDep) -> CitizenOut:
    """One citizen of the caller's tenant (404 for any other tenant's)."""
    doc = await service.get_citizen(repo=ctx.repo, tenant=tenant, citizen_id=citizen_id)
    return CitizenOut.model_validate(service.citizen_view(doc))


@router.patch("/citizens/{citizen_id}")
async def patch_citizen(
    citizen_id: IdPath, body: CitizenPatch, tenant: TenantDep, ctx: ContextDep
) -> CitizenOut:
    """Changes contact points, language or district; publishes the new profile."""
    doc = await service.change_citizen(
        repo=ctx.repo,
        wake=ctx.relay.wake,
        tenant=tenant,
        citizen_id=citizen_id,
        patch=body,
        default_region=ctx.settings.default_region,
        allowed_countries=ctx.settings.countries_for(tenant),
    )
    return CitizenOut.model_validate(service.citizen_view(doc))


@router.put("/citizens/{citizen_id}/subscriptions")
async def put_subscriptions(
    citizen_id: IdPath, body: SubscriptionsIn, tenant: TenantDep, ctx: ContextDep
) -> CitizenOut:
    """Replaces the citizen's channel choice per topic; publishes the new profile."""
    doc = await service.set_subscriptions(
        repo=ctx.repo,
        wake=ctx.relay.wake,
        tenant=tenant,
        citizen_id=citizen_id,
        subscriptions=body.subscriptions,
    )
    return CitizenOut.model_validate(service.citizen_view(doc))


@router.get("/topics/{topic_id}")
async def get_topic(topic_id: IdPath, tenant: TenantDep, ctx: ContextDep) -> TopicOut:
    """One topic of the caller's tenant (404 for any other tenant's)."""
    doc = await ctx.repo.get_topic(tenant, topic_id)
    if doc is None:
        raise NotFoundError("topic_unknown", topic=topic_id)
    return TopicOut.model_validate(doc)


@router.patch("/topics/{topic_id}")
async def patch_topic(
    topic_id: IdPath, body: TopicPatch, tenant: TenantDep, ctx: ContextDep
) -> TopicOut:
    """Changes name, description, kind, warnings flag or visibility of a topic."""
    changes = body.model_dump(mode="json", exclude_unset=True)
    doc = (
        await ctx.repo.update_topic(tenant, topic_id, changes)
        if changes
        else await ctx.repo.get_topic(tenant, topic_id)
    )
    if doc is None:
        raise NotFoundError("topic_unknown", topic=topic_id)
    return TopicOut.model_validate(doc)


@router.get("/citizens/{citizen_id}/consents")
async def citizen_consents(
    citizen_id: IdPath, tenant: TenantDep, ctx: ContextDep
) -> list[ConsentOut]:
    """The citizen's consent records (what, when, which channel, by whom), oldest first."""
    await service.get_citizen(repo=ctx.repo, tenant=tenant, citizen_id=citizen_id)
    return [ConsentOut.model_validate(c) for c in await ctx.repo.consents_of(tenant, citizen_id)]


@router.get("/citizens/{citizen_id}/export")
async def export_citizen(citizen_id: IdPath, tenant: TenantDep, ctx: ContextDep) -> JSONResponse:
    """Everything stored about the citizen (GDPR Art. 15/20), e.g. to answer a written request."""
    data = await ctx.selfservice.export(tenant=tenant, citizen_id=citizen_id)
    return JSONResponse(data, headers={"Content-Disposition": "attachment; filename=export.json"})


@router.delete("/citizens/{citizen_id}")
async def erase_citizen(citizen_id: IdPath, tenant: TenantDep, ctx: ContextDep) -> Response:
    """Erases the citizen (GDPR Art. 17): 204 when gone everywhere, 202 while the tombstone
    is still on its way (the document goes as soon as Kafka acknowledged it)."""
    gone = await ctx.selfservice.erase(tenant=tenant, citizen_id=citizen_id, by="staff")
    return Response(status_code=204 if gone else 202)


# --- citizens themselves ---------------------------------------------------------------------

portal_api = APIRouter(prefix="/api/v1/portal", tags=["citizen portal"])


def client_ip(request: Request) -> str:
    """The caller's address as the server saw it (run behind a proxy with uvicorn's
    `--proxy-headers --forwarded-allow-ips` so this is the citizen's, not the proxy's)."""
    return request.client.host if request.client else "unknown"


async def citizen_session(request: Request, ctx: ContextDep) -> tuple[str, str]:
    """(tenant, citizen id) of the session token in `Authorization: Bearer` or the portal
    cookie; 401 otherwise."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    token = token or request.cookies.get(SESSION_COOKIE, "")
    session = await ctx.selfservice.codes.session(token)
    if session is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=MESSAGES.message("session_required", language_of(request)),
            headers={"WWW-Authenticate": "Bearer"},
        )
    return session


CitizenDep = Annotated[tuple[str, str], Depends(citizen_session)]


def _verification(vid: str, channel: str, phone: str, ctx: Context) -> VerificationOut:
    return VerificationOut(
        verification_id=vid,
        channel=channel,  # type: ignore[arg-type]
        to=mask_phone(phone),
        expires_in_s=ctx.settings.code_ttl_s,
    )


@portal_api.get("/{tenant}/topics")
async def portal_topics(tenant: str, ctx: ContextDep) -> list[PublicTopic]:
    """The topics citizens of `tenant` may choose."""
    ctx.selfservice.known_tenant(tenant)
    return [PublicTopic.model_validate(t) for t in await ctx.repo.public_topics(tenant)]


@portal_api.post("/{tenant}/registrations", status_code=status.HTTP_202_ACCEPTED)
async def register(
    tenant: str, body: RegistrationIn, request: Request, ctx: ContextDep
) -> VerificationOut:
    """Self-registration: sends a code by SMS (mobile) or a call speaking it (any phone).
    429 with `Retry-After` when an abuse limit is reached."""
    vid, channel, phone = await ctx.selfservice.start_registration(
        tenant=tenant, body=body, ip=client_ip(request)
    )
    return _verification(vid, channel, phone, ctx)


@portal_api.post("/{tenant}/logins", status_code=status.HTTP_202_ACCEPTED)
async def login(tenant: str, body: LoginIn, request: Request, ctx: ContextDep) -> VerificationOut:
    """Sends a login code to a registered number (same answer for unknown numbers)."""
    vid, channel, phone = await ctx.selfservice.start_login(
        tenant=tenant, raw_phone=body.phone, ip=client_ip(request)
    )
    return _verification(vid, channel, phone, ctx)


@portal_api.post("/verifications/{verification_id}")
async def verify(
    verification_id: IdPath, body: CodeIn, request: Request, ctx: ContextDep
) -> SessionOut:
    """Enters the code: registers (or logs in) the citizen; answers a session token."""
    doc, token = await ctx.selfservice.verify(
        verification_id=verification_id, code=body.code, ip=client_ip(request)
    )
    return SessionOut(
        citizen_id=doc["id"], session_token=token, expires_in_s=ctx.settings.session_ttl_s
    )


@portal_api.get("/me")
async def me(session: CitizenDep, ctx: ContextDep) -> CitizenOut:
    """The citizen's own registration."""
    return CitizenOut.model_validate(service.citizen_view(await ctx.selfservice.me(*session)))


@portal_api.patch("/me")
async def change_me(session: CitizenDep, body: MePatch, ctx: ContextDep) -> CitizenOut:
    """Name, language, district, address point, quiet hours."""
    tenant, citizen_id = session
    doc = await ctx.selfservice.change_me(tenant=tenant, citizen_id=citizen_id, patch=body)
    return CitizenOut.model_validate(service.citizen_view(doc))


@portal_api.put("/me/subscriptions")
async def choose(session: CitizenDep, body: TopicChoiceIn, ctx: ContextDep) -> CitizenOut:
    """Replaces the citizen's topic and channel choice."""
    tenant, citizen_id = session
    doc = await ctx.selfservice.choose_topics(
        tenant=tenant, citizen_id=citizen_id, subscriptions=body.subscriptions
    )
    return CitizenOut.model_validate(service.citizen_view(doc))


@portal_api.put("/me/email", status_code=status.HTTP_202_ACCEPTED)
async def change_email(
    session: CitizenDep, body: EmailChangeIn, request: Request, ctx: ContextDep
) -> EmailVerificationOut:
    """Adds or changes the citizen's e-mail address: stored inactive, and a single-use link
    that confirms it is mailed to it (an earlier link stops working). 429 with `Retry-After`
    when an abuse limit is reached."""
    tenant, citizen_id = session
    state, address = await ctx.selfservice.start_email(
        tenant=tenant,
        citizen_id=citizen_id,
        raw_email=body.email,
        topics=body.topics,
        ip=client_ip(request),
    )
    return EmailVerificationOut(
        state=state,  # type: ignore[arg-type]
        to=mask(address),
        expires_in_s=ctx.settings.email_link_ttl_s,
    )


@portal_api.delete("/me/email")
async def remove_email(session: CitizenDep, ctx: ContextDep) -> CitizenOut:
    """Removes the citizen's e-mail address and the e-mail channel from every topic (a pending
    confirmation link stops working)."""
    tenant, citizen_id = session
    doc = await ctx.selfservice.remove_email(tenant=tenant, citizen_id=citizen_id)
    return CitizenOut.model_validate(service.citizen_view(doc))


@portal_api.post("/email-confirmations")
async def confirm_email(
    body: EmailConfirmIn, request: Request, ctx: ContextDep
) -> EmailConfirmedOut:
    """Confirms an e-mail address with the token of its link (once; 410 when the link expired,
    was used or was replaced by a newer one, and nothing changes)."""
    doc = await ctx.selfservice.confirm_email(token=body.token, ip=client_ip(request))
    return EmailConfirmedOut(
        citizen_id=doc["id"],
        email=mask(doc["contacts"]["email"]["address"]),
        subscriptions=doc.get("subscriptions", {}),
    )


def relative_view(doc: dict[str, object]) -> RelativeOut:
    consent: dict[str, object] = doc.get("consent") or {}  # type: ignore[assignment]
    channel = str(consent.get("channel") or "voice")
    contacts: dict[str, dict[str, str] | None] = doc["contacts"]  # type: ignore[assignment]
    point = contacts.get(channel) or {}
    return RelativeOut(
        id=str(doc["id"]),
        name=doc.get("name"),  # type: ignore[arg-type]
        channel=channel,
        phone=mask_phone(point.get("address", "")),
        consent=str(consent.get("state") or "granted"),
        active=bool(doc["active"]),
        topics=list(doc.get("subscriptions") or {}),  # type: ignore[call-overload]
        requested_at=consent.get("requested_at") or doc["created_at"],  # type: ignore[arg-type]
    )


@portal_api.post("/me/relatives", status_code=status.HTTP_201_CREATED)
async def add_relative(
    session: CitizenDep, body: RelativeIn, request: Request, ctx: ContextDep
) -> RelativeOut:
    """Registers a relative; they are called (press 1) or texted (reply JA) for consent and
    become active only after agreeing."""
    tenant, citizen_id = session
    registrant = await ctx.selfservice.me(tenant, citizen_id)
    doc = await ctx.selfservice.register_relative(
        tenant=tenant, registrant=registrant, body=body, ip=client_ip(request)
    )
    return relative_view(doc)


@portal_api.get("/me/relatives")
async def list_relatives(session: CitizenDep, ctx: ContextDep) -> list[RelativeOut]:
    """The people the citizen registered, with their consent state."""
    tenant, citizen_id = session
    return [
        relative_view(d)
        for d in await ctx.selfservice.relatives(tenant=tenant, citizen_id=citizen_id)
    ]


@portal_api.delete("/me/relatives/{relative_id}", status_code=status.HTTP_204_NO_CONTENT)
async def withdraw_relative(relative_id: IdPath, session: CitizenDep, ctx: ContextDep) -> None:
    """Withdraws a relative's registration (their data is erased)."""
    tenant, citizen_id = session
    await ctx.selfservice.withdraw_relative(
        tenant=tenant, citizen_id=citizen_id, relative_id=relative_id
    )


@portal_api.get("/me/export")
async def export_me(session: CitizenDep, ctx: ContextDep) -> JSONResponse:
    """All data about the citizen as JSON, consent records included."""
    tenant, citizen_id = session
    data = await ctx.selfservice.export(tenant=tenant, citizen_id=citizen_id)
    return JSONResponse(data, headers={"Content-Disposition": "attachment; filename=export.json"})


@portal_api.delete("/me")
async def erase_me(session: CitizenDep, ctx: ContextDep) -> Response:
    """Erases the citizen's registration (204 gone, 202 still finishing)."""
    tenant, citizen_id = session
    gone = await ctx.selfservice.erase(tenant=tenant, citizen_id=citizen_id, by="citizen")
    return Response(status_code=204 if gone else 202)


def install_error_handlers(app: FastAPI) -> None:
    """Turns domain errors into 4xx answers in the caller's language; 429s carry
    `Retry-After`."""
    install_domain_error_handlers(app, catalogue=MESSAGES, rejected=REJECTED_INPUT)

    async def rate_limited(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RateLimitedError)  # noqa: S101 - registered for it only
        text = MESSAGES.message(exc.code, language_of(request), **exc.params)
        return JSONResponse(
            {"detail": text, "code": exc.code, "retry_after": exc.retry_after},
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )

    app.add_exception_handler(RateLimitedError, rate_limited)
