"""`python -m sirene.channel_sms`: runs the SMS worker."""

from __future__ import annotations

from sirene.runtime import serve

from .app import create_app
from .settings import ChannelSmsSettings


def main() -> None:
    settings = ChannelSmsSettings()
    serve(create_app(settings), settings, event_loop="uvloop")  # no MongoDB here


if __name__ == "__main__":
    main()
