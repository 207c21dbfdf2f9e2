"""The per-alert delivery report: cumulative reach per channel over time since publication,
expected vs reached per channel and failures by channel and reason, as data for the console
page (with a server-side SVG chart) and as CSV.

The alert's delivery documents are streamed from a cursor and folded into time buckets whose
width follows the delivery span (1 s … 1 h, at most about `MAX_BUCKETS` buckets), so memory is
bounded by buckets and failure reasons, never by the number of tasks."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import AsyncIterable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sirene.runtime import Document
from sirene.schemas import RECEIPT_RANK, Channel, ReceiptStatus

from .repository import Repository
from .service import DELIVERED_RANK, FINAL_RANK, STATUS_OF_CODE, get_alert

BUCKET_WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
"""Possible bucket widths in seconds; the smallest that keeps the span within MAX_BUCKETS."""
MAX_BUCKETS = 120


def bucket_width(span_s: float) -> int:
    """The bucket width (seconds) for deliveries spread over `span_s` seconds."""
    for width in BUCKET_WIDTHS:
        if math.ceil(max(span_s, 0.0) / width) <= MAX_BUCKETS:
            return width
    return BUCKET_WIDTHS[-1]


@dataclass(frozen=True)
class FailureRow:
    channel: str
    status: str
    error_class: str
    error_code: str
    tasks: int


@dataclass(frozen=True)
class ChannelReport:
    channel: str
    expected: int | None
    tasks: int
    reached: int
    failed: int
    cumulative: list[int]
    """Reached tasks at the end of each bucket (same length as `DeliveryReport.offsets`)."""

    @property
    def percent(self) -> int | None:
        if not self.expected:
            return None
        return int(self.reached * 100 / self.expected)


@dataclass(frozen=True)
class DeliveryReport:
    alert_id: str
    published_at: datetime | None
    width_s: int
    offsets: list[int]
    """Seconds since publication at the end of each bucket."""
    channels: list[ChannelReport]
    failures: list[FailureRow]


@dataclass
class ReportBuilder:
    """Folds delivery documents one at a time into buckets (see module docstring)."""

    published_at: datetime | None
    width_s: int
    reached: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(dict))
    tasks: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    reached_total: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failed_total: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failures: dict[tuple[str, str, str, str], int] = field(default_factory=lambda: defaultdict(int))

    def add(self, doc: Document) -> None:
        channel = str(doc.get("channel"))
        status = STATUS_OF_CODE.get(int(doc.get("code", -1)))
        if status is None or channel not in Channel._value2member_map_:
            return
        self.tasks[channel] += 1
        rank = RECEIPT_RANK[status]
        if rank >= DELIVERED_RANK:
            self.reached_total[channel] += 1
            at: datetime | None = doc.get("reached_at") or doc.get("last_receipt_at")
            if at is not None and self.published_at is not None:
                offset = (at - self.published_at).total_seconds()
                index = max(0, int(offset // self.width_s))
                buckets = self.reached[channel]
                buckets[index] = buckets.get(index, 0) + 1
        elif rank == FINAL_RANK:
            self.failed_total[channel] += 1
            self.failures[(channel, *_reason(doc.get("failure"), status))] += 1

    def build(self, alert_id: str, expected: Mapping[str, int] | None) -> DeliveryReport:
        last = max((max(b) for b in self.reached.values() if b), default=-1)
        offsets = [(i + 1) * self.width_s for i in range(last + 1)]
        channels = []
        order = [c.value for c in Channel]
        for channel in sorted({*self.tasks, *(expected or {})}, key=order.index):
            buckets = self.reached.get(channel, {})
            running, cumulative = 0, []
            for i in range(last + 1):
                running += buckets.get(i, 0)
                cumulative.append(running)
            channels.append(
                ChannelReport(
                    channel=channel,
                    expected=(expected or {}).get(channel, 0) if expected is not None else None,
                    tasks=self.tasks.get(channel, 0),
                    reached=self.reached_total.get(channel, 0),
                    failed=self.failed_total.get(channel, 0),
                    cumulative=cumulative,
                )
            )
        failures = [
            FailureRow(channel, status, error_class, error_code, n)
            for (channel, status, error_class, error_code), n in sorted(
                self.failures.items(), key=lambda item: (order.index(item[0][0]), -item[1])
            )
        ]
        return DeliveryReport(
            alert_id=alert_id,
            published_at=self.published_at,
            width_s=self.width_s,
            offsets=offsets,
            channels=channels,
            failures=failures,
        )


def _reason(failure: object, status: ReceiptStatus) -> tuple[str, str, str]:
    """(status, error class, provider code) from a stored `failure` (see
    `service.failure_reason`), or just the final status when no reason was recorded."""
    if isinstance(failure, str) and failure.count("|") == 3:
        _, stored_status, error_class, error_code = failure.split("|")
        return stored_status, error_class, error_code
    return status.value, "", ""


async def build_report(
    alert: Document, rows: AsyncIterable[Document], *, now: datetime
) -> DeliveryReport:
    """The report of a stored alert from its streamed delivery documents."""
    published: datetime | None = alert.get("published_at")
    progress: Document = alert.get("progress") or {}
    end: datetime = progress.get("last_delivery_at") or now
    span = (end - published).total_seconds() if published is not None else 0.0
    builder = ReportBuilder(published_at=published, width_s=bucket_width(span))
    async for doc in rows:
        builder.add(doc)
    fanout: Document | None = alert.get("fanout")
    expected = {str(c): int(n) for c, n in fanout["expected"].items()} if fanout else None
    return builder.build(alert["id"], expected)


async def alert_report(
    *, repo: Repository, tenant: str, alert_id: str, now: datetime
) -> tuple[Document, DeliveryReport]:
    """The tenant's alert and its delivery report (404 for another tenant's alert)."""
    alert = await repo.with_progress(await get_alert(repo=repo, tenant=tenant, alert_id=alert_id))
    report = await build_report(alert, repo.report_rows(tenant, alert_id), now=now)
    return alert, report


def csv_filename(alert_id: str) -> str:
    return f"zustellbericht-{alert_id}.csv"


CSV_COLUMNS = (
    "section",
    "channel",
    "seconds_since_publication",
    "reached_cumulative",
    "expected",
    "tasks",
    "reached",
    "failed",
    "status",
    "error_class",
    "error_code",
)


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


def csv_rows(report: DeliveryReport) -> Iterable[list[str]]:
    """The report as CSV rows: one `channel` row per channel (expected, tasks, reached,
    failed), one `reach` row per channel and bucket (cumulative reach at the bucket's end) and
    one `failure` row per channel and reason (tasks in the `failed` column)."""
    yield list(CSV_COLUMNS)
    for c in report.channels:
        yield [
            _cell(v)
            for v in ("channel", c.channel, "", "", c.expected, c.tasks, c.reached, c.failed)
        ] + ["", "", ""]
    for c in report.channels:
        for offset, value in zip(report.offsets, c.cumulative, strict=True):
            yield ["reach", c.channel, str(offset), str(value), "", "", "", "", "", "", ""]
    for f in report.failures:
        yield [
            "failure",
            f.channel,
            "",
            "",
            "",
            "",
            "",
            str(f.tasks),
            _cell(f.status),
            _cell(f.error_class),
            _cell(f.error_code),
        ]


def to_csv(report: DeliveryReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(csv_rows(report))
    return out.getvalue()


# --- chart ------------------------------------------------------------------------------------

CHART_WIDTH, CHART_HEIGHT = 720, 320
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 16, 48
SERIES_STYLE = {
    "push": ("#0b5cab", ""),
    "sms": ("#b34700", "8 4"),
    "voice": ("#1b7a3a", "2 4"),
    "email": ("#6a1b9a", "10 4 2 4"),
}
"""Colour and dash pattern per channel (told apart without colour, too)."""


def offset_label(seconds: int) -> str:
    """'+45 s', '+2:30 min', '+1:05 h' after publication."""
    if seconds < 60:
        return f"+{seconds} s"
    if seconds < 3600:
        return f"+{seconds // 60}:{seconds % 60:02d} min"
    return f"+{seconds // 3600}:{seconds % 3600 // 60:02d} h"


def _nice_step(maximum: float, ticks: int) -> float:
    raw = maximum / ticks
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return float(factor * magnitude)
    return float(10 * magnitude)


@dataclass(frozen=True)
class Series:
    channel: str
    color: str
    dash: str
    points: str
    final: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    series: list[Series]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]


def chart(report: DeliveryReport) -> Chart:
    """Geometry of the cumulative reach chart: one polyline per channel starting at (0, 0) at
    publication, one point at the end of each bucket; axes with rounded ticks."""
    x_max = float(report.offsets[-1] if report.offsets else report.width_s)
    y_top = max(
        [1]
        + [c.expected or 0 for c in report.channels]
        + [c.cumulative[-1] for c in report.channels if c.cumulative]
    )
    y_step = max(1.0, _nice_step(y_top, 4))
    y_max = math.ceil(y_top / y_step) * y_step
    inner_w = CHART_WIDTH - _LEFT - _RIGHT
    inner_h = CHART_HEIGHT - _TOP - _BOTTOM

    def x(seconds: float) -> float:
        return round(_LEFT + inner_w * seconds / x_max, 1)

    def y(value: float) -> float:
        return round(_TOP + inner_h * (1 - value / y_max), 1)

    series = []
    for c in report.channels:
        color, dash = SERIES_STYLE.get(c.channel, ("#333333", ""))
        coords = [(x(0), y(0))] + [
            (x(offset), y(value))
            for offset, value in zip(report.offsets, c.cumulative, strict=True)
        ]
        series.append(
            Series(
                channel=c.channel,
                color=color,
                dash=dash,
                points=" ".join(f"{px},{py}" for px, py in coords),
                final=c.cumulative[-1] if c.cumulative else 0,
            )
        )
    x_step = max(float(report.width_s), _nice_step(x_max, 6))
    x_ticks = [
        (x(t), offset_label(int(t))) for t in (i * x_step for i in range(int(x_max // x_step) + 1))
    ]
    y_ticks = [(y(v), str(int(v))) for v in (i * y_step for i in range(int(y_max // y_step) + 1))]
    return Chart(
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        left=_LEFT,
        right=_RIGHT,
        top=_TOP,
        bottom=_BOTTOM,
        series=series,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
    )
