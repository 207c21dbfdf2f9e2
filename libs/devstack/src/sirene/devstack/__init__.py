"""sirene-devstack."""
