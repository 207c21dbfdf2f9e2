"""HTTP routes: Twilio REST subset, FCM HTTP v1 subset, simulator control/inspection, web page."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import uuid
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from sirene.provider_sim.service import APNS_TOKEN, SimulatorService, TwilioApiError
from sirene.provider_sim.state import BehaviourPatch
from sirene.provider_sim.web import render_phones_page

TWILIO_PREFIX = "/2010-04-01/Accounts/{account_sid}"


def get_service(request: Request) -> SimulatorService:
    service: SimulatorService = request.app.state.service
    return service


ServiceDep = Annotated[SimulatorService, Depends(get_service)]


def twilio_account(account_sid: str, request: Request, service: ServiceDep) -> str:
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


@twilio_router.post("/Messages.json", status_code=201)
async def create_message(
    account_sid: AccountDep, request: Request, service: ServiceDep
) -> dict[str, Any]:
    message = service.create_message(account_sid=account_sid, form=await _form(request))
    return message.resource()


@twilio_router.get("/Messages/{sid}.json")
async def fetch_message(
    account_sid: AccountDep, sid: str, request: Request, service: ServiceDep
) -> dict[str, Any]:
    message = service.state.messages.get(sid)
    if message is None or message.account_sid != account_sid:
        raise TwilioApiError(404, 20404, f"The requested resource {request.url.path} was not found")
    return message.resource()


@twilio_router.post("/Calls.json", status_code=201)
async def create_call(
    account_sid: AccountDep, request: Request, service: ServiceDep
) -> dict[str, Any]:
    call = service.create_call(account_sid=account_sid, form=await _form(request))
    return call.resource()


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
async def fcm_send(project: str, request: Request, service: ServiceDep) -> JSONResponse:
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
