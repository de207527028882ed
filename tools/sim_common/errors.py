"""The error both simulators raise for a request they refuse; the control API answers it as
``{"error": message}`` with its HTTP ``status``."""

from __future__ import annotations


class SimError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
