"""sirene-channel-sms."""
