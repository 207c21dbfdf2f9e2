"""`python -m sirene.channel_voice`: runs the voice worker."""

from __future__ import annotations

from sirene.runtime import serve

from .app import create_app
from .settings import ChannelVoiceSettings


def main() -> None:
    settings = ChannelVoiceSettings()
    serve(create_app(settings), settings, event_loop="uvloop")  # no MongoDB here


if __name__ == "__main__":
    main()
