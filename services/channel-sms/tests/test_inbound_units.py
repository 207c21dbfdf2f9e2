"""The inbound SMS webhook's event mapping (no servers)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sirene.channel_sms.inbound import inbound_sms


def test_a_twilio_incoming_message_becomes_an_inbound_sms() -> None:
    event = inbound_sms(
        {
            "MessageSid": "SM" + "a" * 32,
            "From": "+4915112345678",
            "To": "+15005550006",
            "Body": "STOP",
            "NumMedia": "0",
        }
    )
    assert event.from_number == "+4915112345678"
    assert event.body == "STOP"
    assert event.provider_ref.startswith("SM")


@pytest.mark.parametrize("sender", ["", "SIRENE", "12345", "+0049"])
def test_messages_not_from_a_phone_number_are_refused(sender: str) -> None:
    with pytest.raises(ValidationError):
        inbound_sms({"MessageSid": "SM1", "From": sender, "To": "+15005550006", "Body": "x"})
