"""sirene-schemas."""
