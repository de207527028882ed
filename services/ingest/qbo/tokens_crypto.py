"""Moved to ``services.ingest.channels.tokens_crypto`` (shared by every provider)."""

from services.ingest.channels.tokens_crypto import TokenCipher

__all__ = ["TokenCipher"]
