"""`python -m sirene.channel_push`: runs the push worker."""

from __future__ import annotations

from sirene.runtime import serve

from .app import create_app
from .settings import ChannelPushSettings


def main() -> None:
    settings = ChannelPushSettings()
    serve(create_app(settings), settings, event_loop="uvloop")  # no MongoDB here


if __name__ == "__main__":
    main()
