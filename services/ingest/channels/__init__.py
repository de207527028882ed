"""The sales-channel pipeline shared by every provider (docs/channels.md)."""
