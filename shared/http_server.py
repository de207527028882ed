"""Serving the aiohttp apps: a request that aiohttp's HTTP parser refuses (a header or
request line over ``max_field_size``/``max_line_size``, a malformed header, a bad
method...) never reaches the application's middlewares. aiohttp 3.14 then answers a
text/plain 400 whose body is the parser's message, and logs ``Error handling
request`` on the ``aiohttp.server`` logger with the exception, whose text quotes the
offending bytes (``Got more than 8190 bytes when reading: b'Bearer psk_...'``): an API
key in clear in the logs and in the response.

``AppRunner`` here serves with a request handler whose ``handle_error`` answers
JSON like every other error (``{"error", "detail"}`` in our words): 431 for a line
too long, 400 for any other malformed request, and logs only the status and the
exception's class, never its text. Unexpected handler failures (outside
error_middleware) get a JSON 500 too, logged as aiohttp would.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from aiohttp.web_server import Server

from shared.logging import get_logger
from shared.web import error_body, json_response

log = get_logger("http")

#: aiohttp's default max_field_size/max_line_size (bytes of one header line or the request line).
DEFAULT_FIELD_LIMIT = 8190


class JsonErrorRequestHandler(RequestHandler):
    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> StreamResponse:
        if isinstance(exc, HttpProcessingError):
            # The parser's message quotes the request's bytes (headers, API key): never log or echo it.
            if isinstance(exc, LineTooLong):
                status, error = 431, "request_header_fields_too_large"
                detail = "the request line or a header field is too long"
            else:
                status, error, detail = 400, "bad_request", "the request is not well-formed HTTP"
            log.warning("http.malformed_request", status=status, problem=type(exc).__name__)
        elif status == 504:
            error, detail = "timeout", "the request took too long"
        else:
            if exc is not None:
                self.log_exception("Error handling request", exc_info=exc)
            status, error, detail = 500, "internal_error", "an unexpected error; it has been logged"
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        response = json_response(error_body(error, detail), status)
        response.force_close()
        return response


class _JsonErrorServer(Server):
    __slots__ = ()

    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class AppRunner(web.AppRunner):
    """web.AppRunner whose connections answer parser-level errors as JSON (see module doc)."""

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer
        return server


def run(app: web.Application, *, host: str, port: int, grace: float = 30.0, **server_kwargs: Any) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully within ``grace`` seconds
    (``shared.shutdown``; a second signal forces)."""
    from shared.aio import run as run_loop
    from shared.shutdown import serve  # shared.shutdown builds on this module's AppRunner

    run_loop(serve(app, host, port, grace, **server_kwargs))
