"""Unit of Work: one use case = one ``transaction.atomic`` block.

Services run their body through ``uow.run``: a transient database conflict
(serialization failure, deadlock, lock timeout, a connection lost before
commit) re-runs the whole use case a bounded number of times with jittered
backoff, then surfaces as ``Busy``; a database that cannot be reached at all
surfaces as ``Unavailable``. Nothing is retried inside an outer transaction
(a bulk load owns its own atomicity), since only the outermost block can
start over.
"""

from __future__ import annotations

import abc
import logging
import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from django.db import (
    DatabaseError,
    InterfaceError,
    InternalError,
    OperationalError,
    connection,
    transaction,
)

from allocation.repository import AbstractProductRepository, DjangoProductRepository, Origin

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS = 5
# A lost connection is tried once more on a fresh one; a database that stays
# unreachable is answered quickly rather than after a long series of waits.
MAX_CONNECTION_ATTEMPTS = 2
BACKOFF_SECONDS = 0.02

# PostgreSQL SQLSTATEs worth a retry: serialization_failure, deadlock_detected,
# lock_not_available.
_TRANSIENT_PGCODES = {"40001", "40P01", "55P03"}


class ServiceUnavailable(Exception):
    """Base of the service errors that are about the database, not the request."""

    code = "unavailable"


class Busy(ServiceUnavailable):
    code = "busy"

    def __init__(self, detail: str = "The database is busy; please retry shortly.") -> None:
        super().__init__(detail)


class Unavailable(ServiceUnavailable):
    code = "unavailable"

    def __init__(
        self, detail: str = "The database cannot be reached; please retry shortly."
    ) -> None:
        super().__init__(detail)


def classify(error: BaseException) -> str | None:
    """'conflict', 'connection' or None (not transient) for a database error."""
    cause = error.__cause__ or error
    pgcode = getattr(cause, "pgcode", None)
    if pgcode in _TRANSIENT_PGCODES:
        return "conflict"
    if pgcode is None and isinstance(error, OperationalError | InterfaceError):
        message = str(error).lower()
        if "locked" in message or "busy" in message:  # SQLite: database is locked
            return "conflict"
        return "connection"
    return None


#: Database errors that say the database could not do the work, not that the
#: work was wrong (PEP 249's meaning of these classes), when not transient:
#: disk full, a statement cancelled, an internal error. IntegrityError,
#: ProgrammingError and DataError are not among them: those are our bugs.
DATABASE_FAILURES = (DatabaseError, OperationalError, InternalError)


def is_database_failure(error: BaseException) -> bool:
    """A non-transient database error that is the database's failure, not ours."""
    return classify(error) is None and type(error) in DATABASE_FAILURES


class AbstractUnitOfWork(abc.ABC):
    products: AbstractProductRepository

    def __enter__(self) -> AbstractUnitOfWork:
        self.committed = False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and not self.committed:
            self.rollback()

    def commit(self) -> None:
        self._commit()
        self.committed = True

    def run(self, use_case: Callable[[], T]) -> T:
        """Run a use case (which enters this unit of work itself)."""
        return use_case()

    @abc.abstractmethod
    def _commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None: ...


class DjangoUnitOfWork(AbstractUnitOfWork):
    """One ``transaction.atomic`` block and a fresh repository per use case.

    ``actor`` (a username, or None) and ``source`` (the door: ``api``,
    ``admin``, ``cli``) are stamped on the events it writes; each entry (each
    attempt of a retried use case too) is a new ``transaction`` of its own,
    unless one is given (a bulk command's units of work share one).
    """

    products: DjangoProductRepository

    def __init__(
        self, *, actor: str | None = None, source: str = "cli", transaction: str | None = None
    ) -> None:
        # Checked now, not at the first write: a door with a typo fails at once.
        Origin(actor, source)
        self.actor = actor
        self.source = source
        # A bulk command runs many units of work inside its one database
        # transaction: they share its ``transaction`` value.
        self.transaction = transaction

    def __enter__(self) -> DjangoUnitOfWork:
        super().__enter__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        origin = (
            Origin(self.actor, self.source)
            if self.transaction is None
            else Origin(self.actor, self.source, self.transaction)
        )
        self.products = DjangoProductRepository(origin)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            super().__exit__(exc_type, exc, tb)
        finally:
            # Leaving the atomic block commits, or rolls back after an error
            # or a rollback() call.
            self._atomic.__exit__(exc_type, exc, tb)

    def _commit(self) -> None:
        # Writes happen here, at the end of the use case, so a rule broken
        # half-way never leaves a half-written product behind.
        self.products.flush()

    def rollback(self) -> None:
        transaction.set_rollback(True)

    def run(self, use_case: Callable[[], T]) -> T:
        return retrying(use_case)


def retrying(use_case: Callable[[], T]) -> T:
    """Run ``use_case`` (which owns its transaction), again on transient database errors.

    A conflict is retried up to ``MAX_ATTEMPTS`` times with jittered backoff,
    then raises ``Busy``; a lost connection once more on a new connection,
    then ``Unavailable``. Inside an outer transaction nothing is retried:
    only the outermost block can start over, so the error goes up to it.
    Every door that owns a transaction (API requests through the services,
    admin forms and actions) goes through here.
    """
    if connection.in_atomic_block:
        return use_case()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return use_case()
        except (OperationalError, InterfaceError, DatabaseError) as error:
            kind = classify(error)
            if kind is None:
                raise
            if kind == "connection":
                # The connection is unusable: drop it; the next attempt opens a new one.
                connection.close()
            limit = MAX_ATTEMPTS if kind == "conflict" else MAX_CONNECTION_ATTEMPTS
            if attempt >= limit:
                log.warning("giving up after %d attempts: %s", attempt, error)
                if kind == "conflict":
                    raise Busy() from error
                raise Unavailable() from error
            log.info("transient database error (attempt %d): %s", attempt, error)
            time.sleep(BACKOFF_SECONDS * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")
