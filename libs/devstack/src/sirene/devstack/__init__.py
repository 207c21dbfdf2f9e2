"""sirene.devstack — the native local stack for development machines and CI without Docker.
Never used in production."""
