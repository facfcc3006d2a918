"""Small helpers for driving the API and reading state back after every write."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from rest_framework.test import APIClient

SKU = "RED-CHAIR"

BATCH_KEYS = {
    "reference",
    "sku",
    "purchased_quantity",
    "eta",
    "status",
    "allocated_quantity",
    "available_quantity",
    "created_at",
}
LINE_KEYS = {"order_id", "sku", "qty", "status", "batches", "requested_at"}


def create_batch(
    api: APIClient, reference: str, sku: str = SKU, qty: int = 20, eta: str | None = None
) -> dict:
    body = {"reference": reference, "sku": sku, "purchased_quantity": qty}
    if eta is not None:
        body["eta"] = eta
    response = api.post("/api/batches/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def allocate(api: APIClient, order_id: str, sku: str = SKU, qty: int = 1):
    return api.post(
        "/api/allocations/", {"order_id": order_id, "sku": sku, "qty": qty}, format="json"
    )


def allocated(api: APIClient, order_id: str, sku: str = SKU, qty: int = 1) -> dict:
    response = allocate(api, order_id, sku, qty)
    assert response.status_code == 201, response.content
    return response.json()


def send(client: APIClient, method: str, path: str, body=None, **headers):
    """Any method with a JSON body (or none), e.g. to walk a list of (method, path, body)."""
    data = "" if body is None else json.dumps(body)
    return client.generic(method, path, data, content_type="application/json", **headers)


def get_batch(api: APIClient, reference: str) -> dict:
    response = api.get(f"/api/batches/{reference}/")
    assert response.status_code == 200, response.content
    return response.json()


def get_line(api: APIClient, order_id: str, sku: str = SKU) -> dict:
    response = api.get(f"/api/allocations/{order_id}/{sku}/")
    assert response.status_code == 200, response.content
    return response.json()


def get_product(api: APIClient, sku: str = SKU) -> dict:
    response = api.get(f"/api/products/{sku}/")
    assert response.status_code == 200, response.content
    return response.json()


def stock(api: APIClient, reference: str) -> tuple[int, int, int]:
    """(purchased, allocated, available) of a batch, read back over HTTP."""
    batch = get_batch(api, reference)
    return batch["purchased_quantity"], batch["allocated_quantity"], batch["available_quantity"]


def held(api: APIClient, reference: str) -> list[tuple[str, int]]:
    """The parts held on a batch, as (order_id, qty), read back over HTTP."""
    return [(a["order_id"], a["qty"]) for a in get_batch(api, reference)["allocations"]]


def placement(api: APIClient, order_id: str, sku: str = SKU) -> tuple[str, list[tuple[str, int]]]:
    """(status, [(batch reference, qty), ...]) of a line, read back over HTTP."""
    line = get_line(api, order_id, sku)
    return line["status"], [(p["reference"], p["qty"]) for p in line["batches"]]


def all_pages(api: APIClient, url: str) -> list[dict]:
    """Every result of a list, following ``next`` to the end."""
    results: list[dict] = []
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        results += body["results"]
        url = body["next"]
    return results


def assert_error(response, status: int, code: str) -> dict:
    """A ``{"detail", "code"}`` error body with this status and code."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def assert_field_errors(response, *fields: str) -> dict:
    """A 400 with DRF's field-error body naming exactly these fields."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == set(fields), body
    for field in fields:
        assert isinstance(body[field], list) and body[field], body
        assert all(isinstance(message, str) and message for message in body[field]), body
    return body


def assert_recent_timestamp(value: str) -> datetime:
    """An ISO 8601 UTC timestamp (``...Z``) from the last minute."""
    assert value.endswith("Z"), value
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None
    assert timedelta(0) <= datetime.now(UTC) - moment < timedelta(minutes=1)
    return moment


def line_body(
    order_id: str, qty: int, batches: list[tuple[str, int]], requested_at: str, sku: str = SKU
) -> dict:
    """The line representation SPEC 2.2 describes."""
    return {
        "order_id": order_id,
        "sku": sku,
        "qty": qty,
        "status": "allocated" if batches else "backordered",
        "batches": [{"reference": ref, "qty": q} for ref, q in batches],
        "requested_at": requested_at,
    }


def parts(*placed: tuple[str, int]) -> list[dict]:
    """``batches`` / ``previous_batches`` of an event: [{"reference", "qty"}, ...]."""
    return [{"reference": reference, "qty": qty} for reference, qty in placed]


class Feed:
    """Reads ``GET /api/events/`` from where it last stopped, as a consumer does (SPEC 6.1).

    ``unit(actor=..., source=...)`` returns the events written since the last
    read, as ``(type, sku, sku_seq, data)``, after checking that they are one
    unit of work: every one stamped with that actor and source, all sharing
    one ``transaction`` that no earlier read has seen, and ``?transaction=``
    finding exactly them. ``nothing()`` checks that no event was written.
    """

    def __init__(self, client: APIClient) -> None:
        self.client = client
        self.after = 0
        self.transactions: set[str] = set()

    def read(self) -> list[dict]:
        response = self.client.get(f"/api/events/?after={self.after}&limit=1000")
        assert response.status_code == 200, response.content
        body = response.json()
        assert [e["id"] for e in body["results"]] == sorted(e["id"] for e in body["results"])
        assert all(e["id"] > self.after for e in body["results"])
        self.after = body["next_after"]
        return body["results"]

    def unit(self, *, actor: str | None, source: str) -> list[tuple[str, str, int, dict]]:
        events = self.read()
        assert events, "no event was written"
        assert {(e["actor"], e["source"]) for e in events} == {(actor, source)}
        (transaction,) = {e["transaction"] for e in events}
        assert transaction not in self.transactions, "a transaction seen in an earlier read"
        self.transactions.add(transaction)
        same = self.client.get(f"/api/events/?transaction={transaction}&limit=1000").json()
        assert [e["id"] for e in same["results"]] == [e["id"] for e in events]
        return [(e["type"], e["sku"], e["sku_seq"], e["data"]) for e in events]

    def nothing(self) -> None:
        assert self.read() == []
