"""Fanout metrics, declared once. Labels are bounded (channel, lane, outcome)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ALERTS_EXPANDED = Counter(
    "sirene_fanout_alerts_total",
    "Alerts expanded into tasks, by lane and outcome.",
    ["lane", "outcome"],
)
TASKS_PRODUCED = Counter(
    "sirene_fanout_tasks_total",
    "Delivery tasks produced, by channel and lane.",
    ["channel", "lane"],
)
EXPANSION_SECONDS = Histogram(
    "sirene_fanout_expansion_seconds",
    "Time to expand one alert, publish to last task acked.",
    ["lane"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
PROFILES_APPLIED = Counter(
    "sirene_fanout_profiles_total",
    "Citizen profile records applied to the audience index.",
    ["outcome"],
)
SHARDS_EXPANDED = Counter(
    "sirene_fanout_shards_total",
    "Audience shards expanded, by lane.",
    ["lane"],
)
FOLLOWER_LEADER = Gauge(
    "sirene_fanout_profile_follower_leader",
    "1 while this instance holds the lease to follow the profile topic into the index.",
)

# every known outcome exists from the start at 0: "no profile changes" is a value, not a gap
for _outcome in ("applied", "stale", "erased", "dead_lettered"):
    PROFILES_APPLIED.labels(outcome=_outcome)

QUIET_HOURS = Counter(
    "sirene_fanout_quiet_hours_citizens_total",
    "Citizens of bulk posts and quiet hours: held back, released when they ended, skipped "
    "(the post expires before they end), withdrawn (the post was cancelled or updated).",
    ["outcome"],
)
for _outcome in ("held", "released", "skipped_expiring", "withdrawn"):
    QUIET_HOURS.labels(outcome=_outcome)
