"""Concurrent orders sharing SKUs (SPEC 2.5): all or nothing, no deadlock, no oversell.

Real threads against one database: on PostgreSQL each order locks its SKUs'
rows in sorted order, so orders that share SKUs queue on the first one they
share instead of deadlocking; on SQLite writers queue on the database lock.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from rest_framework.test import APIClient

from allocation import models as orm
from allocation import services
from tests.integration.helpers import run_concurrently, token_header

pytestmark = pytest.mark.django_db(transaction=True)

SHARED = [f"SKU-{n}" for n in range(1, 8)]


def test_forty_concurrent_orders_over_shared_skus_allocate_exactly_twenty_in_full():
    # Every order needs one KEY, and there are 20: exactly 20 orders fit,
    # whatever order they commit in. The 7 other SKUs have room for all 40.
    services.add_batch(reference="key", sku="KEY", purchased_quantity=20)
    for sku in SHARED:
        services.add_batch(reference=f"{sku}-a", sku=sku, purchased_quantity=40)
        services.add_batch(reference=f"{sku}-b", sku=sku, purchased_quantity=40, eta=None)
    header = token_header()
    rng = random.Random(7)
    # 5 lines per order over 8 SKUs, listed in a shuffled order: the service
    # must sort them to lock without deadlocks.
    orders = []
    for _ in range(40):
        lines = [("KEY", 1)] + [(sku, 3) for sku in rng.sample(SHARED, 4)]
        rng.shuffle(lines)
        orders.append(lines)

    def place(i):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        body = {"order_id": f"o{i}", "lines": [{"sku": s, "qty": q} for s, q in orders[i]]}
        response = client.post("/api/orders/", body, format="json")
        return response.status_code, response.json().get("code")

    results = run_concurrently(40, place)

    assert Counter(results) == {(201, None): 20, (409, "out_of_stock"): 20}
    lines_per_order = Counter(orm.OrderLine.objects.values_list("order_id", flat=True))
    assert sorted(lines_per_order.values()) == [5] * 20  # each allocated order in full
    allocated = {f"o{i}" for i, (code, _) in enumerate(results) if code == 201}
    assert set(lines_per_order) == allocated  # refused orders recorded nothing
    for batch in orm.Batch.objects.all():
        held = sum(batch.parts.values_list("qty", flat=True))
        assert 0 <= batch.allocated_quantity == held <= batch.purchased_quantity
    assert orm.Batch.objects.get(reference="key").allocated_quantity == 20
    assert orm.OrderLine.objects.exclude(status="allocated").count() == 0
