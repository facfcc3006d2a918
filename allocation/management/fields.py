"""Field rules for bulk input: the API's rules, judged by the API's own fields.

A CSV cell is always text; a JSON value may be any JSON type. Both are held
to what ``allocation.api.serializers`` accepts, with two allowances a file
needs: a quantity may be written as digits (what a CSV cell holds), and an
eta may be empty or ``null`` (in stock). A value that passes the shared
checks of ``domain.validation`` is taken at once (the common case, a million
times in a big file); any other goes to the serializer field the API uses for
it, and the first message that field gives is the user's, word for word what
the API would answer.
"""

from __future__ import annotations

from functools import lru_cache

from rest_framework import serializers
from rest_framework.fields import empty

from allocation.api.serializers import (
    INTEGER_TEXT_RE,
    IdentifierField,
    StrictDateField,
    quantity_field,
)
from domain.validation import IDENTIFIER_RE, MAX_QUANTITY, is_identifier, is_quantity

# IDENTIFIER_RE and MAX_QUANTITY are named here too for the bulk loaders' fast
# path, which reads them as ``fields.*`` next to the functions below.
__all__ = [
    "IDENTIFIER_RE",
    "MAX_QUANTITY",
    "MISSING",
    "FieldError",
    "eta",
    "identifier",
    "quantity",
]

#: A key absent from a JSON record (or a column absent from a CSV header).
MISSING = object()

_IDENTIFIER = IdentifierField()
_DATE = StrictDateField()


class FieldError(ValueError):
    """One value broke one rule; the message is meant for the user."""


def _judge(field: serializers.Field, value: object):
    """``value`` as the API's ``field`` takes it; FieldError with its first message if refused."""
    try:
        return field.run_validation(empty if value is MISSING else value)
    except serializers.ValidationError as error:
        # A field's errors are a list of messages (a dict comes from a serializer only).
        detail = error.detail
        messages = detail if isinstance(detail, list) else list(detail.values())
        raise FieldError(str(messages[0])) from None


@lru_cache
def _quantity_field(minimum: int) -> serializers.IntegerField:
    return quantity_field(minimum)


def identifier(value: object) -> str:
    if is_identifier(value):
        return value
    # Refused: the field's validator is the same pattern.
    return _judge(_IDENTIFIER, value)


def quantity(value: object, *, minimum: int) -> int:
    if isinstance(value, str) and INTEGER_TEXT_RE.fullmatch(value.strip()):
        value = int(value)
    if is_quantity(value, minimum=minimum):
        return value
    return _judge(_quantity_field(minimum), value)


def eta(value: object) -> str | None:
    """``YYYY-MM-DD`` (returned as that text, known to be a real date) or None (in stock).

    Empty, ``null`` (JSON null or the word, any case) and missing all mean in stock.
    """
    if value is MISSING or value is None or value == "":
        return None
    if not isinstance(value, str):
        _judge(_DATE, value)  # the API's date field takes text only: this raises
    return _date_text(value)


@lru_cache(maxsize=4096)
def _date_text(value: str) -> str | None:
    # A file of a million rows holds a few hundred distinct dates: parse each once.
    if value.lower() == "null":
        return None
    _judge(_DATE, value)
    return value
