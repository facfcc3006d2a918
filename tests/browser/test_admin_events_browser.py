"""The audit trail in the admin (SPEC 6.3), in a real browser: a warehouse ops user
lowers a batch, then finds what that did on the Events page, named after them.

The Events list shows type, SKU, order or batch, actor and source; each event's
own page shows its ``data`` (quantities and batches) and its ``transaction``.
Every step is read back from the database too, and leaves a screenshot.
"""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from allocation import models as orm
from allocation import services
from tests.browser.helpers import messages, submit
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

SKU = "RED-CHAIR"
#: The Events list's columns after the id, as the admin shows them.
COLUMNS = ("type", "sku", "subject", "actor", "source")


@pytest.fixture
def two_lines_on_b1(transactional_db) -> None:
    """b1 (in stock, 10) holds o1 (4, older) and o2 (5, newer); b2 (inbound, 5) is empty.

    Made by a command-line door (``source: cli``, no actor), so that only the
    admin's own change is ``admin``. o2 has a second line, on GREEN-LAMP.
    """
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10)
    services.add_batch(reference="b2", sku=SKU, purchased_quantity=5, eta=date(2026, 3, 1))
    services.add_batch(reference="g1", sku="GREEN-LAMP", purchased_quantity=5)
    services.allocate(order_id="o1", sku=SKU, qty=4)
    services.allocate(order_id="o2", sku=SKU, qty=5)
    services.allocate(order_id="o2", sku="GREEN-LAMP", qty=2)


@pytest.fixture
def wanda(groups):
    """A member of ``warehouse ops``: staff, not a superuser."""
    user = UserFactory(username="wanda")
    user.groups.add(Group.objects.get(name="warehouse ops"))
    assert not user.is_superuser
    return user


def open_batch(page, reference: str) -> None:
    page.goto("/admin/allocation/batch/")
    page.get_by_role("link", name=reference, exact=True).click()
    expect(page.locator("h1")).to_have_text("Change batch")
    expect(page.locator(".field-reference .readonly")).to_have_text(reference)


def lower_b1_to_3(page) -> None:
    """On b1's page, purchased 10 -> 3, below the 9 it holds: o1 (4) moves
    whole to b2, o2 (5) fits nowhere (3 left on b1 + 1 on b2) and waits."""
    open_batch(page, "b1")
    expect(page.locator("#held-allocations tbody tr")).to_have_count(2)
    page.fill("#id_purchased_quantity", "3")
    submit(page, "input[name=_save]")
    assert messages(page) == [
        "Reallocated: o1. Backordered: o2.",
        "The batch “b1” was changed successfully.",
    ]


def event_rows(page, count: int) -> list[tuple[int, ...]]:
    """(id, type, sku, order or batch, actor, source) of each row, newest first."""
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(count)
    return [
        (
            int(row.locator("th.field-id").inner_text()),
            *(row.locator(f"td.field-{name}").inner_text().strip() for name in COLUMNS),
        )
        for row in rows.all()
    ]


def event_page(page, event_id: int) -> dict:
    """Open an event from the list by its id, and read its page."""
    page.locator("#result_list th.field-id a", has_text=re.compile(rf"^{event_id}$")).click()
    expect(page.locator("h1")).to_have_text("View event")
    expect(page.locator(".field-id .readonly")).to_have_text(str(event_id))

    def shown(name: str) -> str:
        return page.locator(f".field-{name} .readonly").inner_text().strip()

    return {
        "type": shown("type"),
        "actor": shown("actor"),
        "source": shown("source"),
        "transaction": shown("transaction"),
        "data": json.loads(shown("data")),
    }


