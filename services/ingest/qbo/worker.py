"""Moved to ``services.ingest.channels.worker`` (one worker per provider)."""

from services.ingest.channels.worker import CATCH_UP_LOCK, MAX_ATTEMPTS, NotificationWorker

__all__ = ["CATCH_UP_LOCK", "MAX_ATTEMPTS", "NotificationWorker"]
