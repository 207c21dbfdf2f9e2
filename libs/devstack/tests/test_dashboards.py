"""Dashboards as code: every panel query is valid PromQL (checked by promtool, offline), the
generated files are what the code says, and the alert rules pass `promtool check rules`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from sirene.devstack import dashboards
from sirene.devstack.stack import PROMETHEUS_RULES


def _promtool_check_rules(path: Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make install` installs it (Debian prometheus)"
    return subprocess.run(  # noqa: S603
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _as_recording_rules(exprs: list[str], path: Path) -> None:
    # JSON is YAML: promtool parses every expression of a recording rule
    rules = [{"record": f"sirene:panel_{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path.write_text(json.dumps({"groups": [{"name": "panels", "rules": rules}]}))


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    exprs = [dashboards.grafana_to_promql(expr) for _, _, expr in dashboards.queries()]
    assert len(exprs) >= 20
    _as_recording_rules(exprs, tmp_path / "panels.yml")
    result = _promtool_check_rules(tmp_path / "panels.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_promql_check_catches_a_broken_query(tmp_path: Path) -> None:
    _as_recording_rules(["sum by (channel) (rate(sirene_x_total[1m])"], tmp_path / "bad.yml")
    assert _promtool_check_rules(tmp_path / "bad.yml").returncode != 0


def test_alert_rules_pass_promtool() -> None:
    for path in sorted(PROMETHEUS_RULES.glob("*.yml")):
        result = _promtool_check_rules(path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_generated_dashboards_carry_every_panel_query() -> None:
    files = dashboards.render()
    in_json = {
        target["expr"]
        for name, text in files.items()
        if name.endswith(".json")
        for panel in json.loads(text)["panels"]
        for target in panel["targets"]
    }
    assert in_json == {expr for _, _, expr in dashboards.queries()}
    titles = {json.loads(t)["title"] for n, t in files.items() if n.endswith(".json")}
    assert {
        "Alert delivery",
        "Channels & providers",
        "Pipeline health",
        "Citizen reports",
    } <= titles
