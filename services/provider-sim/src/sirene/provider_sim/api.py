"""HTTP routes: Twilio REST subset, FCM HTTP v1 subset, simulator control/inspection, web page."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
import uuid
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from sirene.provider_sim.faults import FaultConfig, Rejection
from sirene.provider_sim.service import APNS_TOKEN, SimulatorService, TwilioApiError
from sirene.provider_sim.state import BehaviourPatch
from sirene.provider_sim.web import render_phones_page

TWILIO_PREFIX = "/2010-04-01/Accounts/{account_sid}"


async def get_service(request: Request) -> SimulatorService:
    # async (like every dependency here): FastAPI runs a plain `def` dependency in a worker
    # thread, a thread hop per request that cost more than the request's own work.
    service: SimulatorService = request.app.state.service
    return service


ServiceDep = Annotated[SimulatorService, Depends(get_service)]


async def twilio_account(account_sid: str, request: Request, service: ServiceDep) -> str:
    """Check HTTP Basic credentials like Twilio; the account of the URL must be the caller's."""
    username, password = _basic_credentials(request.headers.get("authorization"))
    token = service.auth_token(username) if username else None
    if token is None or password is None or not hmac.compare_digest(token, password):
        raise TwilioApiError(401, 20003, "Authentication Error - invalid username")
    if username != account_sid:
        raise TwilioApiError(404, 20404, f"The requested resource {request.url.path} was not found")
    return account_sid


AccountDep = Annotated[str, Depends(twilio_account)]


def _basic_credentials(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else (None, None)


async def _form(request: Request) -> dict[str, list[str]]:
    # Parsed by hand: repeated keys (StatusCallbackEvent) matter and python-multipart is not
    # needed for urlencoded bodies.
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True)


