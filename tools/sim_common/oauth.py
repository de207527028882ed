"""OAuth and credential helpers both simulators' identity endpoints and APIs use: redirects back to the
app, the request's origin (for discovery documents), HTTP Basic client authentication, bearer tokens and
the ``{"error": …}`` answers of the token endpoint."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web

from tools.sim_common.jsonutil import json_response

#: Headers of every token-endpoint answer that carries tokens.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def redirect(uri: str, params: Mapping[str, str]) -> web.HTTPFound:
    """A 302 to ``uri`` with ``params`` added to its query."""
    parts = urlsplit(uri)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return web.HTTPFound(urlunsplit(parts._replace(query=query)))


def origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def bearer_token(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def client_authenticated(
    request: web.Request, client_id: str, client_secret: str, form: Mapping[str, str] | None = None
) -> bool:
    """HTTP Basic client authentication; without a Basic header, ``client_id`` and ``client_secret`` from
    ``form`` when given (``client_secret_post``), else refused."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            login, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
    elif form is not None:
        login, password = form.get("client_id", ""), form.get("client_secret", "")
    else:
        return False
    return hmac.compare_digest(login.encode(), client_id.encode()) and hmac.compare_digest(
        password.encode(), client_secret.encode()
    )


def oauth_error(error: str, status: int = 400) -> web.Response:
    return json_response({"error": error}, status=status)
