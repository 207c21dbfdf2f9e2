"""What every `make bench-*` command shares: the machine description, the git revision and the
append to `bench/RESULTS.md` (one section with one JSON line per invocation)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"


def machine() -> str:
    """Host, cores, CPU model, memory, Python and the load when the benchmark started."""
    cpu = platform.processor() or platform.machine() or "unknown cpu"
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_gb = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return (
        f"{platform.node()}: {os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GB, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.1f} at start"
    )


def git_rev() -> str:
    """The checkout's short revision, or 'unknown'."""
    with contextlib.suppress(Exception):
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return "unknown"


def record(heading: str, result: dict[str, Any], note: str) -> None:
    """Appends `## <heading>`, the machine, `note` and the result's JSON line to RESULTS.md."""
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nAppended by `make bench-*`; newest last.\n")
    line = json.dumps(result, separators=(",", ":"))
    with RESULTS.open("a") as out:
        out.write(
            f"\n## {heading}\n\nMachine: {result['machine']}. {note}\n\n```json\n{line}\n```\n"
        )
