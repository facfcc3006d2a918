"""What changed: the events a Product records as the rules change its state (SPEC 6).

Each event is a frozen value with its SPEC type name (``type``) and its
``data`` exactly as the feed publishes it, so the repository stores
``data`` as it is and nothing outside the domain re-derives what happened.
Events know nothing of ids, times, actors or transactions: those belong to
whoever stores them.

``Product`` appends them to ``product.events`` in the order the changes
happen (a lowering PATCH: ``batch_changed``, then one ``line_moved`` or
``line_backordered`` per line taken off, then ``line_allocated`` for each
backorder served); the repository writes them with the change and empties
the list.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from domain.model import Part

#: A line's parts as (batch reference, qty) pairs, in preference order.
Placement = tuple[tuple[str, int], ...]


def placement(parts: Iterable[Part]) -> Placement:
    """A line's parts (``Part`` objects, already in preference order) as a hashable value."""
    return tuple((part.batch_reference, part.qty) for part in parts)


def _parts(value: Placement) -> list[dict[str, Any]]:
    return [{"reference": reference, "qty": qty} for reference, qty in value]


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class Event(abc.ABC):
    """Base of every event: the SKU it belongs to; subclasses add their fields and ``data``."""

    type: ClassVar[str]
    sku: str

    @property
    @abc.abstractmethod
    def data(self) -> dict[str, Any]:
        """The event's ``data`` exactly as the feed publishes it (SPEC 6)."""


@dataclass(frozen=True)
class BatchCreated(Event):
    type: ClassVar[str] = "batch_created"
    reference: str
    purchased_quantity: int
    eta: date | None

    @property
    def data(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "purchased_quantity": self.purchased_quantity,
            "eta": _day(self.eta),
        }


@dataclass(frozen=True)
class BatchChanged(Event):
    type: ClassVar[str] = "batch_changed"
    reference: str
    purchased_quantity: int
    eta: date | None
    previous_purchased_quantity: int
    previous_eta: date | None

    @property
    def data(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "purchased_quantity": self.purchased_quantity,
            "eta": _day(self.eta),
            "previous": {
                "purchased_quantity": self.previous_purchased_quantity,
                "eta": _day(self.previous_eta),
            },
        }


@dataclass(frozen=True)
class BatchDeleted(Event):
    type: ClassVar[str] = "batch_deleted"
    reference: str

    @property
    def data(self) -> dict[str, Any]:
        return {"reference": self.reference}


@dataclass(frozen=True)
class LineEvent(Event):
    """An event about one order line (its ``order_id`` is stored apart for fast filters)."""

    order_id: str
    qty: int

    @property
    def data(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "qty": self.qty, **self.placements()}

    @abc.abstractmethod
    def placements(self) -> dict[str, Any]:
        """What the event says of where the line ships from (SPEC 6's table)."""


@dataclass(frozen=True)
class LineAllocated(LineEvent):
    """A new line placed (``previous_status`` None), or a backorder served (rule 9)."""

    type: ClassVar[str] = "line_allocated"
    batches: Placement
    previous_status: str | None

    def placements(self) -> dict[str, Any]:
        return {"batches": _parts(self.batches), "previous_status": self.previous_status}


@dataclass(frozen=True)
class LineMoved(LineEvent):
    """Rule 8 placed a line taken off a batch again."""

    type: ClassVar[str] = "line_moved"
    batches: Placement
    previous_batches: Placement

    def placements(self) -> dict[str, Any]:
        return {
            "batches": _parts(self.batches),
            "previous_batches": _parts(self.previous_batches),
        }


@dataclass(frozen=True)
class LineBackordered(LineEvent):
    """Rule 8 found no place for a line taken off a batch."""

    type: ClassVar[str] = "line_backordered"
    previous_batches: Placement

    def placements(self) -> dict[str, Any]:
        return {"previous_batches": _parts(self.previous_batches)}


@dataclass(frozen=True)
class LineDeallocated(LineEvent):
    """Rule 7; ``previous_batches`` is empty for a line that was backordered."""

    type: ClassVar[str] = "line_deallocated"
    previous_batches: Placement

    def placements(self) -> dict[str, Any]:
        return {"previous_batches": _parts(self.previous_batches)}


#: Every event type, by its SPEC name.
EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        BatchCreated,
        BatchChanged,
        BatchDeleted,
        LineAllocated,
        LineMoved,
        LineBackordered,
        LineDeallocated,
    )
}


def batch_references(data: dict[str, Any]) -> set[str]:
    """Every batch an event's ``data`` names (the feed's ``?batch=`` filter)."""
    refs = {data["reference"]} if "reference" in data else set()
    for key in ("batches", "previous_batches"):
        refs.update(part["reference"] for part in data.get(key, ()))
    return refs
