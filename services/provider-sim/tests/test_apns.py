"""APNs simulator proven with the real aioapns 4.0 client (token auth, TLS with the sim CA)."""

from __future__ import annotations

import asyncio
import secrets
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aioapns import APNs, NotificationRequest, PushType
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sirene.provider_sim.app import ProviderSimulator

MakeApns = Callable[..., APNs]


def _token() -> str:
    return secrets.token_hex(32)


def _alert(title: str, body: str) -> dict[str, Any]:
    return {
        "aps": {
            "alert": {"title": title, "body": body},
            "sound": "default",
            "interruption-level": "critical",
        }
    }


async def test_push_is_accepted_and_recorded(sim: ProviderSimulator, make_apns: MakeApns) -> None:
    apns = make_apns()
    token = _token()
    request = NotificationRequest(
        device_token=token,
        message=_alert("Hochwasser", "Pegel Musterbach über 4 m. Flussufer meiden."),
        priority=10,
        collapse_key="alert-42",
        push_type=PushType.ALERT,
        time_to_live=3600,
    )
    result = await apns.send_notification(request)
    assert result.is_successful, result.description
    assert result.status == "200"
    assert result.notification_id == request.notification_id

    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        device = (await http.get(f"/sim/devices/{token}")).json()
        stats = (await http.get("/sim/stats")).json()
    (push,) = device["notifications"]
    assert push["id"] == request.notification_id
    assert push["title"] == "Hochwasser"
    assert push["body"].startswith("Pegel Musterbach")
    assert push["interruption_level"] == "critical"
    assert push["collapse_id"] == "alert-42"
    assert push["topic"] == "de.sirene.app"
    assert push["push_type"] == "alert"
    assert push["priority"] == "10"
    assert stats["pushes"] == 1


async def test_many_pushes_share_a_connection(sim: ProviderSimulator, make_apns: MakeApns) -> None:
    apns = make_apns()
    requests = [
        NotificationRequest(device_token=_token(), message=_alert("T", f"B{i}")) for i in range(200)
    ]
    results = await asyncio.gather(*(apns.send_notification(r) for r in requests))
    assert all(r.is_successful for r in results)
    assert sim.service.state.counters["pushes.apns"] == 200


async def test_unregistered_token_gets_410(sim: ProviderSimulator, make_apns: MakeApns) -> None:
    token = _token()
    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        response = await http.post(f"/sim/devices/{token}/unregister")
        assert response.status_code == 200
        assert response.json()["registered"] is False
    result = await make_apns().send_notification(
        NotificationRequest(device_token=token, message=_alert("x", "y"))
    )
    assert result.status == "410"
    assert result.description == "Unregistered"
    assert isinstance(result.timestamp, int)


async def test_malformed_token_gets_400(make_apns: MakeApns) -> None:
    result = await make_apns().send_notification(
        NotificationRequest(device_token="not-a-token", message=_alert("x", "y"))
    )
    assert result.status == "400"
    assert result.description == "BadDeviceToken"


async def test_token_signed_with_another_key_gets_403(make_apns: MakeApns) -> None:
    other_key = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    result = await make_apns(key=other_key).send_notification(
        NotificationRequest(device_token=_token(), message=_alert("x", "y"))
    )
    assert result.status == "403"
    assert result.description == "InvalidProviderToken"


async def test_untrusted_client_cannot_connect(sim: ProviderSimulator) -> None:
    """Without the simulator CA the TLS handshake fails: the CA really is what clients trust."""
    context = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection("127.0.0.1", sim.apns_port, ssl=context)
