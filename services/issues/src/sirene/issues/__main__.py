"""`python -m sirene.issues`: serves the issue report API."""

from __future__ import annotations

from sirene.runtime import serve

from .app import create_app
from .settings import IssuesSettings


def main() -> None:
    """Reads settings from the environment and serves until stopped."""
    settings = IssuesSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
