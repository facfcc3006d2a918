"""Field rules for bulk input: the API's rules, with the API's messages.

A CSV cell is always text; a JSON value may be any JSON type. Both are held
to what ``allocation.api.serializers`` accepts: identifiers are strings
matching ``domain.model.is_identifier`` (never trimmed), quantities are
integers or digit strings within bounds, dates are ``YYYY-MM-DD``.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

from domain.model import IDENTIFIER_PATTERN, MAX_QUANTITY, is_identifier

#: A key absent from a JSON record (or a column absent from a CSV header).
MISSING = object()

REQUIRED = "This field is required."
NULL = "This field may not be null."
BLANK = "This field may not be blank."
NOT_A_STRING = "Not a valid string."
TOO_LONG = "Ensure this field has no more than 255 characters."
BAD_IDENTIFIER = (
    "1-255 characters from letters, digits and . _ - : , starting with a letter or digit."
)
NOT_AN_INTEGER = "A valid integer is required."
TOO_BIG = f"Ensure this value is less than or equal to {MAX_QUANTITY}."
BAD_DATE = "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."

#: ``is_identifier`` as a compiled pattern, for loops over a million rows.
IDENTIFIER_RE = re.compile(rf"\A{IDENTIFIER_PATTERN}\Z")
_INTEGER_RE = re.compile(r"-?\d{1,20}")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


class FieldError(ValueError):
    """One value broke one rule; the message is meant for the user."""


def identifier(value: object) -> str:
    if isinstance(value, str) and is_identifier(value):
        return value
    if value is MISSING:
        raise FieldError(REQUIRED)
    if value is None:
        raise FieldError(NULL)
    if not isinstance(value, str):
        raise FieldError(NOT_A_STRING)
    if value == "":
        raise FieldError(BLANK)
    if len(value) > 255:
        raise FieldError(TOO_LONG)
    raise FieldError(BAD_IDENTIFIER)


def quantity(value: object, *, minimum: int) -> int:
    if value is MISSING:
        raise FieldError(REQUIRED)
    if value is None:
        raise FieldError(NULL)
    if isinstance(value, str):
        text = value.strip()
        if not _INTEGER_RE.fullmatch(text):
            raise FieldError(NOT_AN_INTEGER)
        number = int(text)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise FieldError(NOT_AN_INTEGER)
    if number < minimum:
        raise FieldError(f"Ensure this value is greater than or equal to {minimum}.")
    if number > MAX_QUANTITY:
        raise FieldError(TOO_BIG)
    return number


def eta(value: object) -> str | None:
    """``YYYY-MM-DD`` (returned as that text, known to be a real date) or None (in stock).

    Empty, ``null`` (JSON null or the word, any case) and missing all mean in stock.
    """
    if value is MISSING or value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FieldError(BAD_DATE)
    return _date_text(value)


@lru_cache(maxsize=4096)
def _date_text(value: str) -> str | None:
    # A file of a million rows holds a few hundred distinct dates: parse each once.
    if value.lower() == "null":
        return None
    if not _DATE_RE.fullmatch(value):
        raise FieldError(BAD_DATE)
    try:
        date.fromisoformat(value)
    except ValueError:
        raise FieldError(BAD_DATE) from None
    return value
