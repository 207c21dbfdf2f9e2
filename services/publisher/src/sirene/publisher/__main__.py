"""`python -m sirene.publisher`: serves the publisher API, consumers and outbox relay."""

from __future__ import annotations

from sirene.runtime import serve

from .app import create_app
from .settings import PublisherSettings


def main() -> None:
    """Reads settings from the environment and serves until stopped."""
    settings = PublisherSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
