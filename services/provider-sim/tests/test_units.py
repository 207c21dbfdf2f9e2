"""Unit tests without network: segments, TwiML, masking, certificates, provider tokens."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sirene.provider_sim import twiml
from sirene.provider_sim.apns import ProviderTokenVerifier
from sirene.provider_sim.certs import ensure_certificates
from sirene.provider_sim.masking import mask_number, mask_token
from sirene.provider_sim.service import count_segments
from sirene.provider_sim.settings import SimSettings


@pytest.mark.parametrize(
    ("body", "segments", "encoding"),
    [
        ("a" * 160, 1, "GSM-7"),
        ("a" * 161, 2, "GSM-7"),
        ("a" * 306, 2, "GSM-7"),
        ("a" * 307, 3, "GSM-7"),
        ("Übung: Straße gesperrt, Gefahr für Anwohner äöü", 1, "GSM-7"),
        ("€" * 80, 1, "GSM-7"),  # extension characters count twice
        ("€" * 81, 2, "GSM-7"),
        ("„Warnung“", 1, "UCS-2"),
        ("x" * 70 + "“", 2, "UCS-2"),
        ("🚨" * 35, 1, "UCS-2"),  # surrogate pairs: two code units each
        ("🚨" * 36, 2, "UCS-2"),
    ],
)
def test_count_segments(body: str, segments: int, encoding: str) -> None:
    result = count_segments(body)
    assert (result.count, result.encoding) == (segments, encoding)


def test_twiml_parse() -> None:
    verbs = twiml.parse(
        '<?xml version="1.0"?><Response><Say language="de-DE" loop="3">Hallo'
        ' <break time="1s"/> Welt</Say><Pause length="2"/><Gather numDigits="1" action="c">'
        "<Say>Taste</Say><Play>https://x/a.mp3</Play></Gather><Unknown/><Hangup/></Response>"
    )
    assert verbs[0] == twiml.Say("Hallo Welt", "de-DE", None, 3)
    assert verbs[1] == twiml.Pause(2)
    gather = verbs[2]
    assert isinstance(gather, twiml.Gather)
    assert gather.num_digits == 1
    assert gather.action == "c"
    assert gather.method == "POST"
    assert gather.prompts == [twiml.Say("Taste"), twiml.Play("https://x/a.mp3")]
    assert verbs[3] == twiml.Hangup()


@pytest.mark.parametrize(
    "document", ["<Response>", "<Foo/>", '<Response><Say loop="x"/></Response>']
)
def test_twiml_rejects_invalid(document: str) -> None:
    with pytest.raises(twiml.TwimlError):
        twiml.parse(document)


def test_masking() -> None:
    assert mask_number("+4915112345667") == "+49151****67"
    assert "12345" not in mask_number("+4915112345667")
    assert mask_token("a" * 64) == "aaaaaa****"


def test_certificates_are_created_once(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path / "certs")
    contents = {p: p.read_bytes() for p in (first.ca, first.server_cert, first.apns_key)}
    second = ensure_certificates(tmp_path / "certs")
    assert {p: p.read_bytes() for p in (second.ca, second.server_cert, second.apns_key)} == contents
    assert (first.apns_key.stat().st_mode & 0o777) == 0o600


def test_relative_cert_dir_resolves_against_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIRENE_SIM_CERT_DIR", "rel/certs")
    monkeypatch.setenv("SIRENE_SIM_ACCOUNTS", '{"AC' + "1" * 32 + '": "tok"}')
    settings = SimSettings()
    assert settings.cert_dir == tmp_path / "rel" / "certs"
    assert settings.accounts == {"AC" + "1" * 32: "tok"}


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _jwt(key: ec.EllipticCurvePrivateKey, *, iat: int, kid: str | None = "KEY1") -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    headers = {"kid": kid} if kid else {}
    return jwt.encode({"iss": "TEAM1", "iat": iat}, pem, algorithm="ES256", headers=headers)


def test_provider_token_verifier() -> None:
    key = _key()
    now = int(time.time())
    verifier = ProviderTokenVerifier(public_key=key.public_key(), team_id="TEAM1", key_id=None)
    assert verifier.check(f"bearer {_jwt(key, iat=now)}", now) is None
    assert verifier.check(None, now) == "MissingProviderToken"
    assert verifier.check("bearer not.a.jwt", now) == "InvalidProviderToken"
    assert verifier.check(f"bearer {_jwt(key, iat=now, kid=None)}", now) == "InvalidProviderToken"
    assert verifier.check(f"bearer {_jwt(_key(), iat=now)}", now) == "InvalidProviderToken"
    assert verifier.check(f"bearer {_jwt(key, iat=now - 7200)}", now) == "ExpiredProviderToken"
