"""The browser-test tooling works: Debian Chromium, driven by Playwright, submits a real form to
a server on loopback and reads the server's answer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

FORM = b"""<!doctype html><html lang="de"><meta charset="utf-8"><title>Anmeldung</title>
<form method="post" action="/submit"><label for="n">Name</label><input id="n" name="name">
<button type="submit">Absenden</button></form></html>"""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._reply(FORM)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        name = parse_qs(body)["name"][0]
        self._reply(f"<!doctype html><p id=greeting>Hallo {name[::-1]}</p>".encode())

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def form_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_chromium_submits_a_form_and_reads_the_answer(page: Page, form_server: str) -> None:
    page.goto(form_server + "/")
    page.get_by_label("Name").fill("Erika")
    page.get_by_role("button", name="Absenden").click()
    # the server reverses the name: the text can only come from a real round trip
    assert page.locator("#greeting").inner_text() == "Hallo akirE"
