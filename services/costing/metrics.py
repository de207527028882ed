"""Prometheus metrics of the costing consumer."""

from prometheus_client import Counter, Histogram

EVENTS = Counter("costing_events_total", "Events handled by outcome", ["event_type", "outcome"])
DEAD_LETTERED = Counter("costing_dead_lettered_total", "Messages parked in the dead-letter queue", ["reason"])
RETRIES = Counter("costing_retries_total", "Transactions re-run after a transient database error, by kind", ["kind"])
OUTAGES = Counter(
    "costing_database_outages_total",
    "Retry windows after which the database was still unreachable (all held messages went back)",
)
DURATION = Histogram("costing_apply_seconds", "Time to apply one group of events (one transaction), commit included")
GROUP_SIZE = Histogram(
    "costing_group_events", "Events applied per transaction", buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500)
)
