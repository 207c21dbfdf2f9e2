"""The small part of TwiML a voice alert uses: Say, Play, Pause, Gather, Hangup, Redirect."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


class TwimlError(ValueError):
    """The document is not TwiML we can execute (Twilio would speak an application error)."""


@dataclass(frozen=True, slots=True)
class Say:
    text: str
    language: str | None = None
    voice: str | None = None
    loop: int = 1


@dataclass(frozen=True, slots=True)
class Play:
    url: str
    loop: int = 1


@dataclass(frozen=True, slots=True)
class Pause:
    length: int = 1


@dataclass(frozen=True, slots=True)
class Gather:
    num_digits: int | None
    action: str | None
    method: str
    finish_on_key: str
    prompts: list[Say | Play | Pause] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Hangup:
    """`<Hangup/>`: the call ends here."""


@dataclass(frozen=True, slots=True)
class Redirect:
    url: str
    method: str


Verb = Say | Play | Pause | Gather | Hangup | Redirect


def parse(document: str) -> list[Verb]:
    """Parse a TwiML ``<Response>`` into verbs; unknown verbs are skipped like Twilio warns."""
    try:
        # The document comes from the developer's own service on loopback (dev tool), and
        # expat since 2.4.1 refuses entity-expansion bombs, so plain ElementTree is enough.
        root = ET.fromstring(document.strip())  # noqa: S314
    except ET.ParseError as exc:
        raise TwimlError(f"invalid TwiML XML: {exc}") from exc
    if root.tag != "Response":
        raise TwimlError(f"TwiML root must be <Response>, got <{root.tag}>")
    verbs: list[Verb] = []
    for element in root:
        verb = _verb(element)
        if verb is not None:
            verbs.append(verb)
    return verbs


def _verb(element: ET.Element) -> Verb | None:
    match element.tag:
        case "Say" | "Play" | "Pause":
            return _prompt(element)
        case "Gather":
            prompts = [p for p in (_prompt(child) for child in element) if p is not None]
            return Gather(
                num_digits=_opt_int(element.get("numDigits")),
                action=element.get("action"),
                method=(element.get("method") or "POST").upper(),
                finish_on_key=element.get("finishOnKey", "#"),
                prompts=prompts,
            )
        case "Hangup" | "Reject":
            return Hangup()
        case "Redirect":
            return Redirect(
                url=(element.text or "").strip(), method=(element.get("method") or "POST").upper()
            )
        case _:
            return None


def _prompt(element: ET.Element) -> Say | Play | Pause | None:
    match element.tag:
        case "Say":
            # <Say> may contain SSML children (<break>, <prosody>, ...); speak all their text.
            text = " ".join(" ".join(element.itertext()).split())
            return Say(
                text=text,
                language=element.get("language"),
                voice=element.get("voice"),
                loop=_int(element.get("loop"), 1),
            )
        case "Play":
            return Play(url=(element.text or "").strip(), loop=_int(element.get("loop"), 1))
        case "Pause":
            return Pause(length=_int(element.get("length"), 1))
        case _:
            return None


def _opt_int(value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise TwimlError(f"not an integer attribute: {value!r}") from exc


def _int(value: str | None, default: int) -> int:
    parsed = _opt_int(value)
    return default if parsed is None else parsed
