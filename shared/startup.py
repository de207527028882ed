"""Refusing to start, fail-closed: a service without a required secret, or connected
as a role that row-level security would not bind, stops before serving anything, with
one log line saying why and what to do, and exits non-zero."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

import asyncpg

from shared.logging import get_logger

log = get_logger("startup")
EXIT_REFUSED = 2

ROLE_CHECK = """
SELECT r.rolname, r.rolsuper, r.rolbypassrls,
       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relowner = r.oid) AS owned
FROM pg_roles r WHERE r.rolname = current_user"""


class StartupError(Exception):
    """The service must not start; the message says why and what to do."""


async def check_service_role(pool: asyncpg.Pool) -> None:
    """Row-level security binds the services only if their role is no superuser, has no
    BYPASSRLS and owns no table (an owner is bound only while FORCE is set)."""
    row = await pool.fetchrow(ROLE_CHECK)
    if row is None:  # the statement reads the current role, which always exists
        raise StartupError("the database role of DATABASE_URL cannot be read")
    problems = [
        what
        for what, bad in (
            ("is a superuser", row["rolsuper"]),
            ("has BYPASSRLS", row["rolbypassrls"]),
            (f"owns {row['owned']} objects of the schema", row["owned"]),
        )
        if bad
    ]
    if problems:
        raise StartupError(
            f"the database role {row['rolname']!r} of DATABASE_URL {' and '.join(problems)}: row-level security "
            "would not isolate tenants. Connect as the service role that `python -m shared.migrate` creates "
            "(DATABASE_URL), and keep the owner in DATABASE_OWNER_URL"
        )


def refuse(exc: StartupError) -> NoReturn:
    log.error("startup.refused", reason=str(exc))
    sys.exit(EXIT_REFUSED)


def run_guarded(main: Callable[[], object]) -> None:
    """Run a service's main; a StartupError anywhere in start-up becomes one log line and exit 2."""
    try:
        main()
    except StartupError as exc:
        refuse(exc)
