"""sirene-publisher."""
