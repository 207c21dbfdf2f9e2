"""Business rules of issues as plain functions: receiving reports and shaping their views."""

from __future__ import annotations

from typing import Any

from sirene.runtime import Document
from sirene.schemas import new_id, utcnow

from . import metrics
from .models import CATEGORY_LABELS, IssueCategory, IssueStatus, ReportIn
from .repository import Repository

THANKS = (
    "Vielen Dank! Ihre Meldung ist eingegangen. Mit der Nummer können Sie den Stand verfolgen.",
    "Thank you! Your report has been received. Use its number to follow its status.",
)


def category_label(category: IssueCategory | str, language: str) -> str:
    """The category's name in German, or English for 'en'."""
    german, english = CATEGORY_LABELS[IssueCategory(category)]
    return english if language == "en" else german


async def receive_report(*, repo: Repository, tenant: str, report: ReportIn) -> Document:
    """Stores a new report with status 'received' (contact data kept apart from the public
    view) and returns it."""
    now = utcnow()
    report_id = new_id()
    contact = report.contact.model_dump(exclude_none=True) if report.contact else None
    doc: Document = {
        "_id": f"{tenant}:{report_id}",
        "tenant": tenant,
        "id": report_id,
        "category": report.category.value,
        "description": report.description,
        "location": {"lat": report.lat, "lon": report.lon},
        "contact": contact or None,
        "status": IssueStatus.RECEIVED.value,
        "created_at": now,
        "updated_at": now,
    }
    await repo.insert_report(doc)
    metrics.REPORTS_RECEIVED.labels(
        category=report.category.value, with_contact=str(bool(contact)).lower()
    ).inc()
    return doc


def public_view(doc: Document, language: str) -> dict[str, Any]:
    """What anyone with the report's id may see: never the contact data."""
    return {
        "id": doc["id"],
        "category": doc["category"],
        "category_label": category_label(doc["category"], language),
        "description": doc["description"],
        "lat": doc["location"]["lat"],
        "lon": doc["location"]["lon"],
        "status": doc["status"],
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
    }


def staff_view(doc: Document, language: str) -> dict[str, Any]:
    """What staff of the report's tenant see, including how to reach the reporter."""
    return {**public_view(doc, language), "contact": doc.get("contact")}
