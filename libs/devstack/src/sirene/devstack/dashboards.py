"""`python -m sirene.devstack.dashboards [--check]` — Grafana dashboards as code.

The panels below are the single source: this writes them as provisioned dashboards into
`deploy/grafana/dashboards/*.json` (with the provisioning files next to them), `make test`
fails when those files are stale, and the observability test evaluates every panel query
(`queries()`) against a real Prometheus scraping the running platform.

Queries use two Grafana placeholders, which the test replaces the way Grafana would:
`$__rate_interval` (a rate window) and `$channel` (the channel variable, a regex)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .stack import ROOT

TARGET = ROOT / "deploy" / "grafana"
DATASOURCE = {"type": "prometheus", "uid": "sirene-prometheus"}
CHANNELS = ["sms", "voice", "push", "email"]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: list[Query]
    kind: str = "timeseries"  # timeseries | stat | table | bargauge
    unit: str = "short"
    width: int = 12
    height: int = 8


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: list[Panel]
    channel_variable: bool = False
    tags: list[str] = field(default_factory=lambda: ["sirene"])


def _q(expr: str, legend: str = "") -> Query:
    return Query(" ".join(expr.split()), legend)


RATE = "$__rate_interval"

ALERT_DELIVERY = Dashboard(
    "sirene-alert-delivery",
    "Alert delivery",
    "Is the warning going out? Alerts released, tasks fanned out, hand-offs and receipts per "
    "channel, and how long from publication to the provider.",
    [
        Panel(
            "Alerts released (1 h)",
            "Alerts and posts released by staff in the last hour, by lane.",
            [
                _q(
                    "sum by (lane) (increase(sirene_publisher_alerts_published_total[1h]))",
                    "{{lane}}",
                )
            ],
            kind="stat",
            width=6,
        ),
        Panel(
            "Tasks fanned out (1 h)",
            "Delivery tasks the fanout produced in the last hour, by channel.",
            [_q("sum by (channel) (increase(sirene_fanout_tasks_total[1h]))", "{{channel}}")],
            kind="stat",
            width=6,
        ),
        Panel(
            "Reach (1 h): handed to the provider",
            "Tasks the channel workers handed to a provider in the last hour, by channel.",
            [
                _q(
                    "sum by (channel) (increase(sirene_delivery_handoffs_total"
                    '{channel=~"$channel", error_class=""}[1h]))',
                    "{{channel}}",
                )
            ],
            kind="stat",
            width=6,
        ),
        Panel(
            "Failed (1 h)",
            "Receipts of failed, undelivered or expired deliveries in the last hour, by channel.",
            [
                _q(
                    'sum by (channel) (increase(sirene_delivery_receipts_total{channel=~"$channel",'
                    ' status=~"failed|undelivered|expired"}[1h]))',
                    "{{channel}}",
                )
            ],
            kind="stat",
            width=6,
        ),
        Panel(
            "Tasks fanned out per second",
            "Rate at which the fanout produces delivery tasks, by channel and lane.",
            [
                _q(
                    f"sum by (channel, lane) (rate(sirene_fanout_tasks_total[{RATE}]))",
                    "{{channel}} {{lane}}",
                )
            ],
            unit="ops",
        ),
        Panel(
            "Hand-offs per second",
            "Tasks handed to providers per second, by channel and resulting status.",
            [
                _q(
                    "sum by (channel, status) (rate(sirene_delivery_handoffs_total"
                    f'{{channel=~"$channel"}}[{RATE}]))',
                    "{{channel}} {{status}}",
                )
            ],
            unit="ops",
        ),
        Panel(
            "Receipts by status",
            "Receipts per second (hand-offs and provider callbacks: sent, delivered, confirmed, "
            "failed …), by channel and status.",
            [
                _q(
                    "sum by (channel, status) (rate(sirene_delivery_receipts_total"
                    f'{{channel=~"$channel"}}[{RATE}]))',
                    "{{channel}} {{status}}",
                )
            ],
            unit="ops",
        ),
        Panel(
            "Publication → hand-off latency (p50 / p90 / p99)",
            "Time from the alert's publication to the provider accepting the task. Target: "
            "99 % within 10 s.",
            [
                _q(
                    f"histogram_quantile({q}, sum by (le, channel) "
                    "(rate(sirene_publish_to_handoff_seconds_bucket"
                    f'{{channel=~"$channel"}}[{RATE}])))',
                    f"{{{{channel}}}} p{int(q * 100)}",
                )
                for q in (0.5, 0.9, 0.99)
            ],
            unit="s",
        ),
        Panel(
            "Publication → delivered (p50 / p90 / p99)",
            "Time from the alert's publication to the provider confirming delivery (SMS "
            "delivery report, answered call, push/e-mail accepted), by channel.",
            [
                _q(
                    f"histogram_quantile({q}, sum by (le, channel) "
                    "(rate(sirene_publish_to_delivered_seconds_bucket"
                    f'{{channel=~"$channel"}}[{RATE}])))',
                    f"{{{{channel}}}} p{int(q * 100)}",
                )
                for q in (0.5, 0.9, 0.99)
            ],
            unit="s",
        ),
        Panel(
            "Fanout: publication → last task (p99)",
            "Time for the fanout to expand one alert into all of its tasks, by lane.",
            [
                _q(
                    "histogram_quantile(0.99, sum by (le, lane) "
                    f"(rate(sirene_fanout_expansion_seconds_bucket[{RATE}])))",
                    "{{lane}}",
                )
            ],
            unit="s",
        ),
        Panel(
            "Release → Kafka (outbox relay, p99)",
            "Time from staff releasing an alert to its alert.published event being acknowledged "
            "by Kafka.",
            [
                _q(
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate(sirene_publisher_alert_relay_lag_seconds_bucket[{RATE}])))",
                    "p99",
                )
            ],
            unit="s",
        ),
    ],
    channel_variable=True,
)

CHANNELS_AND_PROVIDERS = Dashboard(
    "sirene-channels-providers",
    "Channels & providers",
    "How each provider answers: request latency, errors by class, skipped tasks.",
    [
        Panel(
            "Provider request latency (p95)",
            "Duration of one provider hand-off request, by channel and outcome.",
            [
                _q(
                    "histogram_quantile(0.95, sum by (le, channel, outcome) "
                    f'(rate(sirene_provider_request_seconds_bucket{{channel=~"$channel"}}[{RATE}])))',
                    "{{channel}} {{outcome}}",
                )
            ],
            unit="s",
        ),
        Panel(
            "Provider requests per second",
            "Provider requests per second by channel and outcome ('ok' or 'error').",
            [
                _q(
                    "sum by (channel, outcome) (rate(sirene_provider_request_seconds_count"
                    f'{{channel=~"$channel"}}[{RATE}]))',
                    "{{channel}} {{outcome}}",
                )
            ],
            unit="ops",
        ),
        Panel(
            "Hand-off errors by class",
            "Failed hand-offs per second by channel and error class (transient ones are "
            "retried, permanent ones are not, contact_dead deactivates the contact).",
            [
                _q(
                    "sum by (channel, error_class) (rate(sirene_delivery_handoffs_total"
                    f'{{channel=~"$channel", error_class!=""}}[{RATE}]))',
                    "{{channel}} {{error_class}}",
                )
            ],
            unit="ops",
        ),
        Panel(
            "Tasks not handed off",
            "Tasks skipped by the workers, by reason: 'duplicate' (already handed off) or "
            "'expired' (the warning's validity ended).",
            [
                _q(
                    "sum by (channel, reason) (increase(sirene_delivery_tasks_skipped_total"
                    '{channel=~"$channel"}[1h]))',
                    "{{channel}} {{reason}}",
                )
            ],
        ),
        Panel(
            "Circuit breakers",
            "State of each provider's circuit breaker: 0 closed (normal), 1 half-open "
            "(probing), 2 open (provider failing; tasks wait on a retry tier).",
            [
                _q(
                    "max by (channel, provider) "
                    '(sirene_provider_circuit_state{channel=~"$channel"})',
                    "{{channel}} {{provider}}",
                )
            ],
            kind="stat",
        ),
        Panel(
            "Rate-limit waits (p95)",
            "How long hand-offs wait for a token of the provider account's rate limit, by bucket.",
            [
                _q(
                    "histogram_quantile(0.95, sum by (le, bucket) "
                    f"(rate(sirene_rate_limit_wait_seconds_bucket[{RATE}])))",
                    "{{bucket}}",
                )
            ],
            unit="s",
        ),
        Panel(
            "Fallbacks (1 h)",
            "Tasks re-routed to another channel (e.g. push token gone → SMS).",
            [
                _q(
                    "sum by (from_channel, to_channel) "
                    "(increase(sirene_delivery_fallbacks_total[1h]))",
                    "{{from_channel}} → {{to_channel}}",
                )
            ],
            kind="bargauge",
        ),
    ],
    channel_variable=True,
)

PIPELINE_HEALTH = Dashboard(
    "sirene-pipeline-health",
    "Pipeline health",
    "Are the services up and keeping up? Scrape status, consumer lag, handler errors and "
    "dead letters.",
    [
        Panel(
            "Services up",
            "1 when Prometheus can scrape the service, 0 when not.",
            [_q("up", "{{job}}")],
            kind="stat",
            width=24,
            height=5,
        ),
        Panel(
            "Consumer lag by group",
            "Records waiting in each consumer group (end offset minus committed offset, summed "
            "over instances). Growing lag means a service cannot keep up.",
            [_q("sum by (group) (sirene_kafka_consumer_lag)", "{{group}}")],
        ),
        Panel(
            "Messages processed by handler",
            "Kafka messages processed per second by service and handler, by result "
            "(acked, nacked, rejected, error).",
            [
                _q(
                    "sum by (app_name, handler, status) "
                    f"(rate(faststream_received_processed_messages_total[{RATE}]))",
                    "{{app_name}} {{handler}} {{status}}",
                )
            ],
            unit="ops",
        ),
        Panel(
            "Handler processing time (p99)",
            "Time to process one message or batch, by service and handler.",
            [
                _q(
                    "histogram_quantile(0.99, sum by (le, app_name, handler) "
                    f"(rate(faststream_received_processed_messages_duration_seconds_bucket[{RATE}])))",
                    "{{app_name}} {{handler}}",
                )
            ],
            unit="s",
        ),
        Panel(
            "Dead letters (1 h)",
            "Messages parked on the dead-letter topic in the last hour (each with its reason), "
            "by consuming service and source topic.",
            [
                _q(
                    "sum by (service, topic) (increase(sirene_dead_letters_total[1h]))",
                    "{{service}} {{topic}}",
                )
            ],
            kind="bargauge",
        ),
        Panel(
            "Retries by tier",
            "Tasks parked on a retry tier per second, by channel, tier and reason.",
            [
                _q(
                    f"sum by (channel, tier, reason) (rate(sirene_delivery_retries_total[{RATE}]))",
                    "{{channel}} {{tier}} {{reason}}",
                )
            ],
            unit="ops",
        ),
        Panel(
            "Deliveries given up (1 h)",
            "Tasks dead-lettered by the channel workers in the last hour, by reason class "
            "(permanent error, dead contact, attempts exhausted, expired before a retry).",
            [
                _q(
                    "sum by (channel, reason) (increase(sirene_delivery_dead_lettered_total[1h]))",
                    "{{channel}} {{reason}}",
                )
            ],
            kind="bargauge",
        ),
        Panel(
            "Audience index updates",
            "Citizen profile records applied to the fanout's audience index per second.",
            [
                _q(
                    f"sum by (outcome) (rate(sirene_fanout_profiles_total[{RATE}]))",
                    "{{outcome}}",
                )
            ],
            unit="ops",
        ),
    ],
)

CITIZEN_REPORTS = Dashboard(
    "sirene-citizen-reports",
    "Citizen reports",
    "Reports of problems in public space: where they stand, what is overdue, what comes in "
    "and whether reporters are informed.",
    [
        Panel(
            "Open reports",
            "Reports received or in progress, by tenant.",
            [
                _q(
                    "sum by (tenant) (max by (tenant, status) "
                    '(sirene_issues_reports{status=~"received|in_progress"}))',
                    "{{tenant}}",
                )
            ],
            kind="stat",
            width=8,
        ),
        Panel(
            "Overdue",
            "Open reports past their category's promised handling time (SLA), by tenant.",
            [_q("max by (tenant) (sirene_issues_reports_overdue)", "{{tenant}}")],
            kind="stat",
            width=8,
        ),
        Panel(
            "Received (24 h)",
            "Reports received in the last 24 hours, by way in (portal, Open311, staff).",
            [
                _q(
                    "sum by (via) (increase(sirene_issues_reports_received_total[24h]))",
                    "{{via}}",
                )
            ],
            kind="stat",
            width=8,
        ),
        Panel(
            "Reports by status",
            "Reports per status over time (received, in progress, resolved, rejected, "
            "duplicate), all tenants.",
            [_q("sum by (status) (max by (tenant, status) (sirene_issues_reports))", "{{status}}")],
        ),
        Panel(
            "Status changes per hour",
            "Status changes by staff, by new status.",
            [
                _q(
                    "sum by (status) (increase(sirene_issues_status_changes_total[1h]))",
                    "{{status}}",
                )
            ],
        ),
        Panel(
            "Reporter notifications: change → Kafka (p95)",
            "Time from a status change to the reporter's notification being handed to the "
            "delivery pipeline.",
            [
                _q(
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate(sirene_issues_notification_lag_seconds_bucket[{RATE}])))",
                    "p95",
                )
            ],
            unit="s",
        ),
        Panel(
            "Refused requests (1 h)",
            "Requests refused by the issues service, by reason (bad input, rate limits, "
            "outside the municipality …).",
            [_q("sum by (reason) (increase(sirene_issues_rejected_total[1h]))", "{{reason}}")],
            kind="bargauge",
        ),
    ],
)

DASHBOARDS = [ALERT_DELIVERY, CHANNELS_AND_PROVIDERS, PIPELINE_HEALTH, CITIZEN_REPORTS]


def queries() -> Iterator[tuple[str, str, str]]:
    """(dashboard title, panel title, PromQL) of every panel query."""
    for dashboard in DASHBOARDS:
        for panel in dashboard.panels:
            for query in panel.queries:
                yield dashboard.title, panel.title, query.expr


def grafana_to_promql(expr: str, *, rate_interval: str = "1m") -> str:
    """A panel query as Grafana sends it with every channel selected."""
    return expr.replace("$__rate_interval", rate_interval).replace("$channel", ".*")


def _grid(panels: list[Panel]) -> Iterator[dict[str, int]]:
    x = y = row_height = 0
    for panel in panels:
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        yield {"x": x, "y": y, "w": panel.width, "h": panel.height}
        x += panel.width
        row_height = max(row_height, panel.height)


def _panel_json(number: int, panel: Panel, grid: dict[str, int]) -> dict[str, Any]:
    return {
        "id": number,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": query.expr,
                "legendFormat": query.legend,
            }
            for i, query in enumerate(panel.queries)
        ],
    }


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    variables = []
    if dashboard.channel_variable:
        variables.append(
            {
                "name": "channel",
                "label": "Kanal",
                "type": "custom",
                "query": ",".join(CHANNELS),
                "multi": True,
                "includeAll": True,
                "allValue": ".*",
                "current": {"text": "All", "value": "$__all"},
                "options": [],
            }
        )
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": dashboard.tags,
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "5s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": variables},
        "panels": [
            _panel_json(n, panel, grid)
            for n, (panel, grid) in enumerate(
                zip(dashboard.panels, _grid(dashboard.panels), strict=True), start=1
            )
        ],
    }


DATASOURCES_YAML = """# Grafana provisioning: compose's Prometheus (generated by make dashboards)
apiVersion: 1
datasources:
  - name: Prometheus
    uid: sirene-prometheus
    type: prometheus
    access: proxy
    url: http://prometheus:9090
    isDefault: true
    jsonData:
      timeInterval: 10s
