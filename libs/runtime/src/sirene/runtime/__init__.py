"""sirene-runtime."""
