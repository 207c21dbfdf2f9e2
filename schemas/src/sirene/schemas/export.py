"""Exports JSON Schema for every topic into a folder, or checks that the folder is current.

python -m sirene.schemas.export schemas/json          # write
python -m sirene.schemas.export schemas/json --check  # exit 1 when stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .topics import TOPICS


def render() -> dict[str, str]:
    """File name → JSON text for every model and the topic registry."""
    files: dict[str, str] = {}
    registry: list[dict[str, Any]] = []
    for spec in TOPICS.values():
        schema_file = f"{spec.model.__name__}.schema.json"
        files[schema_file] = _dump(spec.model.model_json_schema(mode="validation"))
        registry.append(
            {
                "name": spec.name,
                "key": spec.key,
                "schema": schema_file,
                "producers": list(spec.producers),
                "consumers": list(spec.consumers),
                "partitions": spec.partitions,
                "compacted": spec.compacted,
                "config": spec.config,
                "description": spec.description,
            }
        )
    files["topics.json"] = _dump(registry)
    return files


def _dump(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write or check the export; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--check", action="store_true", help="fail when the folder is stale")
    args = parser.parse_args(argv)
    folder: Path = args.folder
    files = render()
    if args.check:
        existing = {p.name for p in folder.glob("*.json")} if folder.is_dir() else set()
        stale = sorted(
            name
            for name, text in files.items()
            if not (folder / name).is_file() or (folder / name).read_text() != text
        )
        extra = sorted(existing - files.keys())
        if stale or extra:
            sys.stderr.write(
                f"schemas/json is stale (changed: {stale}, obsolete: {extra}); "
                "run `make schemas` and commit the result\n"
            )
            return 1
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    for stale_file in folder.glob("*.json"):
        if stale_file.name not in files:
            stale_file.unlink()
    for name, text in files.items():
        (folder / name).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
