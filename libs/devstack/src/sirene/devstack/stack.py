"""The native local stack: Kafka (KRaft), FerretDB (SQLite) and Redis as plain processes on
loopback, plus every Sirene service, for machines without a Docker engine.

Everything lives under `<repo>/.local/`: binaries and jars, data, logs (`logs/`), process ids
(`run/*.pid`). Processes are started in their own session and stopped by recorded pid."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path


def repo_root() -> Path:
    """The workspace root (the folder whose pyproject.toml declares the uv workspace)."""
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            marker = folder / "pyproject.toml"
            if marker.is_file() and "[tool.uv.workspace]" in marker.read_text():
                return folder
    raise RuntimeError("cannot find the Sirene workspace root")


ROOT = repo_root()
LOCAL = ROOT / ".local"
"""Downloads and builds (Kafka jars, FerretDB), shared by every stack instance."""


@dataclass(frozen=True)
class Layout:
    """One instance of the local stack: its folder (data, logs, pids) and its port offset.
    Every port stays below Linux's ephemeral range (32768–60999): a client connection could
    otherwise hold a port the stack is about to bind. Base ports differ modulo 100, so no
    offset (1000 for tests, 100·n for slots) makes two of them meet.

    `DEV` is what `make up` runs; `TEST` is what the tests start on demand, on other ports and
    with other data, so `make test` never disturbs (or is disturbed by) a running `make up`."""

    name: str
    home: Path
    offset: int

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def kafka_port(self) -> int:
        return 29092 + self.offset

    @property
    def kafka_controller_port(self) -> int:
        return 29093 + self.offset

    @property
    def mongo_port(self) -> int:
        return 27117 + self.offset

    @property
    def redis_port(self) -> int:
        return 26479 + self.offset

    @property
    def ferretdb_debug_port(self) -> int:
        return 28088 + self.offset

    @property
    def kafka_url(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mongodb_uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}/"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def infra_env(self) -> dict[str, str]:
        return {
            "SIRENE_KAFKA": self.kafka_url,
            "SIRENE_MONGODB_URI": self.mongodb_uri,
            "SIRENE_REDIS_URL": self.redis_url,
        }


def _slot(variable: str) -> int:
    raw = os.environ.get(variable, "0").strip() or "0"
    if not raw.isdigit() or not 0 <= int(raw) <= 9:
        raise ValueError(f"{variable} must be a number from 0 to 9, not {raw!r}")
    return int(raw)


DEV = Layout("dev", LOCAL, 100 * _slot("SIRENE_DEV_SLOT"))
"""`make up`. `SIRENE_DEV_SLOT=n` (1–9) moves its ports by 100·n, for a second checkout."""


def _test_layout() -> Layout:
    """The tests' instance. `SIRENE_TEST_SLOT=n` (1–9) gives a further instance with its own
    folder and ports (offset 1000 + 100·n), so several checkouts can run their tests at once."""
    slot = _slot("SIRENE_TEST_SLOT")
    home = LOCAL / ("test-stack" if slot == 0 else f"test-stack-{slot}")
    return Layout("test" if slot == 0 else f"test{slot}", home, 1000 + 100 * slot)


TEST = _test_layout()


class StackError(RuntimeError):
    """A part of the local stack could not be installed or started."""


@dataclass(frozen=True)
class Proc:
    """A process of the local stack: how to start it and how to tell it is ready."""

    name: str
    argv: list[str]
    port: int
    ready: Callable[[], bool]
    layout: Layout
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    start_timeout_s: float = 60.0
    prepare: Callable[[], None] | None = None
    """Runs right before the process is launched (config files, first-time formatting), so
    that merely describing a process — for `status` or `down` — changes nothing on disk."""

    @property
    def pidfile(self) -> Path:
        return self.layout.run / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.layout.logs / f"{self.name}.log"


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0); treat it as gone
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _alive_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def recorded_pid(proc: Proc) -> int | None:
    """The pid recorded for a process of ours that is still alive, if any (a pid the system
    has since given to another program does not count)."""
    pid = _alive_pid(proc.pidfile)
    if pid is None:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return pid  # no /proc (not Linux): trust the pid file
    # redis-server rewrites its title to "redis-server 127.0.0.1:<port>"; others keep argv
    ours = Path(proc.argv[0]).name in cmdline and (
        proc.argv[-1] in cmdline or f":{proc.port}" in cmdline
    )
    return pid if ours else None


def _spawn(proc: Proc) -> subprocess.Popen[bytes] | None:
    """Launches `proc` unless it already runs (then None)."""
    if recorded_pid(proc) is not None and proc.ready():
        return None
    if port_open(proc.port):
        raise StackError(
            f"port {proc.port} for {proc.name} is taken by a process this stack did not start "
            f"(see `ss -ltnp | grep {proc.port}`)"
        )
    proc.layout.logs.mkdir(parents=True, exist_ok=True)
    proc.layout.run.mkdir(parents=True, exist_ok=True)
    if proc.prepare is not None:
        proc.prepare()
    with proc.logfile.open("ab") as log:
        child = subprocess.Popen(  # noqa: S603 - argv built from our own constants
            proc.argv,
            cwd=proc.cwd,
            env={**os.environ, **proc.env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc.pidfile.write_text(str(child.pid))
    return child


def _await_ready(
    proc: Proc, child: subprocess.Popen[bytes], began: float, echo: Callable[[str], None]
) -> None:
    deadline = began + proc.start_timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise StackError(
                f"{proc.name} exited with {child.returncode} while starting; "
                f"last log lines:\n{_tail(proc.logfile)}"
            )
        if proc.ready():
            echo(f"  {proc.name:<14} ready on port {proc.port} ({time.monotonic() - began:.1f} s)")
            return
        time.sleep(0.2)
    stop(proc)
    raise StackError(
        f"{proc.name} not ready after {proc.start_timeout_s:.0f} s; last log lines:\n"
        f"{_tail(proc.logfile)}"
    )


def start(proc: Proc, *, echo: Callable[[str], None] = print) -> bool:
    """Starts `proc` unless it already runs; waits until it is ready. Returns True when this
    call started it."""
    began = time.monotonic()
    child = _spawn(proc)
    if child is None:
        echo(f"  {proc.name:<14} already running (port {proc.port})")
        return False
    _await_ready(proc, child, began, echo)
    return True


def start_together(procs: Iterable[Proc], *, echo: Callable[[str], None] = print) -> list[Proc]:
    """Launches every process at once, then waits for each to be ready (for processes that do
    not need each other to start, like the services). Returns those this call started; if one
    fails, the ones it started are stopped again."""
    began = time.monotonic()
    children: list[tuple[Proc, subprocess.Popen[bytes]]] = []
    try:
        for proc in procs:
            child = _spawn(proc)
            if child is None:
                echo(f"  {proc.name:<14} already running (port {proc.port})")
            else:
                children.append((proc, child))
        for proc, child in children:
            _await_ready(proc, child, began, echo)
    except BaseException:
        stop_all([proc for proc, _ in children], echo=None)
        raise
    return [proc for proc, _ in children]


def stop(proc: Proc, *, timeout_s: float = 20.0, echo: Callable[[str], None] | None = None) -> None:
    """Stops a process by its recorded pid: SIGTERM to its process group, SIGKILL after timeout."""
    pid = recorded_pid(proc)
    if pid is None:
        proc.pidfile.unlink(missing_ok=True)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.1)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    proc.pidfile.unlink(missing_ok=True)
    if echo:
        echo(f"  {proc.name:<14} stopped")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# --- infrastructure -------------------------------------------------------------------------


def _kafka_ready(layout: Layout) -> Callable[[], bool]:
    def ready() -> bool:
        if not port_open(layout.kafka_port):
            return False
        # the port opens before the broker has registered; a metadata round trip proves it
        code = (
            "import asyncio\n"
            "from aiokafka.admin import AIOKafkaAdminClient\n"
            "async def main():\n"
            f"    a = AIOKafkaAdminClient(bootstrap_servers='{layout.kafka_url}',"
            " request_timeout_ms=3000)\n"
            "    await a.start(); await a.list_topics(); await a.close()\n"
            "asyncio.run(main())\n"
        )
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-c", code], capture_output=True, timeout=20, check=False
        )
        return result.returncode == 0

    return ready


def _mongo_ready(layout: Layout) -> Callable[[], bool]:
    def ready() -> bool:
        if not port_open(layout.mongo_port):
            return False
        from pymongo import MongoClient

        client: MongoClient[dict[str, object]] = MongoClient(
            layout.mongodb_uri, serverSelectionTimeoutMS=1000
        )
        try:
            client.admin.command("ping")
            return True
        except Exception:
            return False
        finally:
            client.close()

    return ready


def _redis_ready(layout: Layout) -> Callable[[], bool]:
    def ready() -> bool:
        if not port_open(layout.redis_port):
            return False
        import redis

        try:
            return bool(redis.Redis.from_url(layout.redis_url, socket_timeout=1).ping())
        except Exception:
            return False

    return ready


def _cluster_id() -> str:
    """A random KRaft cluster id: 16 bytes, URL-safe base64. Like Kafka's own `Uuid`, never one
    that starts with '-' (a command line would read it as an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _kafka_proc(layout: Layout) -> Proc:
    libs = LOCAL / "kafka" / "libs"
    home = layout.home / "kafka"
    data, config = home / "data", home / "config" / "server.properties"
    java = shutil.which("java") or "java"
    classpath = f"{libs}/*"
    log4j = f"-Dlog4j2.configurationFile={ROOT / 'deploy/local/kafka/log4j2.properties'}"

    def prepare() -> None:
        if not (libs / ".complete").is_file():
            raise StackError("Kafka jars are missing: run `make install`")
        template = (ROOT / "deploy/local/kafka/server.properties").read_text()
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(
            template.replace("${kafka_port}", str(layout.kafka_port))
            .replace("${controller_port}", str(layout.kafka_controller_port))
            .replace("${data_dir}", str(data))
        )
        if not (data / "meta.properties").is_file():
            data.mkdir(parents=True, exist_ok=True)
            format_storage = [java, "-cp", classpath, log4j, "kafka.tools.StorageTool", "format"]
            subprocess.run(  # noqa: S603
                [*format_storage, f"--cluster-id={_cluster_id()}", "-c", str(config)],
                check=True,
                capture_output=True,
                timeout=120,
            )

    heap = os.environ.get("SIRENE_KAFKA_HEAP", "1g")
    jvm = ["-Xms256m", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true"]
    return Proc(
        "kafka",
        [
            java,
            *jvm,
            f"-Dkafka.logs.dir={layout.logs}",
            log4j,
            "-cp",
            classpath,
            "kafka.Kafka",
            str(config),
        ],
        layout.kafka_port,
        _kafka_ready(layout),
        layout,
        start_timeout_s=90,
        prepare=prepare,
    )


def _ferretdb_proc(layout: Layout) -> Proc:
    binary = LOCAL / "bin" / "ferretdb"
    data = layout.home / "ferretdb"

    def prepare() -> None:
        if not binary.is_file():
            raise StackError("FerretDB is missing: run `make install`")
        data.mkdir(parents=True, exist_ok=True)

    return Proc(
        "ferretdb",
        [
            str(binary),
            "--handler=sqlite",
            f"--sqlite-url=file:{data}/",
            f"--listen-addr=127.0.0.1:{layout.mongo_port}",
            f"--state-dir={data}",
            f"--debug-addr=127.0.0.1:{layout.ferretdb_debug_port}",
            "--telemetry=disable",
            "--log-level=error",
            "--log-format=text",
        ],
        layout.mongo_port,
        _mongo_ready(layout),
        layout,
        prepare=prepare,
    )


def _redis_proc(layout: Layout) -> Proc:
    binary = shutil.which("redis-server") or "redis-server"
    data = layout.home / "redis"

    def prepare() -> None:
        if shutil.which("redis-server") is None:
            raise StackError(
                "redis-server is missing: run `make install` (deploy/local/install.sh)"
            )
        data.mkdir(parents=True, exist_ok=True)

    return Proc(
        "redis",
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(layout.redis_port),
            "--dir",
            str(data),
            "--save",
            "60 1000",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ],
        layout.redis_port,
        _redis_ready(layout),
        layout,
        prepare=prepare,
    )


def running(layout: Layout, names: Iterable[str]) -> bool:
    """Whether any of the named processes of a stack instance is alive (by recorded pid)."""
    return any(_alive_pid(layout.run / f"{name}.pid") is not None for name in names)


def wipe_data(layout: Layout) -> None:
    """Deletes the data of a stopped stack instance (Kafka log, FerretDB files, Redis dump)."""
    for folder in (layout.home / "kafka" / "data", layout.home / "ferretdb", layout.home / "redis"):
        shutil.rmtree(folder, ignore_errors=True)


def infra_procs(layout: Layout = DEV) -> list[Proc]:
    """Kafka, FerretDB and Redis of a stack instance."""
    return [_kafka_proc(layout), _ferretdb_proc(layout), _redis_proc(layout)]


# --- services ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """A Sirene service: its package, its port in the DEV layout, its settings prefix."""

    name: str
    module: str
    port: int
    prefix: str | None = None

    @property
    def env_prefix(self) -> str:
        """Prefix of the service's own settings, e.g. `SIRENE_CHANNEL_SMS_`."""
        return self.prefix or "SIRENE_" + self.name.upper().replace("-", "_") + "_"

    def url(self, layout: Layout = DEV) -> str:
        return f"http://127.0.0.1:{self.port + layout.offset}"


SIM = Service("provider-sim", "sirene.provider_sim", 8010, prefix="SIRENE_SIM_")
SERVICES = [
    SIM,
    Service("subscriptions", "sirene.subscriptions", 8002),
    Service("fanout", "sirene.fanout", 8003),
    Service("channel-sms", "sirene.channel_sms", 8004),
    Service("channel-voice", "sirene.channel_voice", 8005),
    Service("channel-push", "sirene.channel_push", 8006),
    Service("channel-email", "sirene.channel_email", 8009),
    Service("publisher", "sirene.publisher", 8001),
    Service("issues", "sirene.issues", 8007),
]
APNS_SIM_PORT = 8443
SMTP_SIM_PORT = 2525


def service(name: str) -> Service:
    """The service called `name`."""
    return next(s for s in SERVICES if s.name == name)


def _http_ready(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        import httpx

        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def wiring_env(layout: Layout) -> dict[str, str]:
    """How the services of one stack instance find each other and the simulators."""
    sim_url = SIM.url(layout)
    apns_port = str(APNS_SIM_PORT + layout.offset)
    return {
        "SIRENE_SIM_APNS_PORT": apns_port,
        "SIRENE_SIM_CERT_DIR": str(LOCAL / "sim-certs"),
        "SIRENE_CHANNEL_SMS_TWILIO_API_URL": sim_url,
        "SIRENE_CHANNEL_VOICE_TWILIO_API_URL": sim_url,
        "SIRENE_SUBSCRIPTIONS_TWILIO_API_URL": sim_url,
        # the platform number's messaging webhook: SMS from simulated phones reach channel-sms
        "SIRENE_SIM_SMS_INBOUND_URL": service("channel-sms").url(layout) + "/twilio/sms/inbound",
        "SIRENE_CHANNEL_PUSH_APNS_PORT": apns_port,
        "SIRENE_CHANNEL_PUSH_APNS_CERT_DIR": str(LOCAL / "sim-certs"),
        "SIRENE_CHANNEL_PUSH_FCM_API_URL": sim_url,
        "SIRENE_SIM_SMTP_PORT": str(SMTP_SIM_PORT + layout.offset),
        "SIRENE_CHANNEL_EMAIL_SMTP_PORT": str(SMTP_SIM_PORT + layout.offset),
        "SIRENE_SUBSCRIPTIONS_SMTP_PORT": str(SMTP_SIM_PORT + layout.offset),
        "SIRENE_PUBLISHER_FANOUT_URL": service("fanout").url(layout),
        **{f"{s.env_prefix}HTTP_PORT": str(s.port + layout.offset) for s in SERVICES},
    }


def service_proc(
    service: Service, layout: Layout = DEV, extra_env: dict[str, str] | None = None
) -> Proc:
    """How to run a service in a stack instance (infrastructure from `extra_env` or the
    instance's own)."""
    probe = "/healthz" if service is SIM else "/readyz"
    env = {
        **layout.infra_env,
        "SIRENE_ENVIRONMENT": "development",
        **wiring_env(layout),
        **(extra_env or {}),
    }
    return Proc(
        service.name,
        [sys.executable, "-m", service.module],
        service.port + layout.offset,
        _http_ready(service.url(layout) + probe),
        layout,
        env=env,
        start_timeout_s=60,
    )


def start_all(procs: Iterable[Proc], *, echo: Callable[[str], None] = print) -> list[Proc]:
    """Starts each process in order; returns those this call started."""
    return [p for p in procs if start(p, echo=echo)]


def stop_all(procs: Iterable[Proc], *, echo: Callable[[str], None] | None = print) -> None:
    """Stops processes in reverse order."""
    for proc in reversed(list(procs)):
        stop(proc, echo=echo)


# --- operations: Prometheus -------------------------------------------------------------------

PROMETHEUS_PORT = 9090
"""Below the ephemeral port range (32768–60999), so no client connection can hold it."""
PROMETHEUS_RULES = ROOT / "deploy" / "prometheus" / "rules"


def prometheus_url(layout: Layout = DEV) -> str:
    return f"http://127.0.0.1:{PROMETHEUS_PORT + layout.offset}"


def prometheus_config(layout: Layout, *, scrape_interval_s: int = 5) -> str:
    """Prometheus configuration for a stack instance: every service's `/metrics` (job = the
    service's name, as in `deploy/prometheus/prometheus.yml`) and the project's alert rules.
    Written as JSON, which is YAML too."""
    import json

    config = {
        "global": {
            "scrape_interval": f"{scrape_interval_s}s",
            "evaluation_interval": f"{scrape_interval_s}s",
            "external_labels": {"stack": layout.name},
        },
        "rule_files": [str(PROMETHEUS_RULES / "*.yml")],
        "scrape_configs": [
            {
                "job_name": s.name,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [f"127.0.0.1:{s.port + layout.offset}"]}],
            }
            for s in SERVICES
        ],
    }
    return json.dumps(config, indent=2)


def prometheus_proc(layout: Layout = DEV, *, scrape_interval_s: int = 5) -> Proc:
    """Prometheus (Debian package) scraping the services of a stack instance."""
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    home = layout.home / "prometheus"
    config = home / "prometheus.yml"
    port = PROMETHEUS_PORT + layout.offset

    def prepare() -> None:
        if shutil.which("prometheus") is None:
            raise StackError("prometheus is missing: run `make install` (deploy/local/install.sh)")
        (home / "data").mkdir(parents=True, exist_ok=True)
        config.write_text(prometheus_config(layout, scrape_interval_s=scrape_interval_s))

    return Proc(
        "prometheus",
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={home / 'data'}",
            "--storage.tsdb.retention.time=2d",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ],
        port,
        _http_ready(f"{prometheus_url(layout)}/-/ready"),
        layout,
        prepare=prepare,
    )