def twilio_error_response(exc: TwilioApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if exc.status == 401 else None
    return JSONResponse(exc.document(), status_code=exc.status, headers=headers)


# --- Twilio --------------------------------------------------------------------------------

twilio_router = APIRouter(prefix=TWILIO_PREFIX, tags=["twilio"])


# The two hand-off endpoints (message and call creation) take every SMS and call of an alert,
# so they skip FastAPI's dependency injection and response serialisation: the same checks
# (`twilio_account`) are called directly and the resource goes out as a ready JSON response.
# Together that was about half of the simulator's CPU per request.


@twilio_router.post("/Messages.json", status_code=201, response_model=None)
async def create_message(account_sid: str, request: Request) -> JSONResponse:
    service = await get_service(request)
    await twilio_account(account_sid, request, service)
    message = service.create_message(account_sid=account_sid, form=await _form(request))
    await service.faults.delay()
    return JSONResponse(message.resource(), status_code=201)


@twilio_router.get("/Messages.json")
async def list_messages(
    account_sid: AccountDep, request: Request, service: ServiceDep
) -> dict[str, Any]:
    """Message list filtered by `To`, `From` and `DateSent>` (the newest first, one page),
    like Twilio's; what a sender checks after a crash before sending again."""
    query = request.query_params
    to, from_ = query.get("To"), query.get("From")
    sent_after = _twilio_date(query.get("DateSent>"))
    page_size = min(int(query.get("PageSize", "50") or 50), 1000)
    phone = service.state.phones.get(to) if to else None
    candidates = phone.messages if phone is not None else []
    found = [
        m.resource()
        for m in candidates
        if m.account_sid == account_sid
        and (from_ is None or m.from_ == from_)
        and (sent_after is None or m.date_created.date() >= sent_after)
    ][:page_size]
    uri = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
    return {
        "messages": found,
        "end": max(0, len(found) - 1),
        "first_page_uri": uri,
        "next_page_uri": None,
        "page": 0,
        "page_size": page_size,
        "previous_page_uri": None,
        "start": 0,
        "uri": uri,
    }


def _twilio_date(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise TwilioApiError(400, 20001, f"Invalid date {value!r}") from None


@twilio_router.get("/Messages/{sid}.json")
async def fetch_message(
    account_sid: AccountDep, sid: str, request: Request, service: ServiceDep
) -> dict[str, Any]:
    message = service.state.messages.get(sid)
    if message is None or message.account_sid != account_sid:
        raise TwilioApiError(404, 20404, f"The requested resource {request.url.path} was not found")
    return message.resource()


@twilio_router.post("/Calls.json", status_code=201, response_model=None)
async def create_call(account_sid: str, request: Request) -> JSONResponse:
    service = await get_service(request)
    await twilio_account(account_sid, request, service)
    call = service.create_call(account_sid=account_sid, form=await _form(request))
    await service.faults.delay()
    return JSONResponse(call.resource(), status_code=201)


@twilio_router.get("/Calls/{sid}.json")
async def fetch_call(
    account_sid: AccountDep, sid: str, request: Request, service: ServiceDep
) -> dict[str, Any]:
    call = service.state.calls.get(sid)
    if call is None or call.account_sid != account_sid:
        raise TwilioApiError(404, 20404, f"The requested resource {request.url.path} was not found")
    return call.resource()


# --- FCM HTTP v1 (minimal) -----------------------------------------------------------------

fcm_router = APIRouter(tags=["fcm"])


def _fcm_error(status: int, state: str, message: str, code: str | None = None) -> JSONResponse:
    error: dict[str, Any] = {"code": status, "message": message, "status": state}
    if code is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
        ]
    return JSONResponse({"error": error}, status_code=status)


@fcm_router.post("/v1/projects/{project}/messages:send", response_model=None)
async def fcm_send(project: str, request: Request) -> JSONResponse:
    service = await get_service(request)  # hand-off path: no dependency injection (see above)
    try:
        service.faults.check("push")
    except Rejection as exc:
        service.reject_push("fcm", exc.reason)
        state = "UNAVAILABLE" if exc.status == 503 else "RESOURCE_EXHAUSTED"
        return _fcm_error(exc.status, state, exc.message, state)
    await service.faults.delay()
    authorization = request.headers.get("authorization", "")
    if not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
        service.reject_push("fcm", "UNAUTHENTICATED")
        return _fcm_error(401, "UNAUTHENTICATED", "Request is missing required authentication.")
    try:
        document = json.loads(await request.body())
        message = document["message"]
        token = message["token"]
        if not isinstance(token, str) or not token:
            raise TypeError("token")
    except (ValueError, KeyError, TypeError):
        service.reject_push("fcm", "INVALID_ARGUMENT")
        return _fcm_error(400, "INVALID_ARGUMENT", "message.token is required", "INVALID_ARGUMENT")
    if service.is_unregistered(token):
        service.reject_push("fcm", "UNREGISTERED")
        return _fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
    message_id = uuid.uuid4().hex
    if not document.get("validate_only"):
        service.record_push(
            platform="fcm", token=token, payload=message, headers={}, notification_id=message_id
        )
    return JSONResponse({"name": f"projects/{project}/messages/{message_id}"})


# --- simulator control and inspection ------------------------------------------------------

sim_router = APIRouter(tags=["simulator"])


@sim_router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@sim_router.get("/", response_class=HTMLResponse)
async def phones_page(service: ServiceDep, lang: str = "de") -> HTMLResponse:
    return HTMLResponse(render_phones_page(service.state, lang=lang))


@sim_router.get("/sim/phones")
async def list_phones(service: ServiceDep) -> dict[str, Any]:
    numbers = list(reversed(service.state.phones))
    return {"phones": [service.state.phone_view(n) for n in numbers]}


@sim_router.get("/sim/phones/{number}")
async def get_phone(number: str, service: ServiceDep) -> dict[str, Any]:
    return service.state.phone_view(number)


@sim_router.api_route("/sim/phones/{number}/behaviour", methods=["PUT", "POST"])
async def set_behaviour(number: str, patch: BehaviourPatch, service: ServiceDep) -> dict[str, Any]:
    return service.state.patch_behaviour(number, patch).model_dump()


@sim_router.get("/sim/devices")
async def list_devices(service: ServiceDep) -> dict[str, Any]:
    tokens = list(reversed(service.state.devices))
    return {"devices": [service.state.device_view(t) for t in tokens]}


@sim_router.get("/sim/devices/{token}")
async def get_device(token: str, service: ServiceDep) -> dict[str, Any]:
    return service.state.device_view(_normalise_token(token))


@sim_router.post("/sim/devices/{token}/unregister")
async def unregister_device(token: str, service: ServiceDep) -> dict[str, Any]:
    service.state.unregistered.add(_normalise_token(token))
    return service.state.device_view(_normalise_token(token))


@sim_router.post("/sim/devices/{token}/register")
async def register_device(token: str, service: ServiceDep) -> dict[str, Any]:
    service.state.unregistered.discard(_normalise_token(token))
    return service.state.device_view(_normalise_token(token))


def _normalise_token(token: str) -> str:
    # APNs tokens are hex and clients send either case; the simulator keys them lower-case.
    return token.lower() if APNS_TOKEN.match(token) else token


@sim_router.get("/sim/mailboxes/{address}")
async def get_mailbox(address: str, service: ServiceDep) -> dict[str, Any]:
    """The last e-mails the SMTP sink accepted for `address`, newest first."""
    return service.mailboxes.view(address)


@sim_router.get("/sim/faults")
async def get_faults(service: ServiceDep) -> dict[str, Any]:
    return service.faults.view()


@sim_router.put("/sim/faults")
async def set_faults(config: FaultConfig, service: ServiceDep) -> dict[str, Any]:
    """Replaces the injected faults (see `sirene.provider_sim.faults`)."""
    service.faults.configure(config)
    return service.faults.view()


@sim_router.delete("/sim/faults")
async def clear_faults(service: ServiceDep) -> dict[str, Any]:
    service.faults.configure(FaultConfig())
    return service.faults.view()


@sim_router.get("/sim/ledger")
async def ledger(service: ServiceDep, times: bool = False) -> dict[str, Any]:
    """Accepted hand-offs counted per task id, and (with `times=true`) acceptance times."""
    return service.faults.ledger_view(times=times)


class LedgerQuery(BaseModel):
    task_ids: list[str] = Field(max_length=10_000)


@sim_router.post("/sim/ledger/query")
async def ledger_query(query: LedgerQuery, service: ServiceDep) -> dict[str, Any]:
    """Hand-off counts of up to 10,000 task ids at once (0 for a task never accepted)."""
    return {"counts": {t: service.faults.count_of(t) for t in query.task_ids}}


@sim_router.get("/sim/ledger/{task_id}")
async def ledger_task(task_id: str, service: ServiceDep) -> dict[str, Any]:
    return {"task_id": task_id, "handoffs": service.faults.count_of(task_id)}


@sim_router.get("/sim/stats")
async def stats(service: ServiceDep) -> dict[str, Any]:
    return service.state.stats()


@sim_router.post("/sim/reset")
async def reset(service: ServiceDep) -> dict[str, Any]:
    service.reset()
    return service.state.stats()


@sim_router.get("/sim/ca.pem")
async def ca_certificate(request: Request) -> Response:
    """The CA that signs the APNs server certificate, for clients that want to trust it."""
    ca_file = request.app.state.cert_paths.ca
    return Response(ca_file.read_bytes(), media_type="application/x-pem-file")
