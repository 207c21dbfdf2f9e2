"""`python -m sirene.channel_email`: runs the e-mail worker."""

from __future__ import annotations

from sirene.runtime import serve

from .app import create_app
from .settings import ChannelEmailSettings


def main() -> None:
    settings = ChannelEmailSettings()
    serve(create_app(settings), settings, event_loop="uvloop")  # no MongoDB here


if __name__ == "__main__":
    main()
