"""sirene-provider-sim."""
