"""Database plumbing: Django's PostgreSQL backend with our changes
(``allocation.db.postgresql``), and prepared statements for the hot path.
"""

from collections.abc import Sequence

from django.db import connection


def prepared(sql: str, params: Sequence = ()) -> tuple[str, list]:
    """``sql`` and ``params`` to execute as a statement prepared once per connection.

    On PostgreSQL this is ``EXECUTE name(...)`` of a statement prepared the
    first time the connection sees ``sql``. Elsewhere the statement is
    returned as it is: SQLite's driver already keeps its statements compiled.
    """
    prepare = getattr(connection, "prepare", None)
    if prepare is None:
        return sql, list(params)
    return prepare(sql, params)
