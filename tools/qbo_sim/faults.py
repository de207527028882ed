"""QBO error bodies (docs/quickbooks-api.md §2.6, §2.7, §4.4, §5.3)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timezone
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from tools.qbo_sim import timefmt
from tools.sim_common.jsonutil import json_response


def fault(
    code: str,
    message: str,
    detail: str,
    tz: timezone,
    status: int = 400,
    fault_type: str = "ValidationFault",
    element: str = "",
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The normal entity-endpoint envelope: ``{"Fault":{"Error":[…],"type":…},"time":…}``."""
    body = {
        "Fault": {
            "Error": [{"Message": message, "Detail": detail, "code": code, "element": element}],
            "type": fault_type,
        },
        "time": timefmt.response_time(timefmt.now(), tz),
    }
    extra = {k: v for k, v in (headers or {}).items() if k.lower() == "allow"}
    return json_response(body, status=status, headers=extra or None)


def not_found(tz: timezone) -> web.Response:
    return fault(
        "610",
        "Object Not Found",
        "Object Not Found : Something you're trying to use has been made "
        "inactive. Check the fields with accounts, customers, items, vendors or employees.",
        tz,
    )


def deleted(tz: timezone) -> web.Response:
    return fault("610", "Object Not Found", "Object Not Found : Another user has deleted this transaction.", tz)


def query_parse_error(detail: str, tz: timezone) -> web.Response:
    return fault("4000", "Error parsing query", f"QueryParserError: {detail}", tz)


def query_validation_error(detail: str, tz: timezone) -> web.Response:
    return fault("4001", "Invalid query", f"QueryValidationError: {detail}", tz)


def gateway_fault(status: int, code: str, message: str, detail: str, fault_type: str) -> web.Response:
    """The lower-case gateway envelope of 401/403 (docs/quickbooks-api.md §4.4)."""
    body: dict[str, Any] = {
        "warnings": None,
        "intuitObject": None,
        "fault": {"error": [{"message": message, "detail": detail, "code": code, "element": None}], "type": fault_type},
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": int(time.time() * 1000),
        "status": None,
        "cdcresponse": [],
    }
    return json_response(
        body, status=status, headers={"WWW-Authenticate": 'Bearer realm="Intuit"'} if status == 401 else None
    )


def unauthorized(detail: str) -> web.Response:
    return gateway_fault(
        401, "3200", "message=AuthenticationFailed; errorCode=003200; statusCode=401", detail, "AUTHENTICATION"
    )


def forbidden(detail: str) -> web.Response:
    return gateway_fault(
        403, "3100", "message=AuthorizationFailed; errorCode=003100; statusCode=403", detail, "SERVICE"
    )


def throttled(tz: timezone) -> web.Response:
    """HTTP 429 with the XML 3001 body, even to JSON clients."""
    stamp = escape(timefmt.response_time(timefmt.now(), tz))
    body = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{stamp}">'
        '<Fault type="SERVICE"><Error code="3001">'
        "<Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>"
        "<Detail>The request limit was reached.  Try again later</Detail>"
        "</Error></Fault></IntuitResponse>"
    )
    return web.Response(text=body, status=429, content_type="application/xml")


def service_error(status: int, tz: timezone) -> web.Response:
    """An injected server-side failure (``POST /sim/api/config {"fail_next": n}``)."""
    return fault(
        "10000",
        "An application error has occurred while processing your request",
        "System Failure Error: simulated failure",
        tz,
        status=status,
        fault_type="SystemFault",
    )
