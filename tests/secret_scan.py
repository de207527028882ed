"""No secret in clear (issue 15): a pytest plugin that records every log line of the
session as a production deployment would write it, and at the end greps those lines and
a ``pg_dump --data-only`` of the test database for API keys and OAuth tokens. A finding
fails the session (exit status 1) and is printed.

What is recorded: structlog's rendered lines (configured as in production by
``shared.logging.configure("json")``: its processors, redaction included, then a logger
that writes each line to stdout, as structlog's PrintLogger does, and to the record),
every stdlib logging record (aiohttp, asyncpg, ...) at INFO and above, and the output of
the services the tests start as subprocesses (``record``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import structlog

#: ``psk_<12 hex>_<token_urlsafe(32)>`` (shared/api_keys.py create_key); the prefix alone
#: is stored and shown in clear on purpose, so the secret part is required.
API_KEY = re.compile(r"psk_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}")
#: The simulator's tokens (tools/qbo_sim/tokens.py): a JWE-like access token and
#: ``AB11`` + 48 hex refresh tokens (bytea in pg_dump is lowercase hex: no false match).
ACCESS_TOKEN = re.compile(r"eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0\.\.[A-Za-z0-9_-]{40,}")
REFRESH_TOKEN = re.compile(r"AB11[0-9a-f]{48}")
PATTERNS = {"api key": API_KEY, "access token": ACCESS_TOKEN, "refresh token": REFRESH_TOKEN}

_state: dict = {"dir": None, "path": None, "file": None, "database_used": False}


def scan_text(text: str, where: str) -> list[str]:
    """Findings (what, where, the secret shortened) of the secrets in ``text``."""
    findings = []
    for what, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            findings.append(f"{what} in clear in {where}: {match.group()[:24]}…")
    return findings


def dump_database(dsn: str) -> str:
    """``pg_dump --data-only`` of ``dsn`` as text."""
    done = subprocess.run(
        [shutil.which("pg_dump") or "pg_dump", "--data-only", "--no-owner", "--dbname", dsn],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pg_dump failed: {done.stderr.strip()}")
    return done.stdout


def log_path() -> Path | None:
    return _state["path"]


def record(text: str) -> None:
    """Add text logged outside this process (a service run as a subprocess) to the record."""
    if _state["file"] is not None and text:
        _state["file"].write(text if text.endswith("\n") else text + "\n")
        _state["file"].flush()


class _TeeLogger:
    """structlog's final logger: each rendered line to (the current) stdout and to the record."""

    def _write(self, message: str) -> None:
        print(message, file=sys.stdout, flush=True)
        record(message)

    def __getattr__(self, _name):  # msg, info, warning, error, exception, ...
        return self._write


class _RecordHandler(logging.Handler):
    def emit(self, log_record: logging.LogRecord) -> None:
        try:
            record(self.format(log_record))
        except Exception:
            self.handleError(log_record)


def pytest_configure(config) -> None:
    from shared.logging import configure

    _state["dir"] = tempfile.mkdtemp(prefix="secret-scan-")
    _state["path"] = Path(_state["dir"]) / "logged.txt"
    _state["file"] = open(_state["path"], "a", encoding="utf-8")  # noqa: SIM115 - closed at session end
    configure("json", "INFO")  # what production runs (the services' main)
    structlog.configure(logger_factory=lambda *_args: _TeeLogger(), cache_logger_on_first_use=False)
    handler = _RecordHandler(logging.INFO)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def pytest_fixture_setup(fixturedef, request) -> None:
    if fixturedef.argname == "pool":  # the test database was (re)created this session
        _state["database_used"] = True


def pytest_sessionfinish(session, exitstatus) -> None:
    if _state["file"] is None:
        return
    _state["file"].close()
    _state["file"] = None
    findings = scan_text(_state["path"].read_text(encoding="utf-8", errors="replace"), f"the log ({_state['path']})")
    if _state["database_used"]:
        from tests.conftest import TEST_DATABASE_URL

        try:
            findings += scan_text(dump_database(TEST_DATABASE_URL), "pg_dump of the test database")
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            findings.append(f"the test database could not be scanned: {exc}")
    if findings:
        print("\nsecret scan: secrets found in clear:\n  " + "\n  ".join(findings[:50]), file=sys.stderr)
        session.exitstatus = 1
    elif not os.environ.get("SECRET_SCAN_KEEP"):
        shutil.rmtree(_state["dir"], ignore_errors=True)
