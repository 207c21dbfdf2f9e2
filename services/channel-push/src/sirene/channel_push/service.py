"""Push delivery: APNs through aioapns (token auth, HTTP/2) and FCM HTTP v1 through httpx.

APNs/FCM accepting a notification is the last thing a server can know, so a 200 becomes a
DELIVERED receipt (with the apns-id / FCM message name as provider_ref)."""

from __future__ import annotations

import logging
import ssl
import uuid
from dataclasses import replace
from typing import Any

import httpx
from aioapns import APNs, NotificationRequest, PushType
from aioapns.common import NotificationResult
from aioapns.connection import APNsProductionClientProtocol

from sirene.runtime import mask
from sirene.runtime.delivery import Outcome
from sirene.schemas import (
    DeliveryTask,
    ErrorClass,
    Language,
    PushPlatform,
    ReceiptStatus,
    Severity,
    utcnow,
)

from .metrics import PROVIDER_ANSWERS
from .settings import ChannelPushSettings

log = logging.getLogger(__name__)

PROVIDER = "apns"
"""Receipt `provider` of the pipeline; FCM outcomes carry 'fcm' themselves."""

INTERRUPTION_LEVEL: dict[Severity, str] = {
    Severity.EXTREME: "critical",
    Severity.SEVERE: "time-sensitive",
}
DEFAULT_TITLE: dict[Language, str] = {Language.DE: "Warnung", Language.EN: "Warning"}

APNS_CONTACT_DEAD = frozenset({"Unregistered", "BadDeviceToken", "DeviceTokenNotForTopic"})
FCM_CONTACT_DEAD = frozenset({"UNREGISTERED"})


def apns_payload(task: DeliveryTask) -> dict[str, Any]:
    """The APNs JSON: alert title/body, interruption level by severity, ids for the app."""
    level = INTERRUPTION_LEVEL.get(task.severity, "active")
    sound: str | dict[str, Any] = (
        {"critical": 1, "name": "default", "volume": 1.0} if level == "critical" else "default"
    )
    return {
        "aps": {
            "alert": {"title": task.title or DEFAULT_TITLE[task.language], "body": task.body},
            "sound": sound,
            "interruption-level": level,
        },
        "tenant_id": task.tenant_id,
        "alert_id": task.alert_id,
        "exercise": task.exercise,
    }


def fcm_message(task: DeliveryTask) -> dict[str, Any]:
    """The FCM v1 `message`: notification title/body, high priority for severe warnings."""
    urgent = task.severity in INTERRUPTION_LEVEL
    ttl_s = max(0, int((task.expires - utcnow()).total_seconds()))
    return {
        "token": task.address,
        "notification": {"title": task.title or DEFAULT_TITLE[task.language], "body": task.body},
        "data": {
            "tenant_id": task.tenant_id,
            "alert_id": task.alert_id,
            "exercise": "1" if task.exercise else "0",
        },
        "android": {
            "priority": "high" if urgent else "normal",
            "ttl": f"{ttl_s}s",
            "collapse_key": task.alert_id,
        },
    }


def apns_outcome(result: NotificationResult) -> Outcome:
    """Receipt outcome of an APNs answer."""
    status = str(result.status)
    if status == "200":
        return Outcome(ReceiptStatus.DELIVERED, provider_ref=result.notification_id)
    reason = str(result.description or status)[:40]
    if reason in APNS_CONTACT_DEAD or status == "410":
        error_class = ErrorClass.CONTACT_DEAD
    elif status in ("429", "500", "503"):
        error_class = ErrorClass.TRANSIENT
    else:
        error_class = ErrorClass.PERMANENT
    return Outcome(
        ReceiptStatus.FAILED,
        provider_ref=result.notification_id,
        error_code=reason,
        error_class=error_class,
        detail=f"apns answered {status} {reason}",
    )


def fcm_outcome(status: int, body: Any) -> Outcome:
    """Receipt outcome of an FCM v1 answer."""
    if status == 200 and isinstance(body, dict):
        return Outcome(ReceiptStatus.DELIVERED, provider_ref=str(body.get("name", ""))[-128:])
    error = body.get("error", {}) if isinstance(body, dict) else {}
    code = str(error.get("status") or status)
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            code = str(detail["errorCode"])
    if code in FCM_CONTACT_DEAD:
        error_class = ErrorClass.CONTACT_DEAD
    elif status == 429 or status >= 500:
        error_class = ErrorClass.TRANSIENT
    else:
        error_class = ErrorClass.PERMANENT
    return Outcome(
        ReceiptStatus.FAILED,
        error_code=code[:40],
        error_class=error_class,
        detail=f"fcm answered {status} {code}",
    )


