"""sirene-subscriptions."""
