"""Domain errors: plain exceptions that carry data and know nothing of HTTP.

Each carries its machine ``code`` (SPEC 2's error table: the API's ``code``,
the ``allocate_orders`` report's outcome). Errors about one field of the
input (``field`` set) are reported as that field's error instead.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every rule the domain refuses to break."""

    code = "invalid"
    #: The input field the error is about, when it is about one.
    field: str | None = None

    def details(self) -> dict[str, object]:
        """The data a client needs beyond the sentence (SPEC 2: ``out_of_stock``)."""
        return {}


class NotFound(DomainError):
    """Something named by the caller does not exist."""

    code = "not_found"


class BatchNotFound(NotFound):
    def __init__(self, reference: str) -> None:
        self.reference = reference
        super().__init__(f"No batch with reference {reference!r}.")


class LineNotFound(NotFound):
    def __init__(self, order_id: str, sku: str) -> None:
        self.order_id = order_id
        self.sku = sku
        super().__init__(f"No order line {order_id!r} for SKU {sku!r}.")


class OrderNotFound(NotFound):
    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"No order lines for order {order_id!r}.")


class ProductNotFound(NotFound):
    def __init__(self, sku: str) -> None:
        self.sku = sku
        super().__init__(f"No product with SKU {sku!r}.")


class DuplicateBatch(DomainError):
    code = "duplicate_batch"

    def __init__(self, reference: str) -> None:
        self.reference = reference
        super().__init__(f"A batch with reference {reference!r} already exists.")


class SkuChange(DomainError):
    """A batch's SKU is fixed once the batch exists."""

    field = "sku"

    def __init__(self, reference: str, sku: str, requested_sku: str) -> None:
        self.reference = reference
        self.sku = sku
        self.requested_sku = requested_sku
        super().__init__(
            f"Batch {reference!r} holds SKU {sku!r}; its SKU cannot change to {requested_sku!r}."
        )


class InvalidSku(DomainError):
    """Rule: a SKU with no batches at all cannot be allocated."""

    code = "invalid_sku"

    def __init__(self, sku: str) -> None:
        self.sku = sku
        super().__init__(f"SKU {sku!r} has no batches.")


class OutOfStock(DomainError):
    """Rule 4: no batch, nor all of them together, can cover the line."""

    code = "out_of_stock"

    def __init__(self, sku: str, requested: int, available: int) -> None:
        self.sku = sku
        self.requested = requested
        self.available = available
        super().__init__(
            f"Out of stock for SKU {sku!r}: {requested} requested, {available} available."
        )

    def details(self) -> dict[str, object]:
        return {"sku": self.sku, "requested": self.requested, "available": self.available}


class LineConflict(DomainError):
    """Rule 6: the line exists already with another quantity."""

    code = "line_conflict"

    def __init__(self, order_id: str, sku: str, qty: int, requested: int) -> None:
        self.order_id = order_id
        self.sku = sku
        self.qty = qty
        self.requested = requested
        super().__init__(
            f"Order line {order_id!r} for SKU {sku!r} is already recorded with qty {qty}, "
            f"not {requested}; deallocate it first to change it."
        )


class InvalidQuantity(DomainError):
    def __init__(self, field: str, value: int, minimum: int, maximum: int) -> None:
        self.field: str | None = field
        self.value = value
        super().__init__(f"{field} must be between {minimum} and {maximum}, not {value}.")


class OrderLineConflict(LineConflict):
    """Rule 6 for a line of an order: the body names the SKU (SPEC 2.5)."""

    def details(self) -> dict[str, object]:
        return {"sku": self.sku}


class UnknownSkus(DomainError):
    """An order names SKUs that have no batches at all (``invalid_sku`` for an order)."""

    code = "invalid_sku"

    def __init__(self, skus: list[str]) -> None:
        self.skus = skus
        names = ", ".join(repr(sku) for sku in skus)
        super().__init__(f"These SKUs have no batches: {names}.")

    def details(self) -> dict[str, object]:
        return {"skus": self.skus}


class Shortage:
    """One line of an order that does not fit: what it asks and what is left."""

    def __init__(self, sku: str, requested: int, available: int) -> None:
        self.sku = sku
        self.requested = requested
        self.available = available

    def as_dict(self) -> dict[str, object]:
        return {"sku": self.sku, "requested": self.requested, "available": self.available}


class OrderOutOfStock(DomainError):
    """Rule 4 for an order: some of its new lines do not fit, so none is recorded."""

    code = "out_of_stock"

    def __init__(self, order_id: str, shortages: list[Shortage]) -> None:
        self.order_id = order_id
        self.shortages = shortages
        skus = ", ".join(repr(s.sku) for s in shortages)
        super().__init__(
            f"Out of stock for order {order_id!r}: not enough of {skus}; nothing was allocated."
        )

    def details(self) -> dict[str, object]:
        return {"lines": [shortage.as_dict() for shortage in self.shortages]}


class SubscriptionNotFound(NotFound):
    def __init__(self, subscription_id: int) -> None:
        self.subscription_id = subscription_id
        super().__init__(f"No webhook subscription with id {subscription_id}.")
