"""sirene-channel-email."""
