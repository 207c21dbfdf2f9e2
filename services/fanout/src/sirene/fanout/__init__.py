"""sirene-fanout."""
