"""asyncpg's exceptions become the hub's in one place: the mapping the runtime relies on."""

from __future__ import annotations

import asyncpg
import asyncpg.exceptions as pg
import pytest

from hub.errors import (
    DatabaseConflict,
    DatabaseError,
    DatabaseUnavailable,
    PermanentError,
    SchemaMissing,
    TransientError,
    UniqueViolation,
)
from hub.runtime.db import translate


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (asyncpg.InterfaceError("connection is closed"), DatabaseUnavailable),
        (pg.InternalClientError("cannot switch to state 15"), DatabaseUnavailable),
        (pg.CannotConnectNowError("the database system is starting up"), DatabaseUnavailable),
        (pg.AdminShutdownError("terminating connection due to administrator command"), DatabaseUnavailable),
        (pg.TooManyConnectionsError("sorry, too many clients already"), DatabaseUnavailable),
        (pg.SerializationError("could not serialize access"), DatabaseConflict),
        (pg.DeadlockDetectedError("deadlock detected"), DatabaseConflict),
        (pg.UniqueViolationError("duplicate key value"), UniqueViolation),
        (pg.UndefinedTableError('relation "outbox" does not exist'), SchemaMissing),
        (pg.UndefinedColumnError('column "parked_at" does not exist'), SchemaMissing),
        (pg.CheckViolationError("new row violates check constraint"), DatabaseError),
        (pg.RaiseError("the audit log is append-only"), DatabaseError),
    ],
)
def test_an_asyncpg_error_becomes_the_hubs(raised: BaseException, expected: type[BaseException]) -> None:
    translated = translate(raised)
    assert type(translated) is expected
    assert str(raised) in str(translated)


def test_the_database_being_away_or_losing_a_race_is_retried_and_a_refused_statement_is_not() -> None:
    assert isinstance(translate(pg.AdminShutdownError("x")), TransientError)
    assert isinstance(translate(pg.SerializationError("x")), TransientError)
    refused = translate(pg.CheckViolationError("x"))
    assert not isinstance(refused, TransientError | PermanentError)


def test_what_is_not_asyncpgs_passes_through_unchanged() -> None:
    for error in (ValueError("v"), OSError("o"), DatabaseUnavailable("d")):
        assert translate(error) is error
