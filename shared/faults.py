"""Named crash points for fault-injection tests (setting CRASH_POINT); never set in production.

* ``before_commit`` (costing service): a group's effects and inbox rows written, the
  transaction not committed;
* ``after_commit_before_ack`` (costing consumer): committed, not acknowledged;
* ``after_publish_before_mark_sent`` (ingest relay): confirmed by the broker, the outbox
  rows not deleted.
"""

import os


def crash_if(point: str, configured: str | None) -> None:
    """Exit at once, like a SIGKILL, when ``point`` is the configured crash point."""
    if configured == point:
        os._exit(137)
