"""Readings of the costing service's Prometheus counters in this process (consumers run
in-process in most tests), for tests that check what a fault made the service do."""

from __future__ import annotations

from prometheus_client import REGISTRY


def retries(kind: str) -> float:
    """costing_retries_total{kind}: transactions re-run after a transient error."""
    return REGISTRY.get_sample_value("costing_retries_total", {"kind": kind}) or 0.0


def outages() -> float:
    """costing_database_outages_total: retry windows that ended with the database still gone."""
    return REGISTRY.get_sample_value("costing_database_outages_total") or 0.0


def handled(events, outcome: str) -> float:
    """costing_events_total{outcome} summed over the event types of ``events``."""
    return sum(
        REGISTRY.get_sample_value("costing_events_total", {"event_type": t, "outcome": outcome}) or 0.0
        for t in {event.event_type for event in events}
    )
