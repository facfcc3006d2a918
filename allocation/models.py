"""ORM models: the persistence adapter for the domain.

These rows store what ``domain.model`` decides; the conversion both ways lives
in ``allocation.repository`` only. Import as ``from allocation import models as orm``.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import F, OrderBy, Q

from domain.events import EVENT_TYPES
from domain.model import PREFERENCE_ORDER, BatchStatus, LineStatus
from domain.validation import IDENTIFIER_MAX_LENGTH
from domain.webhooks import STATUSES as WEBHOOK_STATUSES


class IdentifierField(models.CharField):
    """A reference, SKU or order id: compared byte by byte on every engine.

    The domain orders ties by reference with Python's ``str`` comparison,
    SQLite compares text with BINARY; on PostgreSQL the column gets the "C"
    collation so lists, cursors and exports order exactly as the domain
    does, whatever locale the server was created with (and comparing bytes
    is also cheaper than a locale's rules).
    """

    # Set by CharField.__init__; django-stubs declares it as an argument only.
    db_collation: str | None

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", IDENTIFIER_MAX_LENGTH)
        super().__init__(*args, **kwargs)

    def db_parameters(self, connection):
        params = super().db_parameters(connection)
        if connection.vendor == "postgresql" and not self.db_collation:
            params["collation"] = "C"
        return params


class Product(models.Model):
    """One row per SKU: the row a unit of work locks to serialise a SKU's changes."""

    sku = IdentifierField(primary_key=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return self.sku


class BatchQuerySet(models.QuerySet):
    def in_preference_order(self) -> BatchQuerySet:
        """Rule 1 within each SKU, the same order on SQLite and PostgreSQL."""
        return self.order_by("product_id", *preference_order())

    def with_status(self, status: str) -> BatchQuerySet:
        """``in_stock`` or ``inbound`` batches (``BatchStatus``)."""
        if BatchStatus(status) is BatchStatus.IN_STOCK:
            return self.filter(IN_STOCK)
        return self.exclude(IN_STOCK)

    def with_stock(self) -> BatchQuerySet:
        return self.filter(allocated_quantity__lt=F("purchased_quantity"))


class Batch(models.Model):
    reference = IdentifierField()
    # No index of its own: batch_preference_idx starts with the SKU.
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, db_column="sku", related_name="batches", db_index=False
    )
    purchased_quantity = models.IntegerField()
    # Stored total of the parts on this batch, kept in step in the same
    # transaction as the parts themselves; the CHECK below is rule 5's
    # second line of defence.
    allocated_quantity = models.IntegerField(default=0)
    eta = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField()

    objects = BatchQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "batches"
        constraints = [
            # A constraint rather than unique=True: on PostgreSQL the latter
            # adds a second (varchar_pattern_ops) index that a "C" column
            # does not need, and every insert would pay for it.
            models.UniqueConstraint(fields=["reference"], name="batch_reference_unique"),
            models.CheckConstraint(
                condition=Q(purchased_quantity__gte=0), name="batch_purchased_quantity_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(allocated_quantity__gte=0)
                & Q(allocated_quantity__lte=F("purchased_quantity")),
                name="batch_allocated_within_purchased",
            ),
        ]
        indexes = [
            # Preference order within a SKU (lists, pick lists).
            models.Index(fields=["product", *PREFERENCE_ORDER], name="batch_preference_idx"),
            # The hot path's index, batch_with_stock_idx (a SKU's batches that
            # still have stock, in preference order), is created by migration
            # 0008 in SQL: its eta is NULLS FIRST, which PostgreSQL needs said
            # and SQLite cannot parse in an index (it puts NULL first anyway).
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def sku(self) -> str:
        return self.product_id

    @property
    def available_quantity(self) -> int:
        return self.purchased_quantity - self.allocated_quantity

    @property
    def status(self) -> BatchStatus:
        return BatchStatus.of(self.eta)


# -- rule 1 and "in stock" as queries ------------------------------------------
# The domain states both rules (``domain.model.PREFERENCE_ORDER``,
# ``BatchStatus.of``); every ORM ordering and filter of batches, and any raw
# SQL that orders them, takes them from here. tests/integration/
# test_preference_order.py checks that these orders and the domain's agree.


def _batch_field(name: str) -> models.Field[Any, Any]:
    """A field of rule 1: a column of the batch table."""
    field = Batch._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"Batch.{name} is not a column")
    return field


#: The fields of rule 1 that may be null. The domain puts a missing value
#: first (no eta: in stock); SQL engines disagree on where NULL goes
#: (SQLite first, PostgreSQL last), so it is said in every ORDER BY.
NULLS_FIRST = frozenset(name for name in PREFERENCE_ORDER if _batch_field(name).null)

#: "In stock" (``BatchStatus.of``: no eta) as a filter on batches.
IN_STOCK = Q(eta__isnull=True)


def _ascending(name: str, prefix: str = "") -> OrderBy:
    term = F(prefix + name)
    return term.asc(nulls_first=True) if name in NULLS_FIRST else term.asc()


def preference_order(prefix: str = "") -> list[OrderBy]:
    """Rule 1 as ORDER BY terms; ``prefix`` reaches the batch from another model (``"batch__"``)."""
    return [_ascending(name, prefix) for name in PREFERENCE_ORDER]


#: Sorting by status puts in-stock batches first, as rule 1 does.
IN_STOCK_FIRST = _ascending("eta")


def preference_order_sql(alias: str = "") -> str:
    """Rule 1 as the text of an ORDER BY over the batch table (``alias`` like ``"b."``)."""
    return ", ".join(
        f"{alias}{_batch_field(name).column}" + (" ASC NULLS FIRST" if name in NULLS_FIRST else "")
        for name in PREFERENCE_ORDER
    )


class OrderLine(models.Model):
    STATUS_CHOICES = [(s.value, s.value.replace("_", " ")) for s in LineStatus]

    order_id = IdentifierField()
    # Indexed by orderline_sku_idx below, not by the field: on PostgreSQL a
    # field index on a varchar adds a second (varchar_pattern_ops) index that
    # a "C" column does not need, and every insert would pay for it.
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, db_column="sku", related_name="lines", db_index=False
    )
    qty = models.IntegerField()
    status = models.CharField(max_length=16, choices=STATUS_CHOICES)
    requested_at = models.DateTimeField()
    allocated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "order line"
        constraints = [
            models.UniqueConstraint(
                fields=["order_id", "product"], name="orderline_unique_order_sku"
            ),
            models.CheckConstraint(condition=Q(qty__gt=0), name="orderline_qty_gt_0"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in LineStatus]), name="orderline_status_valid"
            ),
        ]
        indexes = [
            # A SKU's lines (lists, the admin, loading a SKU's backorders).
            models.Index(fields=["product"], name="orderline_sku_idx"),
            # Backorders of a SKU in request order (rule 9); partial, so small.
            models.Index(
                "product",
                "requested_at",
                name="orderline_backorder_idx",
                condition=Q(status=LineStatus.BACKORDERED.value),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} / {self.product_id} x{self.qty}"

    @property
    def sku(self) -> str:
        return self.product_id


class Allocation(models.Model):
    """A part of a line held on one batch (the parts of a line add up to its qty)."""

    # No index of its own: allocation_unique_line_batch starts with the line.
    line = models.ForeignKey(
        OrderLine, on_delete=models.CASCADE, related_name="parts", db_index=False
    )
    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="parts")
    qty = models.IntegerField()

    class Meta:
        verbose_name = "allocation part"
        constraints = [
            models.UniqueConstraint(fields=["line", "batch"], name="allocation_unique_line_batch"),
            models.CheckConstraint(condition=Q(qty__gt=0), name="allocation_qty_gt_0"),
        ]

    def __str__(self) -> str:
        return f"{self.line_id} on {self.batch_id} x{self.qty}"