class PushClients:
    """APNs and FCM clients. Contract: `start()` inside the running event loop before
    `deliver()`; `stop()` at shutdown."""

    def __init__(self, settings: ChannelPushSettings) -> None:
        self.settings = settings
        self._apns: APNs | None = None
        self._fcm: httpx.AsyncClient | None = None

    async def start(self) -> None:
        settings = self.settings
        ca_file = settings.resolved_ca_file
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

        async def quiet(_request: NotificationRequest, _result: NotificationResult) -> None:
            # aioapns logs every rejection at ERROR; `deliver` records and logs it (masked).
            return None

        apns = APNs(
            key=settings.signing_key(),
            key_id=settings.apns_key_id,
            team_id=settings.apns_team_id,
            topic=settings.apns_topic,
            max_connections=settings.apns_max_connections,
            max_connection_attempts=2,
            ssl_context=context,
            err_func=quiet,
        )

        # aioapns reads host and port from its protocol class; the seam to choose the server.
        class Protocol(APNsProductionClientProtocol):
            APNS_SERVER = settings.apns_host
            APNS_PORT = settings.apns_port

        apns.pool.protocol_class = Protocol
        self._apns = apns
        self._fcm = httpx.AsyncClient(
            base_url=settings.fcm_api_url,
            timeout=settings.provider_timeout_s,
            limits=httpx.Limits(max_connections=settings.provider_concurrency),
        )

    async def stop(self) -> None:
        if self._apns is not None:
            self._apns.pool.close()
            self._apns = None
        if self._fcm is not None:
            await self._fcm.aclose()
            self._fcm = None

    async def deliver(self, task: DeliveryTask) -> Outcome:
        """Hands one push task to APNs or FCM by its platform (APNs when unspecified)."""
        if task.push_platform is PushPlatform.FCM:
            outcome = replace(await self._send_fcm(task), provider="fcm")
        else:
            outcome = await self._send_apns(task)
        if outcome.status is ReceiptStatus.FAILED:
            log.warning(
                "push hand-off failed",
                extra={
                    "task_id": task.task_id,
                    "device": mask(task.address),
                    "error_code": outcome.error_code,
                    "error_class": outcome.error_class.value if outcome.error_class else None,
                },
            )
        return outcome

    async def _send_apns(self, task: DeliveryTask) -> Outcome:
        if self._apns is None:
            raise RuntimeError("PushClients.start() was not awaited")
        request = NotificationRequest(
            device_token=task.address,
            message=apns_payload(task),
            notification_id=str(uuid.uuid4()),
            time_to_live=max(0, int((task.expires - utcnow()).total_seconds())),
            priority=10,
            collapse_key=task.alert_id,
            push_type=PushType.ALERT,
        )
        try:
            result = await self._apns.send_notification(request)
        except Exception as exc:  # aioapns: ConnectionError, MaxAttemptsExceeded, TLS errors
            PROVIDER_ANSWERS.labels("apns", "error").inc()
            return Outcome(
                ReceiptStatus.FAILED,
                provider_ref=request.notification_id,
                error_code=type(exc).__name__[:40],
                error_class=ErrorClass.TRANSIENT,
                detail="apns unreachable",
            )
        PROVIDER_ANSWERS.labels("apns", str(result.status)[:3]).inc()
        return apns_outcome(result)

    async def _send_fcm(self, task: DeliveryTask) -> Outcome:
        token = self.settings.fcm_access_token
        if self._fcm is None:
            raise RuntimeError("PushClients.start() was not awaited")
        if token is None:
            return Outcome(
                ReceiptStatus.FAILED,
                error_code="fcm_not_configured",
                error_class=ErrorClass.PERMANENT,
                detail="fcm not configured",
            )
        try:
            response = await self._fcm.post(
                f"/v1/projects/{self.settings.fcm_project}/messages:send",
                json={"message": fcm_message(task)},
                headers={"Authorization": f"Bearer {token.get_secret_value()}"},
            )
        except httpx.HTTPError as exc:
            PROVIDER_ANSWERS.labels("fcm", "error").inc()
            return Outcome(
                ReceiptStatus.FAILED,
                error_code=type(exc).__name__[:40],
                error_class=ErrorClass.TRANSIENT,
                detail="fcm unreachable",
            )
        PROVIDER_ANSWERS.labels("fcm", str(response.status_code)).inc()
        try:
            body = response.json()
        except ValueError:
            body = None
        return fcm_outcome(response.status_code, body)
