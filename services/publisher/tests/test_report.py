"""Unit tests of the delivery report (no network): how receipts fold into reach time and
failure reason per task, bucket widths, bucketing, the CSV and the chart geometry."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pymongo import UpdateOne

from sirene.publisher import metrics
from sirene.publisher.report import (
    MAX_BUCKETS,
    ReportBuilder,
    bucket_width,
    build_report,
    chart,
    offset_label,
    to_csv,
)
from sirene.publisher.repository import Repository
from sirene.publisher.service import STATUS_CODE, apply_receipts
from sirene.schemas import Channel, DeliveryReceipt, ErrorClass, ReceiptStatus

T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)


class _Recorder:
    """Captures the bulk writes `apply_receipts` hands to the repository."""

    def __init__(self) -> None:
        self.tasks: list[UpdateOne] = []

    async def apply(self, deliveries: Sequence[UpdateOne], _alerts: Sequence[UpdateOne]) -> None:
        self.tasks.extend(deliveries)

    async def known_alerts(self, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        return {pair for pair in pairs if pair[1] == "a1"}


def _receipt(
    status: ReceiptStatus, seconds: float, *, task: int = 1, attempt: int = 1, **extra: Any
) -> DeliveryReceipt:
    return DeliveryReceipt(
        tenant_id="musterstadt",
        task_id=f"{task:032x}",
        alert_id="a1",
        citizen_id="c1",
        channel=extra.pop("channel", Channel.SMS),
        status=status,
        provider="sim",
        attempt=attempt,
        published_at=T0,
        occurred_at=T0 + timedelta(seconds=seconds),
        **extra,
    )


async def _fold(receipts: list[DeliveryReceipt]) -> dict[str, Any]:
    recorder = _Recorder()
    await apply_receipts(repo=cast(Repository, recorder), receipts=receipts)
    assert len(recorder.tasks) == 1
    update: dict[str, Any] = recorder.tasks[0]._doc
    return update


async def test_first_reach_is_a_min_and_the_latest_attempts_failure_a_max() -> None:
    update = await _fold(
        [
            _receipt(ReceiptStatus.CONFIRMED, 9),
            _receipt(ReceiptStatus.DELIVERED, 4),
            _receipt(ReceiptStatus.SENT, 1),
        ]
    )
    assert update["$min"] == {"reached_at": T0 + timedelta(seconds=4)}
    assert update["$max"]["code"] == STATUS_CODE[ReceiptStatus.CONFIRMED]
    assert "failure" not in update["$max"]
    assert set(update) == {"$min", "$max", "$setOnInsert"}  # only commutative operators

    failed = await _fold(
        [
            _receipt(
                ReceiptStatus.FAILED,
                8,
                attempt=2,
                error_class=ErrorClass.PERMANENT,
                error_code="30005",
            ),
            _receipt(
                ReceiptStatus.UNDELIVERED,
                3,
                attempt=1,
                error_class=ErrorClass.TRANSIENT,
                error_code="30003",
            ),
        ]
    )
    assert failed["$max"]["failure"] == "0002|failed|permanent|30005"
    assert "$min" not in failed


async def test_publish_to_delivered_is_observed_once_per_task_and_batch() -> None:
    def count() -> float:
        for metric in metrics.PUBLISH_TO_DELIVERED.collect():
            for sample in metric.samples:
                if sample.name.endswith("_count") and sample.labels == {"channel": "voice"}:
                    return sample.value
        return 0.0

    before = count()
    await _fold(
        [
            _receipt(ReceiptStatus.DELIVERED, 5, channel=Channel.VOICE),
            _receipt(ReceiptStatus.CONFIRMED, 7, channel=Channel.VOICE),
        ]
    )
    assert count() == before + 1


def test_bucket_width_keeps_the_span_within_the_bucket_limit() -> None:
    assert bucket_width(0) == 1
    assert bucket_width(45) == 1
    assert bucket_width(MAX_BUCKETS) == 1
    assert bucket_width(MAX_BUCKETS + 1) == 2
    assert bucket_width(1000) == 10
    assert bucket_width(3 * 3600) == 120
    assert bucket_width(10**9) == 3600


def _doc(
    channel: str, status: ReceiptStatus, seconds: float | None, **extra: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {"channel": channel, "code": STATUS_CODE[status], **extra}
    if seconds is not None:
        doc["reached_at"] = T0 + timedelta(seconds=seconds)
    return doc


async def _rows(docs: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for doc in docs:
        yield doc


DOCS = [
    _doc("sms", ReceiptStatus.DELIVERED, 0.4),
    _doc("sms", ReceiptStatus.CONFIRMED, 2.5),
    _doc("sms", ReceiptStatus.FAILED, None, failure="0001|failed|permanent|30005"),
    _doc("sms", ReceiptStatus.UNDELIVERED, None, failure="0002|undelivered|transient|30003"),
    _doc("sms", ReceiptStatus.FAILED, None, failure="0001|failed|permanent|30005"),
    _doc("push", ReceiptStatus.DELIVERED, 1.2),
    _doc("push", ReceiptStatus.SENT, None),
    _doc("push", ReceiptStatus.EXPIRED, None),  # no reason recorded: the status stands in
    # stored before reach times were recorded: the last receipt time stands in
    {"channel": "push", "code": STATUS_CODE[ReceiptStatus.DELIVERED], "last_receipt_at": T0},
    _doc("fax", ReceiptStatus.DELIVERED, 1),  # unknown channel: ignored
]
ALERT = {
    "id": "a1",
    "published_at": T0,
    "progress": {"last_delivery_at": T0 + timedelta(seconds=2.5)},
    "fanout": {"expected": {"sms": 5, "push": 4, "voice": 1}},
}


async def test_report_buckets_cumulative_reach_and_failures() -> None:
    report = await build_report(ALERT, _rows(DOCS), now=T0 + timedelta(hours=1))
    assert report.width_s == 1
    assert report.offsets == [1, 2, 3]
    by_channel = {c.channel: c for c in report.channels}
    assert [c.channel for c in report.channels] == ["sms", "voice", "push"]  # Channel order
    assert by_channel["sms"].cumulative == [1, 1, 2]
    assert by_channel["push"].cumulative == [1, 2, 2]
    assert by_channel["voice"].cumulative == [0, 0, 0]
    assert (by_channel["sms"].expected, by_channel["sms"].tasks) == (5, 5)
    assert (by_channel["sms"].reached, by_channel["sms"].failed) == (2, 3)
    assert (by_channel["push"].reached, by_channel["push"].failed) == (2, 1)
    assert by_channel["push"].percent == 50
    assert [
        (f.channel, f.status, f.error_class, f.error_code, f.tasks) for f in report.failures
    ] == [
        ("sms", "failed", "permanent", "30005", 2),
        ("sms", "undelivered", "transient", "30003", 1),
        ("push", "expired", "", "", 1),
    ]


async def test_memory_is_bounded_by_buckets_not_tasks() -> None:
    """10 000 tasks over an hour fold into at most MAX_BUCKETS buckets per channel."""
    docs = [_doc("sms", ReceiptStatus.DELIVERED, i * 0.36) for i in range(10_000)]
    alert = {**ALERT, "progress": {"last_delivery_at": T0 + timedelta(hours=1)}, "fanout": None}
    builder = ReportBuilder(published_at=T0, width_s=bucket_width(3600))
    for doc in docs:
        builder.add(doc)
    assert len(builder.reached["sms"]) <= MAX_BUCKETS
    report = await build_report(alert, _rows(docs), now=T0)
    assert report.width_s == 30
    assert report.channels[0].cumulative[-1] == 10_000
    assert report.channels[0].expected is None


async def test_csv_has_channel_reach_and_failure_rows() -> None:
    report = await build_report(ALERT, _rows(DOCS), now=T0)
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    channels = {r["channel"]: r for r in rows if r["section"] == "channel"}
    assert channels["sms"]["expected"] == "5"
    assert channels["sms"]["reached"] == "2"
    assert channels["sms"]["failed"] == "3"
    assert channels["voice"]["tasks"] == "0"
    reach = [
        (r["seconds_since_publication"], r["reached_cumulative"])
        for r in rows
        if r["section"] == "reach" and r["channel"] == "push"
    ]
    assert reach == [("1", "1"), ("2", "2"), ("3", "2")]
    failures = [
        (r["channel"], r["status"], r["error_class"], r["error_code"], r["failed"])
        for r in rows
        if r["section"] == "failure"
    ]
    assert ("sms", "failed", "permanent", "30005", "2") in failures


async def test_csv_cells_are_never_spreadsheet_formulas() -> None:
    docs = [_doc("sms", ReceiptStatus.FAILED, None, failure="0001|failed|permanent|=HYPERLINK(1)")]
    report = await build_report(ALERT, _rows(docs), now=T0)
    assert "'=HYPERLINK(1)" in to_csv(report)


async def test_chart_has_one_polyline_per_channel_from_origin_to_the_last_bucket() -> None:
    report = await build_report(ALERT, _rows(DOCS), now=T0)
    geometry = chart(report)
    assert [s.channel for s in geometry.series] == ["sms", "voice", "push"]
    for series in geometry.series:
        points = [tuple(map(float, p.split(","))) for p in series.points.split()]
        assert len(points) == len(report.offsets) + 1
        assert points[0] == (geometry.left, geometry.height - geometry.bottom)  # (0 s, 0)
        assert points[-1][0] == geometry.width - geometry.right  # the last bucket's end
        ys = [y for _, y in points]
        assert ys == sorted(ys, reverse=True)  # cumulative: never goes down
    sms = next(s for s in geometry.series if s.channel == "sms")
    assert sms.final == 2
    assert geometry.y_ticks[0][1] == "0"
    assert int(geometry.y_ticks[-1][1]) >= 5  # the axis reaches the largest expected count


def test_offset_labels() -> None:
    assert offset_label(5) == "+5 s"
    assert offset_label(150) == "+2:30 min"
    assert offset_label(3900) == "+1:05 h"


async def test_receipts_of_tasks_of_no_known_alert_are_dropped() -> None:
    recorder = _Recorder()
    foreign = _receipt(ReceiptStatus.DELIVERED, 2, task=2).model_copy(
        update={"alert_id": "notification-7"}
    )
    touched = await apply_receipts(
        repo=cast(Repository, recorder), receipts=[_receipt(ReceiptStatus.SENT, 1), foreign]
    )
    assert touched == 1
    assert [op._doc["$setOnInsert"]["task_id"] for op in recorder.tasks] == [f"{1:032x}"]
