"""Django's PostgreSQL backend with a health check that costs no round trip.

With ``CONN_HEALTH_CHECKS`` Django checks a persistent connection before its
first use in each request, and its check is a ``SELECT 1``: one more round
trip and one more statement on every request. Here the check looks at the
socket instead. Between requests an idle, healthy connection has nothing to
read; a server that restarts or terminates the backend sends its error and
closes the socket, which makes it readable. Either way such a connection is
dropped and the request gets a new one, as with Django's check.

What this cannot see (a peer that vanished without closing the socket) the
next query finds out; the unit of work retries a lost connection once on a
new one (``allocation.unit_of_work``).

It also keeps prepared statements (``prepare``): the few statements every
allocation runs are planned once per connection instead of once per request.
For simple statements PostgreSQL spends longer planning than executing them.
Prepared statements belong to the connection (a transaction's rollback keeps
them); a new connection starts with none. Such a connection also plans each
of them once (``plan_cache_mode = force_generic_plan``): left to itself,
PostgreSQL re-planned the write of an allocation, a statement of several
data-modifying CTEs whose arrays it cannot size, on every execution, and the
planning cost more than the execution. Every prepared statement here finds
its rows by key (a SKU, ids, a token), so one plan serves every value.
Prepared statements need a session of their own on the server: a direct
connection or session pooling, not a pooler in transaction mode that hands
the session to someone else between transactions.
"""

import itertools
import re
import select
from collections.abc import Sequence

from django.db.backends.postgresql import base

_names = itertools.count(1)
_PLACEHOLDER = re.compile(r"%s")
#: Plan each prepared statement once per connection (see the module).
GENERIC_PLANS = "SET plan_cache_mode = force_generic_plan"


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed:
            return False
        try:
            readable, _, _ = select.select([conn.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def init_connection_state(self) -> None:
        super().init_connection_state()
        if self.settings_dict.get("PREPARED_STATEMENTS", True):
            with self.connection.cursor() as cursor:
                cursor.execute(GENERIC_PLANS)
            if not self.get_autocommit():
                self.connection.commit()

    def get_new_connection(self, conn_params):
        self.prepared_statements: dict[str, str] = {}
        return super().get_new_connection(conn_params)

    def prepare(self, sql: str, params: Sequence) -> tuple[str, list]:
        """``sql`` (``%s`` placeholders) as an EXECUTE of a statement this connection prepared.

        With ``PREPARED_STATEMENTS`` off in the database settings (behind a
        pooler in transaction mode) ``sql`` and ``params`` come back as they are.
        """
        if not self.settings_dict.get("PREPARED_STATEMENTS", True):
            return sql, list(params)
        self.close_if_health_check_failed()
        self.ensure_connection()
        name = self.prepared_statements.get(sql)
        if name is None:
            if "%%" in sql or "%(" in sql:
                raise ValueError("prepare() takes %s placeholders only")
            numbers = itertools.count(1)
            numbered = _PLACEHOLDER.sub(lambda _: f"${next(numbers)}", sql)
            name = f"allocation_{next(_names)}"
            # Straight to the driver: preparing is bookkeeping, not a query of
            # the request (it happens once per connection).
            with self.wrap_database_errors, self.connection.cursor() as cursor:
                cursor.execute(f"PREPARE {name} AS {numbered}")
            self.prepared_statements[sql] = name
        if not params:
            return f"EXECUTE {name}", []
        return f"EXECUTE {name}({', '.join(['%s'] * len(params))})", list(params)
