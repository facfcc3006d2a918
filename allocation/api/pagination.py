"""Keyset (cursor) pagination: every page costs what the first one does.

A page ends at a row; the ``next`` link carries that row's sort key, and the
next page is the rows after it in the list's order, found through the same
index a first page uses. Nothing is counted and nothing is skipped with an
OFFSET, so page 9,000 of a million rows is as cheap as page 1, and rows
inserted or deleted meanwhile never make a client see a row twice or miss one
that stayed put.

The response is ``{"next", "previous", "results"}`` (SPEC 2); there is no
``count``, which would cost a scan of every matching row on each page. The
cursor is opaque to clients: they follow ``next``. ``?page_size=`` is up to
1000 (larger is capped; non-positive or junk gives the default of 100).

Each list view names its order with ``keyset``: model fields, ascending,
ending with a unique one; nullable fields sort first when null (as ``eta``
does in preference order).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import F, Q
from rest_framework.exceptions import NotFound
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param


@dataclass(frozen=True)
class Keyset:
    """A list's order: ``fields`` ascending (the last one unique), ``nullable`` ones nulls first."""

    fields: tuple[str, ...]
    nullable: frozenset[str] = frozenset()

    def ordering(self, *, reverse: bool = False) -> list:
        order = []
        for name in self.fields:
            if name in self.nullable:
                # Nulls first going forward, so nulls last going back.
                term = F(name).desc(nulls_last=True) if reverse else F(name).asc(nulls_first=True)
            else:
                term = F(name).desc() if reverse else F(name).asc()
            order.append(term)
        return order

    def beyond(self, key: list, *, reverse: bool = False) -> Q:
        """Rows strictly after ``key`` in this order (before it when ``reverse``)."""
        condition: Q | None = None
        # Built from the last field back: (a > x) | (a = x & (b > y | (b = y & ...))).
        for name, value in reversed(list(zip(self.fields, key, strict=True))):
            past = self._past(name, value, reverse)
            if condition is None:
                condition = past
            else:
                same = Q(**{f"{name}__isnull": True}) if value is None else Q(**{name: value})
                condition = past | (same & condition)
        # The first field bounds the index scan; the OR above would not by itself.
        first, value = self.fields[0], key[0]
        bound = Q(**{f"{first}__lte" if reverse else f"{first}__gte": value})
        if condition is None:
            raise ValueError("a keyset orders by at least one field")
        return bound & condition

    def _past(self, name: str, value, reverse: bool) -> Q:
        nullable = name in self.nullable
        if value is None:
            # Null sorts first: every non-null is after it, nothing is before it.
            return Q(pk__in=[]) if reverse else Q(**{f"{name}__isnull": False})
        if reverse:
            before = Q(**{f"{name}__lt": value})
            return before | Q(**{f"{name}__isnull": True}) if nullable else before
        return Q(**{f"{name}__gt": value})

    def key_of(self, row) -> list:
        return [_attribute(row, name) for name in self.fields]


def _attribute(row, name: str):
    value = getattr(row, name)
    return value.isoformat() if hasattr(value, "isoformat") else value


def _encode(key: list, reverse: bool) -> str:
    raw = json.dumps({"k": key, "r": reverse}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, keyset: Keyset, model) -> tuple[list, bool]:
    """The key and direction a cursor carries; 404 for anything that is not one of ours."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        key, reverse = data["k"], data["r"]
        if not isinstance(key, list) or len(key) != len(keyset.fields):
            raise ValueError("wrong key")
        if not isinstance(reverse, bool):
            raise ValueError("wrong direction")
        values: list[object] = []
        for name, value in zip(keyset.fields, key, strict=True):
            if value is None and name in keyset.nullable:
                values.append(None)
            elif isinstance(value, str) and "\x00" in value:
                # PostgreSQL refuses NUL in a query: no row can have one anyway.
                raise ValueError(f"wrong {name}")
            elif isinstance(value, str | int) and not isinstance(value, bool):
                values.append(model._meta.get_field(name).to_python(value))
            else:
                raise ValueError(f"wrong {name}")
    except (ValueError, TypeError, KeyError, binascii.Error, ValidationError) as error:
        raise NotFound("Invalid cursor.") from error
    return values, reverse


class Pagination(BasePagination):
    page_size = 100
    max_page_size = 1000
    page_size_query_param = "page_size"
    cursor_query_param = "cursor"

    def paginate_queryset(self, queryset, request, view=None):
        keyset: Keyset = view.keyset
        size = self.get_page_size(request)
        cursor = request.query_params.get(self.cursor_query_param)
        reverse = False
        if cursor:
            key, reverse = _decode(cursor, keyset, queryset.model)
            queryset = queryset.filter(keyset.beyond(key, reverse=reverse))
        # One row more than the page tells whether the list goes on.
        rows = list(queryset.order_by(*keyset.ordering(reverse=reverse))[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        if reverse:
            rows.reverse()
        self.base_url = request.build_absolute_uri()
        self.next_key = self.previous_key = None
        if rows:
            # Forward, a page after this one exists if there was a row more,
            # and one before it if a cursor brought us here; backward, the
            # other way round.
            if (more and not reverse) or reverse:
                self.next_key = keyset.key_of(rows[-1])
            if (more and reverse) or (cursor and not reverse):
                self.previous_key = keyset.key_of(rows[0])
        return rows

    def get_page_size(self, request) -> int:
        """``?page_size=``: a positive integer, capped at the maximum; else the default."""
        try:
            size = int(request.query_params[self.page_size_query_param])
        except (KeyError, ValueError):
            return self.page_size
        return min(size, self.max_page_size) if size > 0 else self.page_size

    def _link(self, key: list | None, *, reverse: bool) -> str | None:
        if key is None:
            return None
        return replace_query_param(self.base_url, self.cursor_query_param, _encode(key, reverse))

    def get_next_link(self) -> str | None:
        return self._link(self.next_key, reverse=False)

    def get_previous_link(self) -> str | None:
        return self._link(self.previous_key, reverse=True)

    def get_paginated_response(self, data):
        return Response(
            {"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data}
        )

    def get_paginated_response_schema(self, schema):
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {"next": link, "previous": link, "results": schema},
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Where the page starts: follow the next and previous links.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": "Results per page: 1-1000, default 100 (more is capped at 1000).",
                "schema": {"type": "integer"},
            },
        ]
