"""QuickBooks Online sales channel: webhook → inbox → entity reads (or CDC) →
normalized sales events in the event log. See services/ingest/qbo/README.md."""
