"""An admin paginator that does not count a million rows to show a page of 100.

Django's admin counts the changelist's rows on every page view (to number the
pages). For a filtered list that is a cheap, index-backed count; for a whole
big table it is a full scan. On PostgreSQL, when nothing filters the list,
this paginator counts at most ``EXACT_BELOW`` rows (one query, as before) and,
when there are more, takes the planner's row estimate instead
(``pg_class.reltuples``, kept current by autovacuum and ANALYZE): the page
says "about N", page links stay usable, and the page costs the same whatever
the table size.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

#: Up to this many rows an exact count is cheap enough.
EXACT_BELOW = 100_000


class EstimatedCountPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        query = queryset.query
        if (
            query.where  # filtered: an exact, index-backed count
            or query.distinct
            or query.combinator
            or connections[queryset.db].vendor != "postgresql"
        ):
            return super().count
        counted = queryset.order_by()[:EXACT_BELOW].count()
        if counted < EXACT_BELOW:
            return counted
        return max(counted, self._estimate(queryset))

    @staticmethod
    def _estimate(queryset) -> int:
        with connections[queryset.db].cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [queryset.model._meta.db_table],
            )
            row = cursor.fetchone()
        return row[0] if row else 0


class CappedCountPaginator(Paginator):
    """Counts at most ``CAP`` rows, filtered or not: for an append-only log whose every
    filter (a type, a source) can match millions. Pages beyond the cap are reached by
    filtering; a page costs the same however long the log grows."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        return queryset.order_by()[: self.CAP].count()