def test_lowering_a_batch_is_in_its_events_with_the_admin_user_and_source_admin(
    page, log_in, screenshot, two_lines_on_b1, wanda
):
    log_in(wanda)
    lower_b1_to_3(page)
    screenshot("1-b1-lowered")
    assert [
        (line.order_id, line.status, [(p.batch.reference, p.qty) for p in line.parts.all()])
        for line in orm.OrderLine.objects.filter(product_id=SKU).order_by("order_id")
    ] == [("o1", "allocated", [("b2", 4)]), ("o2", "backordered", [])]

    # b1's page links to every event naming b1: its own, and its lines'.
    open_batch(page, "b1")
    page.get_by_role("link", name="Every event naming this batch").click()
    expect(page).to_have_url(re.compile(r"/admin/allocation/event/\?batch=b1$"))
    rows = event_rows(page, 6)
    screenshot("2-events-of-b1")
    assert [row[1:] for row in rows] == [
        ("line_backordered", SKU, "o2", "wanda", "admin"),
        ("line_moved", SKU, "o1", "wanda", "admin"),
        ("batch_changed", SKU, "b1", "wanda", "admin"),
        ("line_allocated", SKU, "o2", "-", "cli"),
        ("line_allocated", SKU, "o1", "-", "cli"),
        ("batch_created", SKU, "b1", "-", "cli"),
    ]
    # The ids are the stored events', newest first, with the PATCH's three on top.
    backordered, moved, changed = (row[0] for row in rows[:3])
    assert [row[0] for row in rows] == list(
        orm.Event.objects.filter(sku=SKU)
        .exclude(type="batch_created", data__reference="b2")
        .order_by("-id")
        .values_list("id", flat=True)
    )
    assert backordered == moved + 1 == changed + 2

    # Each event's page: the quantities and batches, one transaction for the change.
    batch_changed = event_page(page, changed)
    screenshot("3-batch-changed")
    page.go_back()
    line_moved = event_page(page, moved)
    screenshot("4-line-moved")
    page.go_back()
    line_backordered = event_page(page, backordered)
    screenshot("5-line-backordered")
    assert batch_changed["data"] == {
        "reference": "b1",
        "purchased_quantity": 3,
        "eta": None,
        "previous": {"purchased_quantity": 10, "eta": None},
    }
    assert line_moved["data"] == {
        "order_id": "o1",
        "qty": 4,
        "batches": [{"reference": "b2", "qty": 4}],
        "previous_batches": [{"reference": "b1", "qty": 4}],
    }
    assert line_backordered["data"] == {
        "order_id": "o2",
        "qty": 5,
        "previous_batches": [{"reference": "b1", "qty": 5}],
    }
    shown = (batch_changed, line_moved, line_backordered)
    assert [(e["type"], e["actor"], e["source"]) for e in shown] == [
        ("batch_changed", "wanda", "admin"),
        ("line_moved", "wanda", "admin"),
        ("line_backordered", "wanda", "admin"),
    ]
    assert {e["transaction"] for e in shown} == {orm.Event.objects.get(id=changed).transaction}
    setup_transactions = set(
        orm.Event.objects.filter(id__lt=changed).values_list("transaction", flat=True)
    )
    assert batch_changed["transaction"] not in setup_transactions

    # The Events list filtered by source, from its sidebar: the admin's change only,
    # of every SKU and batch.
    page.goto("/admin/allocation/event/")
    event_rows(page, 9)
    page.locator("#changelist-filter").get_by_role("link", name="admin", exact=True).click()
    expect(page).to_have_url(re.compile(r"[?&]source__exact=admin"))
    assert event_rows(page, 3) == [
        (backordered, "line_backordered", SKU, "o2", "wanda", "admin"),
        (moved, "line_moved", SKU, "o1", "wanda", "admin"),
        (changed, "batch_changed", SKU, "b1", "wanda", "admin"),
    ]
    screenshot("6-events-from-the-admin")


@pytest.mark.parametrize(
    ("order_id", "latest", "events_of_the_order"),
    [("o1", "line_moved", 2), ("o2", "line_backordered", 3)],
)
def test_an_order_lines_page_links_to_the_events_of_that_line_only(
    page, log_in, screenshot, two_lines_on_b1, wanda, order_id, latest, events_of_the_order
):
    log_in(wanda)
    lower_b1_to_3(page)

    # The line's page, from the order lines list (o2 has a GREEN-LAMP line too).
    page.goto(f"/admin/allocation/orderline/?q={order_id}")
    row = page.locator(
        "#result_list tbody tr", has=page.locator("td.field-sku", has_text=re.compile(rf"^{SKU}$"))
    )
    expect(row).to_have_count(1)
    row.locator("th a").click()
    expect(page.locator(".field-order_id .readonly")).to_have_text(order_id)
    expect(page.locator(".field-sku .readonly")).to_have_text(SKU)

    page.get_by_role("link", name="Every event of this line").click()
    expect(page).to_have_url(
        re.compile(rf"/admin/allocation/event/\?order_id={order_id}&sku={SKU}$")
    )
    rows = event_rows(page, 2)
    screenshot(f"events-of-{order_id}")
    assert [row[1:] for row in rows] == [
        (latest, SKU, order_id, "wanda", "admin"),
        ("line_allocated", SKU, order_id, "-", "cli"),
    ]
    assert [row[0] for row in rows] == list(
        orm.Event.objects.filter(order_id=order_id, sku=SKU)
        .order_by("-id")
        .values_list("id", flat=True)
    )
    # Not the order's other lines: o2's GREEN-LAMP line has an event of its own.
    assert orm.Event.objects.filter(order_id=order_id).count() == events_of_the_order
