"""Xero as a sales channel (issue 22, docs/channels.md, docs/xero.md)."""
