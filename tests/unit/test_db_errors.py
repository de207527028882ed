"""How database errors are classified (shared/db.translate): what is retried as contention,
what waits for the database to come back, and what is a caller's problem."""

from __future__ import annotations

import asyncpg
import pytest

from shared.db import BadInputError, ConflictError, TransientError, UnavailableError, translate


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),  # 57P01
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),  # 57P03
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("cannot call Transaction.__aexit__(): the underlying connection is closed"),
        asyncpg.exceptions.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),  # asyncio.TimeoutError is this one since Python 3.11
    ],
)
def test_a_lost_or_unreachable_database_is_unavailable(exc):
    assert isinstance(translate(exc), UnavailableError)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.SerializationError("could not serialize"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.LockNotAvailableError("could not obtain lock"),
    ],
)
def test_contention_is_transient_but_not_unavailable(exc):
    err = translate(exc)
    assert type(err) is TransientError


def test_a_unique_violation_is_a_conflict_and_a_data_exception_bad_input():
    assert isinstance(translate(asyncpg.exceptions.UniqueViolationError("duplicate key")), ConflictError)
    assert isinstance(translate(asyncpg.exceptions.NumericValueOutOfRangeError("out of range")), BadInputError)


def test_anything_else_is_left_as_it_is():
    bug = ValueError("a bug")
    assert translate(bug) is bug
