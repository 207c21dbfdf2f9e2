"""Production refuses the development defaults that point at simulators."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from sirene.runtime.twilio import TwilioServiceSettings


def test_twilio_worker_with_simulator_defaults_is_refused_in_production() -> None:
    with pytest.raises(ValidationError) as info:
        TwilioServiceSettings(environment="production")
    text = str(info.value)
    for problem in ("twilio_api_url", "twilio_account_sid", "twilio_auth_token", "public_url"):
        assert problem in text


def test_twilio_worker_with_real_values_is_accepted_in_production() -> None:
    settings = TwilioServiceSettings(
        environment="production",
        twilio_api_url="https://api.twilio.com",
        twilio_account_sid="AC" + "1" * 32,
        twilio_auth_token=SecretStr("f" * 32),
        public_url="https://sms.sirene.example.org",
    )
    assert settings.base_url == "https://sms.sirene.example.org"
    with pytest.raises(ValidationError, match="twilio_auth_token"):
        TwilioServiceSettings(
            environment="production",
            twilio_api_url="https://api.twilio.com",
            twilio_account_sid="AC" + "1" * 32,
            twilio_auth_token=SecretStr(""),
            public_url="https://sms.sirene.example.org",
        )
