"""SPEC 6.1: a consumer following ``after`` sees every event exactly once, in id order,
even when transactions commit in another order than they took their ids."""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection, connections

from allocation import models as orm
from allocation import selectors, services
from tests.integration.helpers import held_open

pytestmark = pytest.mark.django_db(transaction=True)


def follow(after: int) -> tuple[list[int], int]:
    """One poll of the feed, as a consumer does: the ids served and the next ``after``."""
    events = selectors.event_page(selectors.EventQuery(after=after, limit=1000))
    return [e.id for e in events], (events[-1].id if events else after)


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
def test_an_event_committed_after_a_later_id_is_not_skipped():
    services.add_batch(reference="a1", sku="A", purchased_quantity=10)
    services.add_batch(reference="b1", sku="B", purchased_quantity=10)
    _, after = follow(0)

    def fast_writer():
        try:
            services.allocate(order_id="fast", sku="B", qty=1)  # the higher id, committed
        finally:
            connections.close_all()

    # The slow writer's event (the lower id) is written, then its transaction waits.
    with held_open(lambda: services.allocate(order_id="slow", sku="A", qty=1)):
        fast = threading.Thread(target=fast_writer)
        fast.start()
        fast.join(timeout=30)

        # The higher id is committed and visible; the lower one is not yet.
        committed = list(orm.Event.objects.filter(id__gt=after).values_list("id", "sku"))
        assert len(committed) == 1 and committed[0][1] == "B"
        # The feed holds it back: serving it now would make the consumer skip A's.
        seen, after_hold = follow(after)
        assert (seen, after_hold) == ([], after)

    seen, last = follow(after_hold)
    events = list(orm.Event.objects.filter(id__gt=after).order_by("id"))
    assert [e.sku for e in events] == ["A", "B"]
    assert seen == [e.id for e in events]
    assert last == events[-1].id


def test_a_polling_consumer_sees_every_event_once_in_order_while_many_skus_are_written():
    skus = [f"S{n}" for n in range(6)]
    for sku in skus:
        services.add_batch(reference=f"{sku}-b", sku=sku, purchased_quantity=1000)
    done = threading.Event()
    received: list[int] = []
    errors: list[BaseException] = []

    def consumer():
        try:
            after = 0
            while True:
                finished = done.is_set()
                seen, after = follow(after)
                received.extend(seen)
                if finished and not seen:
                    return
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)
        finally:
            connections.close_all()

    def writer(n: int):
        try:
            rng = random.Random(n)
            for k in range(12):
                sku = rng.choice(skus)
                services.allocate(order_id=f"w{n}-{k}", sku=sku, qty=1)
                if k % 4 == 3:
                    services.deallocate(order_id=f"w{n}-{k}", sku=sku)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)
        finally:
            connections.close_all()

    reader = threading.Thread(target=consumer)
    reader.start()
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    done.set()
    reader.join(timeout=120)

    assert errors == []
    stored = list(orm.Event.objects.order_by("id").values_list("id", flat=True))
    # 6 batches, then 6 writers x (12 allocations + 3 deallocations).
    assert len(stored) == 6 + 6 * 15
    assert received == stored  # every one, once, in increasing id order
    for sku in skus:
        seqs = list(
            orm.Event.objects.filter(sku=sku).order_by("id").values_list("sku_seq", flat=True)
        )
        assert seqs == list(range(1, len(seqs) + 1))
