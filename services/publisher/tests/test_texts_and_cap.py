"""Unit tests (no network): SMS segment counting, templates, CAP 1.2 export and import against
the official schema, and the role rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sirene.publisher import cap
from sirene.publisher.accounts import Principal, TenantPolicy, require
from sirene.publisher.alert_templates import TEMPLATES, cancel_texts
from sirene.publisher.errors import ForbiddenError
from sirene.publisher.models import AlertIn
from sirene.publisher.roles import Role
from sirene.publisher.service import mark_texts
from sirene.publisher.sms import sms_length
from sirene.schemas import AlertStatus

EXAMPLE = cap.SCHEMA_PATH.parent / "examples" / "dwd-unwetter-gewitter.xml"


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", "GSM-7", 0),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters take two septets each
        ("€" * 81, "GSM-7", 2),
        ("Hochwasser in Görlitz: Ufer meiden!", "GSM-7", 1),  # ö and Ü are GSM-7
        ("Straße gesperrt", "GSM-7", 1),  # ß too
        ("Achtung – Hochwasser", "UCS-2", 1),  # the en dash is not
        ("ł" * 70, "UCS-2", 1),
        ("ł" * 71, "UCS-2", 2),
        ("ł" * 202, "UCS-2", 4),
    ],
)
def test_sms_segments(text: str, encoding: str, segments: int) -> None:
    length = sms_length(text)
    assert (length.encoding, length.segments) == (encoding, segments)
    assert length.warn is (segments > 3)


def test_the_dash_is_named_as_what_forces_ucs2() -> None:
    assert sms_length("Achtung – Hochwasser").non_gsm == "–"


@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
@pytest.mark.parametrize("status", list(AlertStatus))
def test_every_template_makes_a_valid_alert_in_every_mode(
    template_id: str, status: AlertStatus
) -> None:
    body = TEMPLATES[template_id].body("Musterstadt") | {
        "status": status.value,
        "audience": {"topics": ["gefahrenhinweise"]},
    }
    alert = AlertIn.model_validate(body)
    marked = mark_texts(alert.texts, status)
    for texts in marked.values():
        assert "{ort}" not in texts.sms
        assert sms_length(texts.sms).segments <= 3, (template_id, texts.sms)
        if status is not AlertStatus.ACTUAL:
            assert texts.sms.startswith(("ÜBUNG: ", "EXERCISE: ", "TEST: "))


def test_templates_cover_the_common_warnings() -> None:
    names = {t.name for t in TEMPLATES.values()}
    assert names == {
        "Unwetter",
        "Hochwasser",
        "Trinkwasser",
        "Stromausfall",
        "Vermisste Person",
        "Entwarnung",
    }


def test_cancel_texts_name_the_original_without_its_marker() -> None:
    texts = cancel_texts({"de": {"headline": "ÜBUNG: Hochwasser"}, "en": {"headline": "Flood"}})
    assert texts["de"]["headline"] == "Aufgehoben: Hochwasser"
    assert "„Hochwasser“" in texts["de"]["sms"]
    assert texts["en"]["push_title"] == "All clear"


def _doc(**overrides: object) -> dict[str, object]:
    now = datetime(2026, 11, 22, 8, 30, 15, 123456, tzinfo=UTC)
    texts = TEMPLATES["hochwasser"].body("Musterstadt")["texts"]
    return {
        "tenant": "musterstadt",
        "id": "a" * 32,
        "state": "published",
        "status": "Actual",
        "msg_type": "Alert",
        "references": [],
        "exercise": False,
        "severity": "Severe",
        "urgency": "Immediate",
        "certainty": "Observed",
        "category": "Met",
        "headline": "Hochwasser",
        "texts": texts,
        "audience": {"everyone": False, "topics": ["gefahrenhinweise"], "districts": ["Altstadt"]},
        "effective": now,
        "expires": now + timedelta(hours=2),
        "created_at": now,
        "published_at": now,
    } | overrides


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"status": "Exercise", "exercise": True},
        {"status": "Test", "exercise": True, "category": "Other"},
        {"state": "draft", "published_at": None, "effective": None, "expires": None},
        {"msg_type": "Update"},
        {"msg_type": "Cancel"},
    ],
)
def test_export_validates_against_the_oasis_schema(overrides: dict[str, object]) -> None:
    doc = _doc(**overrides)
    referenced = [_doc(id="b" * 32)] if doc["msg_type"] != "Alert" else []
    xml = cap.export_alert(
        doc, sender="musterstadt@sirene.invalid", place="Musterstadt", referenced=referenced
    )
    root = cap.validate(xml)
    ns = {"c": cap.NS}
    assert root.findtext("c:sent", namespaces=ns) == "2026-11-22T08:30:15+00:00"
    assert root.findtext("c:status", namespaces=ns) == doc["status"]
    assert [i.findtext("c:language", namespaces=ns) for i in root.findall("c:info", ns)] == [
        "de-DE",
        "en-GB",
    ]
    if referenced:
        assert root.findtext("c:references", namespaces=ns) == (
            f"musterstadt@sirene.invalid,sirene.musterstadt.{'b' * 32},2026-11-22T08:30:15+00:00"
        )


def test_target_areas_are_exported_as_cap_polygons_and_imported_back() -> None:
    ring = [[8.671, 50.108], [8.689, 50.108], [8.689, 50.113], [8.671, 50.108]]
    hole = [[8.68, 50.109], [8.685, 50.109], [8.685, 50.11], [8.68, 50.109]]
    audience = {
        "everyone": True,
        "topics": [],
        "districts": [],
        "areas": [{"description": "Mainufer", "polygon": [ring, hole]}],
    }
    xml = cap.export_alert(_doc(audience=audience), sender="s@x", place="Musterstadt")
    root = cap.validate(xml)
    ns = {"c": cap.NS}
    areas = root.findall("c:info", ns)[0].findall("c:area", ns)
    assert [a.findtext("c:areaDesc", namespaces=ns) for a in areas] == ["Mainufer"]
    assert areas[0].findtext("c:polygon", namespaces=ns) == (
        "50.108,8.671 50.108,8.689 50.113,8.689 50.108,8.671"  # lat,lon; CAP has no holes
    )
    body, _ = cap.import_body(xml, now=datetime(2026, 11, 22, tzinfo=UTC))
    assert body["audience"] == {
        "everyone": True,
        "areas": [{"description": "Mainufer", "polygon": [ring]}],
    }
    # districts as well: the municipality's districts are named in an area of their own
    both = {**audience, "districts": ["Altstadt"]}
    xml = cap.export_alert(_doc(audience=both), sender="s@x", place="Musterstadt")
    areas = cap.validate(xml).findall("c:info", ns)[0].findall("c:area", ns)
    names = [a.findtext("c:areaDesc", namespaces=ns) for a in areas]
    assert names == ["Mainufer", "Musterstadt: Altstadt"]
    broken = xml.replace(b"50.108,8.671 ", b"50.108;8.671 ", 1)
    with pytest.raises(cap.CapError, match="lat,lon"):
        cap.import_body(broken, now=datetime(2026, 11, 22, tzinfo=UTC))


def test_the_schema_refuses_what_cap_forbids() -> None:
    xml = cap.export_alert(_doc(), sender="s@x", place="Musterstadt")
    with pytest.raises(cap.CapError, match="status"):
        cap.validate(xml.replace(b"<status>Actual</status>", b"<status>Real</status>"))
    with pytest.raises(cap.CapError, match="sent"):
        cap.validate(xml.replace(b"+00:00</sent>", b"Z</sent>"))


def test_import_of_the_dwd_example() -> None:
    body, source = cap.import_body(
        EXAMPLE.read_bytes(), now=datetime(2023, 7, 11, 11, 0, tzinfo=UTC)
    )
    alert = AlertIn.model_validate(body)
    assert source["sender"] == "opendata@dwd.de"
    assert alert.severity.value == "Severe"
    assert alert.effective == datetime.fromisoformat("2023-07-11T13:26:00+02:00")
    assert alert.expires == datetime.fromisoformat("2023-07-11T15:00:00+02:00")
    assert set(alert.texts) == {"de", "en"}  # type: ignore[comparison-overlap]
    # the warning's polygon narrows the audience to Kreis Nordsachsen
    (area,) = alert.audience.areas
    assert area.description == "Kreis Nordsachsen"
    assert area.polygon[0][0] == (12.2986, 51.6547)  # [lon, lat] of "51.6547,12.2986"
    assert len(area.polygon[0]) == 9


def test_roles_and_the_second_factor() -> None:
    policy = TenantPolicy(require_totp=True)
    alerter = Principal("t", "s1", "A", frozenset({Role.ALERTER}), via="session", policy=policy)
    with pytest.raises(ForbiddenError) as info:
        require(alerter, Role.ALERTER)
    assert info.value.code == "totp_required"
    verified = Principal(
        "t", "s1", "A", frozenset({Role.ALERTER}), via="session", mfa=True, policy=policy
    )
    assert require(verified, Role.ALERTER) is Role.ALERTER
    editor = Principal("t", "s2", "E", frozenset({Role.EDITOR}), via="session", policy=policy)
    assert require(editor, Role.EDITOR) is Role.EDITOR  # posts need no second factor
    with pytest.raises(ForbiddenError) as info:
        require(editor, Role.APPROVER)
    assert info.value.code == "role_required"
