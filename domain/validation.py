"""What a well-formed identifier and quantity are, said once.

The domain checks its input with these; the API's serializer fields and the
commands' field parsing (``allocation.api.serializers``,
``allocation.management.fields``) import them rather than spelling the rules
again, so the three doors accept exactly the same values. Pure Python, like
the rest of ``domain``.
"""

from __future__ import annotations

import re
from typing import TypeGuard

#: The largest quantity a batch or line may have: the database's integer column.
MAX_QUANTITY = 2_147_483_647

#: References, SKUs and order ids: at most this many characters...
IDENTIFIER_MAX_LENGTH = 255
#: ...from ``[A-Za-z0-9._:-]``, starting alphanumeric (also used in URL patterns,
#: so it has no anchors of its own).
IDENTIFIER_PATTERN = rf"[A-Za-z0-9][A-Za-z0-9._:\-]{{0,{IDENTIFIER_MAX_LENGTH - 1}}}"
#: ``IDENTIFIER_PATTERN`` compiled once, for loops over a million rows.
IDENTIFIER_RE = re.compile(rf"\A{IDENTIFIER_PATTERN}\Z")
#: What a user is told when a value is not an identifier.
IDENTIFIER_MESSAGE = (
    f"1-{IDENTIFIER_MAX_LENGTH} characters from letters, digits and . _ - : ,"
    " starting with a letter or digit."
)


def is_identifier(value: object) -> TypeGuard[str]:
    """References, SKUs and order ids: 1-255 of ``[A-Za-z0-9._:-]``, starting alphanumeric."""
    return isinstance(value, str) and IDENTIFIER_RE.match(value) is not None


def is_quantity(value: object, *, minimum: int) -> TypeGuard[int]:
    """An int (a bool is not one) from ``minimum`` to ``MAX_QUANTITY``."""
    return (
        isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= MAX_QUANTITY
    )
