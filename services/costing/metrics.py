"""Prometheus metrics of the costing consumer."""

from prometheus_client import Counter, Gauge, Histogram

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

# Read from the broker every COSTING_BROKER_STATS_SECONDS (a passive declare of each queue).
QUEUE_CONSUMERS = Gauge("costing_queue_consumers", "Consumers the broker counts on the queue", ["queue"])
QUEUE_READY = Gauge("costing_queue_messages_ready", "Messages ready for delivery in the queue", ["queue"])
DEAD_LETTER_DEPTH = Gauge("costing_dead_letter_depth", "Messages parked in the dead-letter queue")
# Of this process.
UNACKNOWLEDGED = Gauge(
    "costing_unacknowledged_messages", "Messages delivered to this consumer and not yet acknowledged or parked"
)
CONSUMING = Gauge("costing_consuming", "1 while this process consumes its queue, 0 otherwise")
