"""The topic registry, its examples and the exported JSON Schema agree."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from sirene.schemas import TOPICS, AlertPublished, Channel, task_id_for
from sirene.schemas.examples import EXAMPLES
from sirene.schemas.export import main as export_main

ROOT = Path(__file__).resolve().parents[1]


def test_every_topic_has_an_example() -> None:
    assert set(EXAMPLES) == set(TOPICS)


@pytest.mark.parametrize(("topic", "payload"), [(t, p) for t, ps in EXAMPLES.items() for p in ps])
def test_example_validates_against_its_topic_model(topic: str, payload: dict[str, object]) -> None:
    model = TOPICS[topic].model
    parsed = model.model_validate(payload)
    # a round trip through JSON keeps it valid
    assert model.model_validate_json(parsed.model_dump_json()) == parsed


def test_unknown_fields_are_rejected() -> None:
    payload = {**EXAMPLES["alert.published"][0], "surprise": 1}
    with pytest.raises(ValidationError, match="surprise"):
        AlertPublished.model_validate(payload)


def test_alert_requires_german_text_and_a_sane_window() -> None:
    base = AlertPublished.model_validate(EXAMPLES["alert.published"][0])
    with pytest.raises(ValidationError, match="German"):
        AlertPublished.model_validate({**base.model_dump(), "texts": {"en": base.texts["de"]}})
    with pytest.raises(ValidationError, match="expires"):
        AlertPublished.model_validate(
            {**base.model_dump(), "expires": base.effective - timedelta(minutes=1)}
        )
    with pytest.raises(ValidationError, match="exercise"):
        AlertPublished.model_validate({**base.model_dump(), "status": "Exercise"})


def test_task_ids_are_deterministic_and_distinct() -> None:
    a = task_id_for("alert-1", "c-1", Channel.SMS)
    assert a == task_id_for("alert-1", "c-1", Channel.SMS)
    assert len(a) == 32
    others = {
        task_id_for("alert-2", "c-1", Channel.SMS),
        task_id_for("alert-1", "c-2", Channel.SMS),
        task_id_for("alert-1", "c-1", Channel.VOICE),
        task_id_for("alert-1", "c-1", Channel.SMS, "device-2"),
    }
    assert a not in others
    assert len(others) == 4


def test_exported_json_schema_is_current() -> None:
    assert export_main([str(ROOT / "json"), "--check"]) == 0, "run `make schemas`"
