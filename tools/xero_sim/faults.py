"""Error bodies as Xero answers them (docs/xero.md §1.6, §8):

- 401/403 from the identity layer: a JSON problem object
  ``{"Type":null,"Title":"Unauthorized","Status":401,"Detail":"TokenExpired: …","Instance":…,"Extensions":{}}``;
- 400 ``ValidationException`` / ``ApiException`` bodies with ``ErrorNumber``, ``Type``, ``Message``;
- 404: plain text ``The resource you're looking for cannot be found`` (not JSON);
- 429: an empty body with ``Retry-After`` and ``X-Rate-Limit-Problem``;
- 503: plain text, for the ``/sim/api/config`` fail switch.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from aiohttp import web

from tools.sim_common.jsonutil import json_response

NOT_FOUND_TEXT = "The resource you're looking for cannot be found"


def problem(status: int, title: str, detail: str) -> web.Response:
    return json_response(
        {
            "Type": None,
            "Title": title,
            "Status": status,
            "Detail": detail,
            "Instance": str(uuid.uuid4()),
            "Extensions": {},
        },
        status=status,
    )


def unauthorized(detail: str) -> web.Response:
    return problem(401, "Unauthorized", detail)


def forbidden(detail: str = "AuthenticationUnsuccessful") -> web.Response:
    return problem(403, "Forbidden", detail)


def not_found() -> web.Response:
    return web.Response(status=404, text=NOT_FOUND_TEXT, content_type="text/plain")


def validation(message: str, status: int = 400) -> web.Response:
    return json_response(
        {
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": [],
            "Detail": message,
        },
        status=status,
    )


def api_exception(message: str, status: int = 400) -> web.Response:
    return json_response({"ErrorNumber": 16, "Type": "QueryParseException", "Message": message}, status=status)


def throttled(problem_name: str, retry_after: int | None, headers: Mapping[str, str]) -> web.Response:
    out = dict(headers)
    out["X-Rate-Limit-Problem"] = problem_name
    if retry_after is not None:
        out["Retry-After"] = str(retry_after)
    return web.Response(status=429, headers=out)


def unavailable(status: int = 503) -> web.Response:
    return web.Response(status=status, text="Service Unavailable", content_type="text/plain")