class Event(models.Model):
    """One change of state, as published to fulfilment and kept for audit (SPEC 6).

    Written only by the repository, in the same transaction as the change it
    describes (``allocation.repository``); never updated or deleted. ``data``
    is the domain event's own ``data``; ``order_id`` is copied out of it for
    the feed's and the admin's filters. ``transaction`` is one opaque value
    per unit of work.
    """

    SOURCES = ["api", "admin", "cli", "migration"]

    type = models.CharField(max_length=32, choices=[(t, t) for t in EVENT_TYPES])
    sku = IdentifierField()
    # 1, 2, 3, ... per SKU: the SKU's lock serialises its writers, and the
    # unique constraint refuses a repeated number as a second line of defence.
    sku_seq = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    # Null, not "": the SPEC's event says null when nobody is named.
    actor = models.CharField(max_length=150, null=True, blank=True)  # noqa: DJ001
    source = models.CharField(max_length=16, choices=[(s, s) for s in SOURCES])
    # "transaction" is an SQL keyword: a plainer column name spares quoting.
    transaction = models.CharField(max_length=32, db_column="txn")
    order_id = IdentifierField(null=True, blank=True)
    data = models.JSONField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["sku", "sku_seq"], name="event_sku_seq_unique"),
        ]
        indexes = [
            # The feed's filters, each in id order so a page reads only its rows.
            models.Index(fields=["sku", "id"], name="event_sku_idx"),
            models.Index(
                fields=["order_id", "id"],
                name="event_order_idx",
                condition=Q(order_id__isnull=False),
            ),
            models.Index(fields=["transaction"], name="event_transaction_idx"),
            # ?batch= on PostgreSQL: a GIN index on data (migration 0003, PostgreSQL only).
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.type} {self.sku}"


class WebhookSubscription(models.Model):
    """A receiver of the events (SPEC 6.2), and how far delivery to it has got.

    Written through ``allocation.webhooks.repository`` only. ``delivered_through``
    is the id of the last event it acknowledged (the events it does not want
    count as passed too); ``attempts`` and ``next_attempt_at`` the failures in
    a row on the next one. ``secret`` holds the signing secret encrypted
    (``allocation.webhooks.secrets``), never as given. ``claimed_until``:
    on SQLite, which has no row locks, a deliverer owns the row until then.
    """

    url = models.URLField(max_length=2000)
    # Event types it receives; empty: all of them.
    types = models.JSONField(default=list, blank=True)
    secret = models.TextField()
    status = models.CharField(
        max_length=16, choices=[(s, s) for s in WEBHOOK_STATUSES], default=WEBHOOK_STATUSES[0]
    )
    delivered_through = models.BigIntegerField(default=0)
    last_error = models.TextField(null=True, blank=True)  # noqa: DJ001 - the SPEC says null
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "webhook subscription"

    def __str__(self) -> str:
        return f"#{self.id} {self.url}"
