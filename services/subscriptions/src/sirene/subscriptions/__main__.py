"""`python -m sirene.subscriptions`: serves the subscriptions API and consumers."""

from __future__ import annotations

from sirene.runtime import serve

from .app import create_app
from .settings import SubscriptionsSettings


def main() -> None:
    """Reads settings from the environment and serves until stopped."""
    settings = SubscriptionsSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
