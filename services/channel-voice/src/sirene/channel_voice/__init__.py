"""sirene-channel-voice."""
