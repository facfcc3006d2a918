"""What a service did, told to the admin user; errors as messages, never a 500 page."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.contrib import admin, messages
from django.db import DatabaseError
from django.http import HttpRequest
from django.utils import timezone

from allocation.unit_of_work import DjangoUnitOfWork, classify, is_database_failure
from domain.model import Allocation, StockChange

log = logging.getLogger(__name__)

#: How many order ids a message names before it says "and N more".
NAMED_IN_MESSAGE = 20


def through_admin(request: HttpRequest) -> DjangoUnitOfWork:
    """A unit of work whose events say this admin user caused them."""
    return DjangoUnitOfWork(actor=request.user.get_username() or None, source="admin")


def named(names: list[str]) -> str:
    """'a, b, c' for up to ``NAMED_IN_MESSAGE`` names, then 'and N more'."""
    shown = ", ".join(names[:NAMED_IN_MESSAGE])
    if len(names) > NAMED_IN_MESSAGE:
        shown += f" and {len(names) - NAMED_IN_MESSAGE} more"
    return shown


def _names(lines: Iterable[Allocation], *, with_sku: bool = False) -> str:
    return named([f"{a.order_id} ({a.sku})" if with_sku else a.order_id for a in lines])


def describe_change(change: StockChange, *, with_sku: bool = False) -> str:
    """'Reallocated: o1, o2. Backordered: o3. Served backorders: o4.' (empty if nothing moved)."""
    sentences = []
    if change.reallocated:
        sentences.append(f"Reallocated: {_names(change.reallocated, with_sku=with_sku)}.")
    if change.backordered:
        sentences.append(f"Backordered: {_names(change.backordered, with_sku=with_sku)}.")
    if change.served:
        sentences.append(f"Served backorders: {_names(change.served, with_sku=with_sku)}.")
    return " ".join(sentences)


def merge(changes: Iterable[StockChange]) -> StockChange:
    """Several changes in a row as one: a line's last outcome is the one that stands."""
    outcome: dict[tuple[str, str], tuple[str, Allocation]] = {}
    for change in changes:
        for kind in ("reallocated", "backordered", "served"):
            for line in getattr(change, kind):
                key = (line.sku, line.order_id)
                if kind == "reallocated" and outcome.get(key, ("",))[0] == "served":
                    continue  # served first, then moved again: still a served backorder
                outcome.pop(key, None)
                outcome[key] = (kind, line)
    merged = StockChange()
    for kind, line in outcome.values():
        getattr(merged, kind).append(line)
    return merged


def tell(request: HttpRequest, model_admin: admin.ModelAdmin, change: StockChange, **kw) -> None:
    text = describe_change(change, **kw)
    if text:
        level = messages.WARNING if change.backordered else messages.SUCCESS
        model_admin.message_user(request, text, level)


def is_transient(error: DatabaseError) -> bool:
    return classify(error) is not None


def is_reportable(error: DatabaseError) -> bool:
    """A database error the admin reports as a message: transient, or the database's failure.

    The others (IntegrityError, ProgrammingError, DataError) are bugs: they
    stay server errors, as in the API.
    """
    if is_transient(error):
        return True
    if is_database_failure(error):
        log.error("database error in the admin: %s", error, exc_info=error)
        return True
    return False


def error_text(error: Exception) -> str:
    if isinstance(error, DatabaseError):
        if is_transient(error):
            return "The database is busy; nothing was changed. Please try again."
        return (
            "The database could not complete the change; nothing was changed. Please retry later."
        )
    return f"{error} Nothing was changed."


def when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else ""
