"""Composition root: the HTTP app (``create_app``) and both servers (``ProviderSimulator``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Generator
from types import TracebackType

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sirene.provider_sim.api import fcm_router, sim_router, twilio_error_response, twilio_router
from sirene.provider_sim.apns import ApnsServer
from sirene.provider_sim.certs import CertPaths, ensure_certificates
from sirene.provider_sim.inbound import inbound_router
from sirene.provider_sim.service import SimulatorService, TwilioApiError
from sirene.provider_sim.settings import SimSettings
from sirene.provider_sim.smtp import SmtpSink

logger = logging.getLogger(__name__)


def create_app(settings: SimSettings, *, service: SimulatorService | None = None) -> FastAPI:
    """The HTTP API (Twilio subset, FCM subset, /sim/*, web page).

    Without ``service`` the app owns a new one and starts/stops it in its lifespan; with one,
    the caller (``ProviderSimulator``) does, because the APNs server shares it.
    """
    owns_service = service is None
    sim_service = service or SimulatorService(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if owns_service:
            await sim_service.start()
        try:
            yield
        finally:
            if owns_service:
                await sim_service.stop()

    app = FastAPI(
        title="Sirene provider simulator",
        description="Twilio/FCM-compatible test doubles; development and tests only.",
        lifespan=lifespan,
    )
    app.state.service = sim_service
    app.state.cert_paths = CertPaths.in_dir(settings.cert_dir)

    async def on_twilio_error(_: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, TwilioApiError):  # pragma: no cover - registered for this type
            raise exc
        return twilio_error_response(exc)

    app.add_exception_handler(TwilioApiError, on_twilio_error)
    app.include_router(twilio_router)
    if settings.fcm_enabled:
        app.include_router(fcm_router)
    app.include_router(sim_router)
    app.include_router(inbound_router)
    return app


class _Server(uvicorn.Server):
    """uvicorn without its signal handling when embedded (tests, other event loops)."""

    def __init__(self, config: uvicorn.Config, *, handle_signals: bool) -> None:
        super().__init__(config)
        self._handle_signals = handle_signals

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if self._handle_signals:
            with super().capture_signals():
                yield
        else:
            yield


class ProviderSimulator:
    """The HTTP server and the APNs HTTP/2 server on one event loop, sharing one state.

    ``async with ProviderSimulator(settings) as sim:`` starts both (ports 0 pick free ports,
    see ``http_port``/``apns_port``) and stops both on exit.
    """

    def __init__(self, settings: SimSettings, *, handle_signals: bool = False) -> None:
        self.settings = settings
        self.service = SimulatorService(settings)
        self.app = create_app(settings, service=self.service)
        self._handle_signals = handle_signals
        self._http: _Server | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._apns: ApnsServer | None = None
        self.cert_paths = CertPaths.in_dir(settings.cert_dir)
        self.http_port = settings.http_port
        self.apns_port = settings.apns_port
        self._smtp: SmtpSink | None = None
        self.smtp_port = settings.smtp_port

    @property
    def http_url(self) -> str:
        return f"http://{self.settings.host}:{self.http_port}"

    async def start(self) -> None:
        self.cert_paths = await asyncio.to_thread(ensure_certificates, self.settings.cert_dir)
        await self.service.start()

        self._apns = ApnsServer(service=self.service, settings=self.settings, paths=self.cert_paths)
        await self._apns.start()
        self.apns_port = self._apns.port

        self._smtp = SmtpSink(
            self.service.faults,
            self.service.mailboxes,
            host=self.settings.host,
            port=self.settings.smtp_port,
        )
        await self._smtp.start()
        self.smtp_port = self._smtp.port

        sock = socket.socket(socket.AF_INET6 if ":" in self.settings.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.settings.host, self.settings.http_port))
        self.http_port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="on",
            # Load tests send thousands of requests per second over few connections.
            backlog=2048,
            timeout_keep_alive=30,
            http="httptools",  # C parser: h11 cost more per request than the API's own work
        )
        self._http = _Server(config, handle_signals=self._handle_signals)
        self._http_task = asyncio.create_task(self._http.serve(sockets=[sock]))
        while not self._http.started:
            if self._http_task.done():
                await self._http_task  # re-raises the startup error
                raise RuntimeError("HTTP server stopped during startup")
            await asyncio.sleep(0.01)
        logger.info(
            "provider simulator: HTTP %s, APNs https://%s:%d, SMTP %d (CA %s)",
            self.http_url,
            self.settings.host,
            self.apns_port,
            self.smtp_port,
            self.cert_paths.ca,
        )

    async def wait(self) -> None:
        """Until the HTTP server stops (SIGINT/SIGTERM with ``handle_signals=True``)."""
        if self._http_task is not None:
            await self._http_task

    async def stop(self) -> None:
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._http_task
        if self._apns is not None:
            await self._apns.stop()
        if self._smtp is not None:
            await self._smtp.stop()
        await self.service.stop()

    async def __aenter__(self) -> ProviderSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
