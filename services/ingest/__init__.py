"""Ingest service: the way facts enter the system (HTTP API, QuickBooks webhooks),
the durable event log with its outbox relay, replay and redrive."""
