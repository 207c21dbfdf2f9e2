"""sirene-channel-push."""
