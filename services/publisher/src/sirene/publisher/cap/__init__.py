"""CAP 1.2 (OASIS Common Alerting Protocol) export and import.

Every export is validated against the vendored official schema (`CAP-v1.2.xsd`) before it is
handed out; an export that does not validate is a bug and raises. Imports are parsed without
DTDs, entities or network access, validated against the same schema, and turned into an
`AlertIn`-shaped draft body."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from sirene.runtime import Document

NS = "urn:oasis:names:tc:emergency:cap:1.2"
SCHEMA_PATH = Path(__file__).with_name("CAP-v1.2.xsd")
MAX_BYTES = 1024 * 1024
CAP_CATEGORIES = {
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
}
LANGUAGE_TAGS = {"de": "de-DE", "en": "en-GB"}
MAX_AREAS = 20
"""At most this many polygons become target areas (as `Audience.areas` allows)."""


class CapError(ValueError):
    """A CAP document that is not valid CAP 1.2 (or not importable): `reason` says why."""


@cache
def schema() -> etree.XMLSchema:
    """The official CAP 1.2 schema (parsed once)."""
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH), parser=_parser()))


def _parser() -> etree.XMLParser:
    # no DTD loading, no entity expansion, no network: safe for untrusted input
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        dtd_validation=False,
    )


def validate(xml: bytes) -> etree._Element:
    """Parses and validates a CAP 1.2 document; raises `CapError` with the first problem."""
    try:
        root = etree.fromstring(xml, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise CapError(f"kein wohlgeformtes XML ({exc.msg})") from None
    xsd = schema()
    if not xsd.validate(root):
        error = xsd.error_log.filter_from_errors()[0]
        raise CapError(f"Zeile {error.line}: {error.message}"[:300])
    return root


def cap_time(value: datetime) -> str:
    """A CAP dateTime: seconds precision with an explicit offset (never 'Z')."""
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def identifier(doc: Document) -> str:
    """The CAP identifier of an alert (unique per sender; no spaces, commas or '<' '&')."""
    return f"sirene.{doc['tenant']}.{doc['id']}"


def _sent(doc: Document) -> datetime:
    sent: datetime = doc.get("published_at") or doc["created_at"]
    return sent


def reference(doc: Document, *, sender: str) -> str:
    """`sender,identifier,sent` of an alert, as CAP `references` lists it."""
    return f"{sender},{identifier(doc)},{cap_time(_sent(doc))}"


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{NS}}}{tag}")
    if text is not None:
        element.text = text
    return element


def _area_desc(doc: Document, place: str) -> str:
    audience = doc["audience"]
    districts = audience.get("districts") or []
    if districts:
        return f"{place}: {', '.join(districts)}"
    return place


def cap_polygon(ring: Sequence[Sequence[float]]) -> str:
    """A ring of [lon, lat] positions as a CAP polygon: "lat,lon" pairs, the first repeated
    at the end (CAP wants the ring closed)."""
    points = [(float(p[1]), float(p[0])) for p in ring]
    if points[0] != points[-1]:
        points.append(points[0])
    return " ".join(f"{lat},{lon}" for lat, lon in points)


def _areas(area_parent: etree._Element, doc: Document, place: str) -> None:
    """One CAP `area` per target area (its outer ring; CAP polygons have no holes), plus the
    municipality or its districts when the alert is not only for areas."""
    audience = doc["audience"]
    areas = audience.get("areas") or []
    for target in areas:
        area = _sub(area_parent, "area")
        _sub(area, "areaDesc", target["description"])
        _sub(area, "polygon", cap_polygon(target["polygon"][0]))
    if not areas or audience.get("districts"):
        area = _sub(area_parent, "area")
        _sub(area, "areaDesc", _area_desc(doc, place))


def export_alert(
    doc: Document, *, sender: str, place: str, referenced: Sequence[Document] = ()
) -> bytes:
    """The alert as a CAP 1.2 document (one `info` per language), validated."""
    root = etree.Element(f"{{{NS}}}alert", nsmap={None: NS})
    _sub(root, "identifier", identifier(doc))
    _sub(root, "sender", sender)
    _sub(root, "sent", cap_time(_sent(doc)))
    _sub(root, "status", doc["status"])
    _sub(root, "msgType", doc["msg_type"])
    _sub(root, "source", "Sirene")
    _sub(root, "scope", "Public")
    if doc["exercise"]:
        _sub(root, "note", "ÜBUNG – keine echte Warnung" if doc["status"] == "Exercise" else "TEST")
    if referenced:
        _sub(root, "references", " ".join(reference(r, sender=sender) for r in referenced))
    for lang, texts in doc["texts"].items():
        info = _sub(root, "info")
        _sub(info, "language", LANGUAGE_TAGS.get(lang, lang))
        _sub(info, "category", doc["category"] if doc["category"] in CAP_CATEGORIES else "Other")
        _sub(info, "event", texts["push_title"])
        if doc["msg_type"] == "Cancel":
            _sub(info, "responseType", "AllClear")
        _sub(info, "urgency", doc["urgency"])
        _sub(info, "severity", doc["severity"])
        _sub(info, "certainty", doc["certainty"])
        if doc.get("effective"):
            _sub(info, "effective", cap_time(doc["effective"]))
        if doc.get("expires"):
            _sub(info, "expires", cap_time(doc["expires"]))
        _sub(info, "senderName", place)
        _sub(info, "headline", texts["headline"])
        _sub(info, "description", texts.get("email_body") or texts["push_body"])
        for name in ("sms", "voice", "push_body"):
            parameter = _sub(info, "parameter")
            _sub(parameter, "valueName", f"sirene:{name}")
            _sub(parameter, "value", texts[name])
        _areas(info, doc, place)
    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    validate(xml)  # never hand out what the schema refuses
    return xml


# --- import -------------------------------------------------------------------------------


def _text(element: etree._Element, tag: str) -> str | None:
    found = element.find(f"{{{NS}}}{tag}")
    if found is None or found.text is None:
        return None
    text = " ".join(found.text.split())
    return text or None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _language(tag: str | None) -> str | None:
    primary = (tag or "en-US").split("-")[0].lower()
    return primary if primary in LANGUAGE_TAGS else None


def import_body(xml: bytes, *, now: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    """An `AlertIn`-shaped draft body from a CAP 1.2 document, and where it came from
    (identifier, sender, sent). German and English `info` blocks become the texts of those
    languages; without a German one the first block is taken as German. Times already past
    are dropped (the draft gets the default duration). The audience is everyone in the
    municipality, narrowed to the polygons of the German (or first) `info` block's areas when it
    has any (each polygon an area named by its areaDesc); geocodes such as DWD warn cells have no
    counterpart here and are left for staff to narrow by topic or district."""
    root = validate(xml)
    status = _text(root, "status")
    if status not in {"Actual", "Exercise", "Test"}:
        raise CapError(f"status '{status}' wird nicht übernommen (nur Actual, Exercise, Test)")
    msg_type = _text(root, "msgType")
    if msg_type not in {"Alert", "Update"}:
        raise CapError(f"msgType '{msg_type}' wird nicht als Entwurf übernommen")
    infos = root.findall(f"{{{NS}}}info")
    if not infos:
        raise CapError("keine info-Angaben")
    by_language: dict[str, etree._Element] = {}
    for info in infos:
        lang = _language(_text(info, "language"))
        if lang is not None and lang not in by_language:
            by_language[lang] = info
    if "de" not in by_language:
        by_language["de"] = infos[0]
    main = by_language["de"]
    texts: dict[str, dict[str, str]] = {}
    for lang, info in by_language.items():
        event = _text(info, "event") or ""
        headline = _text(info, "headline") or event or "Warnung"
        description = _text(info, "description") or headline
        instruction = _text(info, "instruction")
        full = f"{description}\n\n{instruction}" if instruction else description
        texts[lang] = {
            "headline": _clip(headline, 160),
            "push_title": _clip(event.capitalize() if event.isupper() else event or headline, 120),
            "push_body": _clip(description, 1000),
            "sms": _clip(f"{headline}. {instruction or description}", 300),
            "voice": _clip(f"{headline}. {description}", 2000),
            "email_subject": _clip(headline, 200),
            "email_body": _clip(full, 20000),
        }
    category = _text(main, "category") or "Other"
    effective = _time(_text(main, "effective") or _text(main, "onset"))
    expires = _time(_text(main, "expires"))
    body: dict[str, Any] = {
        "status": status,
        "severity": _text(main, "severity") or "Unknown",
        "urgency": _text(main, "urgency") or "Unknown",
        "certainty": _text(main, "certainty") or "Unknown",
        "category": category if category in CAP_CATEGORIES else "Other",
        "texts": texts,
        "audience": {"everyone": True, "areas": _import_areas(main)},
        "effective": effective if effective and effective > now else None,
        "expires": expires if expires and expires > max(now, effective or now) else None,
    }
    source = {
        "identifier": _text(root, "identifier") or "",
        "sender": _text(root, "sender") or "",
        "sent": _text(root, "sent") or "",
        "msg_type": msg_type,
    }
    return body, source


def _import_areas(info: etree._Element) -> list[dict[str, Any]]:
    """The polygons of an `info` block's areas as target areas ([lon, lat] rings)."""
    areas: list[dict[str, Any]] = []
    for area in info.findall(f"{{{NS}}}area"):
        description = _clip(_text(area, "areaDesc") or "Gebiet", 200)
        for polygon in area.findall(f"{{{NS}}}polygon"):
            ring: list[list[float]] = []
            for pair in (polygon.text or "").split():
                lat, _, lon = pair.partition(",")
                try:
                    ring.append([float(lon), float(lat)])
                except ValueError:
                    raise CapError(
                        f"polygon von '{description}': '{pair}' ist kein lat,lon-Paar"
                    ) from None
            areas.append({"description": description, "polygon": [ring]})
    if len(areas) > MAX_AREAS:
        raise CapError(f"mehr als {MAX_AREAS} Polygone")
    return areas
