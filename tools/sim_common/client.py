"""The HTTP call of the simulators' CLI drivers (``python -m tools.<sim>.cli``): standard library only, JSON
in and out, failures as ``SystemExit`` with a readable message."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def require_http(base: str) -> None:
    if not base.startswith(("http://", "https://")):
        raise SystemExit(f"the simulator URL must be http:// or https://, not {base!r}")


def call(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """``method base+path`` with ``body`` as JSON; the answer's JSON (``{}`` when empty)."""
    require_http(base)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - base is checked to be http(s) above
        base.rstrip("/") + path, data=data, method=method, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http(s) only, see above
            text = response.read()
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"{method} {path} -> HTTP {exc.code}: {exc.read().decode(errors='replace')}") from exc
    except urllib.error.URLError as exc:
        raise SystemExit(f"cannot reach the simulator at {base}: {exc.reason}") from exc
    return json.loads(text) if text else {}
