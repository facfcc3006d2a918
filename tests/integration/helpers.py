"""What several integration test modules read back or set up the same way.

Stored lines as the tests compare them, the admin's messages, threads released
together, a SKU with a long history. (Running commands: ``cmd_support``.)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from django.contrib.messages import get_messages
from django.db import connections, transaction
from django.utils.html import strip_tags
from rest_framework.authtoken.models import Token

from allocation import models as orm
from tests.factories import (
    AllocationRowFactory,
    BatchRowFactory,
    OrderLineRowFactory,
    ProductFactory,
    UserFactory,
    tick,
)

# -- stored lines ------------------------------------------------------------------------


def lines() -> list[tuple]:
    """Every stored line as (order_id, sku, qty, status, [(batch reference, qty), ...]),
    by order id and SKU."""
    result = []
    for line in orm.OrderLine.objects.order_by("order_id", "product_id"):
        parts = sorted((p.batch.reference, p.qty) for p in line.parts.select_related("batch"))
        result.append((line.order_id, line.product_id, line.qty, line.status, parts))
    return result


def placements() -> dict[tuple[str, str], tuple[str, list[tuple[str, int]]]]:
    """{(order_id, sku): (status, [(batch reference, qty), ...])} as stored."""
    return {
        (line.order_id, line.product_id): (
            line.status,
            sorted((p.batch.reference, p.qty) for p in line.parts.select_related("batch")),
        )
        for line in orm.OrderLine.objects.all()
    }


# -- the admin ---------------------------------------------------------------------------


def messages_of(response) -> list[str]:
    """The messages an admin response left for the user, as plain text."""
    return [strip_tags(str(m)) for m in get_messages(response.wsgi_request)]


# -- concurrency -------------------------------------------------------------------------


def run_concurrently(n: int, work) -> list:
    """Run ``work(i)`` in n threads released together; each closes its own connection."""
    barrier = threading.Barrier(n)

    def task(i):
        try:
            barrier.wait(timeout=30)
            return work(i)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(task, range(n)))


@contextlib.contextmanager
def held_open(work: Callable[[], object]) -> Iterator[None]:
    """Run ``work()`` in a thread, in a transaction kept open until the block ends.

    The block runs once ``work`` is done and its transaction still holds
    what it wrote and locked; leaving the block lets it commit, and waits.
    """
    holding, release = threading.Event(), threading.Event()

    def run() -> None:
        try:
            with transaction.atomic():
                work()
                holding.set()
                assert release.wait(timeout=30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert holding.wait(timeout=30)
        yield
    finally:
        release.set()
        thread.join(timeout=30)


def token_header() -> str:
    """An ``Authorization`` header value for a new superuser, ``clerk``."""
    user = UserFactory(username="clerk", is_superuser=True)
    return f"Token {Token.objects.create(user=user).key}"


# -- query budgets: a SKU with history ---------------------------------------------------


def stock_for(sku: str) -> orm.Product:
    """A SKU with a batch in the warehouse and an inbound one, both with stock."""
    product = ProductFactory(sku=sku)
    BatchRowFactory(reference=f"{sku}-stock", product=product, purchased_quantity=10_000)
    BatchRowFactory(
        reference=f"{sku}-inbound", product=product, purchased_quantity=10_000, eta=date(2027, 1, 1)
    )
    return product


def give_history(product: orm.Product, lines: int) -> None:
    """``lines`` past allocated lines of qty 1 on used-up batches of ``product``."""
    used_up = BatchRowFactory.create_batch(
        lines // 100, product=product, purchased_quantity=100, allocated_quantity=100
    )
    past = orm.OrderLine.objects.bulk_create(
        OrderLineRowFactory.build(
            order_id=f"past-{n}", product=product, requested_at=tick(n), allocated_at=tick(n)
        )
        for n in range(lines)
    )
    orm.Allocation.objects.bulk_create(
        AllocationRowFactory.build(line=line, batch=used_up[n // 100], qty=1)
        for n, line in enumerate(past)
    )