"""

PROVIDER_YAML = """# Grafana provisioning: Sirene's dashboards (generated by make dashboards)
apiVersion: 1
providers:
  - name: sirene
    folder: Sirene
    type: file
    disableDeletion: true
    allowUiUpdates: false
    options:
      path: /etc/grafana/provisioning/dashboards/json
"""


def render() -> dict[str, str]:
    """Relative path under deploy/grafana → content."""
    files = {
        "datasources/prometheus.yaml": DATASOURCES_YAML,
        "dashboards/sirene.yaml": PROVIDER_YAML,
    }
    for dashboard in DASHBOARDS:
        text = json.dumps(dashboard_json(dashboard), indent=2, ensure_ascii=False) + "\n"
        files[f"dashboards/json/{dashboard.uid}.json"] = text
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when the files are stale")
    args = parser.parse_args(argv)
    files = render()
    on_disk = {
        str(p.relative_to(TARGET)): p.read_text()
        for p in TARGET.rglob("*")
        if p.is_file() and p.suffix in (".json", ".yaml")
    }
    if args.check:
        if on_disk != files:
            print("deploy/grafana/ is stale: run `make dashboards`", file=sys.stderr)  # noqa: T201
            return 1
        print(f"deploy/grafana: {len(DASHBOARDS)} dashboards, current")  # noqa: T201
        return 0
    for stale in set(on_disk) - set(files):
        (TARGET / stale).unlink()
    for name, text in files.items():
        (TARGET / name).parent.mkdir(parents=True, exist_ok=True)
        (TARGET / name).write_text(text)
    print(f"wrote {len(files)} files under deploy/grafana/")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
