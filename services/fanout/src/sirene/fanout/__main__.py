"""`python -m sirene.fanout`: runs the fanout service."""

from __future__ import annotations

from sirene.runtime import serve

from .app import create_app
from .settings import FanoutSettings


def main() -> None:
    settings = FanoutSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
