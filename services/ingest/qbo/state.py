"""Moved to ``services.ingest.channels.state`` (shared by every provider); this name is
the same module object, so ``services.ingest.qbo.state.TTL`` and the channels' are one."""

import sys

from services.ingest.channels import state as _state

sys.modules[__name__] = _state
