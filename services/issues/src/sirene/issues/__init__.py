"""sirene-issues."""
