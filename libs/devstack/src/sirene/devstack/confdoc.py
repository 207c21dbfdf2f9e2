"""`python -m sirene.devstack.confdoc [--check]` — writes `docs/configuration.md`, the
configuration reference of every service, from the services' settings classes (so it cannot
drift from the code: `make test` fails when the file is stale)."""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import types
from typing import Any, get_args, get_origin

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from .stack import ROOT, SERVICES

TARGET = ROOT / "docs" / "configuration.md"

HEADER = """# Configuration reference

Generated from the services' settings classes by `make config-docs`
(`python -m sirene.devstack.confdoc`); `make test` fails when it is stale. Do not edit by hand.

Every service reads its settings from the environment. Shared settings (infrastructure,
environment, logging) have the same name in every service; a service's own settings carry its
prefix. With `SIRENE_ENVIRONMENT=production` a service refuses to start while any setting still
has a development value (simulator URLs, placeholder secrets, development identities) and lists
every such problem at once. Secrets (marked 🔒) are never logged and belong in a secret store
(a Kubernetes Secret in `deploy/k8s/`, `.env` for `deploy/compose.yaml`).
"""


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (types.UnionType,) or str(origin) == "typing.Union":
        return " \\| ".join(_type_name(a) for a in get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "none"
    if str(annotation).startswith("typing.Literal") or get_origin(annotation) is not None:
        return str(annotation)
    return getattr(annotation, "__name__", str(annotation))


def _literal_or_type(field: FieldInfo) -> str:
    annotation = field.annotation
    if get_origin(annotation) is not None and str(get_origin(annotation)) == "typing.Literal":
        return " \\| ".join(f"`{a}`" for a in get_args(annotation))
    return _type_name(annotation).replace("SecretStr", "secret")


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "*required*"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr) or (
        isinstance(value, dict) and any(isinstance(v, SecretStr) for v in value.values())
    ):
        return "*development placeholder*"
    if value is None or value == {} or value == []:
        return "—"
    if value == "":
        return "*(empty)*"
    text = str(value.value if hasattr(value, "value") else value)
    # a default computed from where the code lives must not make the file checkout-specific
    text = text.replace(str(ROOT), "<checkout>")
    return f"`{text}`"


def _env_name(settings: type[BaseSettings], name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    if isinstance(alias, str):
        return alias
    prefix = str(settings.model_config.get("env_prefix", ""))
    return (prefix + name).upper()


def _description(settings: type[BaseSettings], name: str) -> str:
    """The field's description, or that of the class it overrides (a subclass that only
    changes a default, like a service's own port, keeps its base's meaning)."""
    for base in settings.__mro__:
        fields = getattr(base, "model_fields", {})
        if name in fields and fields[name].description:
            return str(fields[name].description).replace("|", "/")
    return ""


def _is_secret(field: FieldInfo) -> bool:
    return "SecretStr" in str(field.annotation)


def settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    """(service name, settings class) for every service of the local stack."""
    found: list[tuple[str, type[BaseSettings]]] = []
    for service in SERVICES:
        module = importlib.import_module(f"{service.module}.settings")
        classes = [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, BaseSettings) and cls.__module__ == module.__name__
        ]
        # the service's own class is the most derived one defined in its module
        leaf = [c for c in classes if not any(o is not c and issubclass(o, c) for o in classes)]
        found.extend((service.name, cls) for cls in leaf)
    return found


def render() -> str:
    lines = [HEADER]
    shared: dict[str, str] = {}
    sections: list[str] = []
    for service, cls in settings_classes():
        own: list[str] = []
        for name, field in cls.model_fields.items():
            if name == "service_name":
                continue  # a constant of each service, not configuration
            env = _env_name(cls, name, field)
            row = (
                f"| `{env}`{' 🔒' if _is_secret(field) else ''} | {_literal_or_type(field)} "
                f"| {_default(field)} | {_description(cls, name)} |"
            )
            prefix = str(cls.model_config.get("env_prefix", ""))
            if (prefix and env.startswith(prefix)) or service == "provider-sim":
                own.append(row)
            else:
                shared.setdefault(env, row)
        title = f"## {service}" + (
            " (development and tests only)" if service == "provider-sim" else ""
        )
        sections.append(
            "\n".join(
                [
                    title,
                    "",
                    f"Settings class `{cls.__module__}.{cls.__name__}`."
                    + (
                        ""
                        if service == "provider-sim"
                        else " The shared settings above apply as well."
                    ),
                    "",
                    "| Variable | Type | Default | Meaning |",
                    "|---|---|---|---|",
                    *own,
                    "",
                ]
            )
        )
    lines += [
        "## Shared by every service",
        "",
        "Defaults are those of the service base class; a service may set its own (its port, "
        "its database name).",
        "",
        "| Variable | Type | Default | Meaning |",
        "|---|---|---|---|",
        *shared.values(),
        "",
        *sections,
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not TARGET.is_file() or TARGET.read_text() != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run `make config-docs`", file=sys.stderr)  # noqa: T201
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
