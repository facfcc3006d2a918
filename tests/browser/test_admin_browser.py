"""The admin as ops use it, in a real browser (Playwright + Debian's chromium).

State is read back through the API or the database after each step, and
every test leaves screenshots in test-artifacts/screenshots/.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from allocation import models as orm
from allocation import services
from tests.browser.helpers import messages, submit
from tests.factories import UserFactory

# The browser marker and the skip without chromium come from conftest.py.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ops_user(transactional_db):
    return UserFactory(username="otto", is_superuser=True)


@pytest.fixture
def api(page, ops_user):
    """``api(method, path, body=None)``: the API with the ops user's token, from the page."""
    token, _ = Token.objects.get_or_create(user=ops_user)
    headers = {"Authorization": f"Token {token.key}"}

    def call(method: str, path: str, body: dict | None = None):
        response = page.request.fetch(path, method=method, data=body, headers=headers)
        return response.status, (response.json() if response.body() else None)

    return call


def add_batch_in_admin(page, reference: str, sku: str, quantity: str, eta: str = "") -> None:
    page.goto("/admin/allocation/batch/add/")
    page.fill("#id_reference", reference)
    page.fill("#id_sku", sku)
    page.fill("#id_purchased_quantity", quantity)
    page.fill("#id_eta", eta)
    submit(page, "input[name=_save]")


def test_ops_story_add_allocate_lower_deallocate_and_look_at_stock(
    page, log_in, ops_user, api, screenshot
):
    # Log in: the index links to the stock overview.
    log_in(ops_user)
    expect(page.locator("#stock-overview-link")).to_have_text("Stock overview")
    screenshot("1-index")

    # Add two batches through the admin form: in stock and inbound.
    add_batch_in_admin(page, "b1", "RED-CHAIR", "10")
    assert messages(page) == ["The batch “b1” was added successfully."]
    add_batch_in_admin(page, "b2", "RED-CHAIR", "5", eta="2026-03-01")
    assert messages(page) == ["The batch “b2” was added successfully."]
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    screenshot("2-batches-added")

    # Allocate two lines through the API: both fit on b1 (in stock first).
    assert (
        api("POST", "/api/allocations/", {"order_id": "o1", "sku": "RED-CHAIR", "qty": 4})[0] == 201
    )
    status, body = api(
        "POST", "/api/allocations/", {"order_id": "o2", "sku": "RED-CHAIR", "qty": 5}
    )
    assert (status, body["batches"]) == (201, [{"reference": "b1", "qty": 5}])

    # Lower b1 to nothing in the admin: o1 moves to b2, o2 no longer fits anywhere.
    page.goto("/admin/allocation/batch/")
    page.get_by_role("link", name="b1", exact=True).click()
    expect(page.locator("#held-allocations tbody tr")).to_have_count(2)
    page.fill("#id_purchased_quantity", "0")
    submit(page, "input[name=_save]")
    assert messages(page) == [
        "Reallocated: o1. Backordered: o2.",
        "The batch “b1” was changed successfully.",
    ]
    expect(page.locator("ul.messagelist li.warning")).to_have_text(
        "Reallocated: o1. Backordered: o2."
    )
    screenshot("3-quantity-lowered")
    assert api("GET", "/api/allocations/o1/RED-CHAIR/")[1]["batches"] == [
        {"reference": "b2", "qty": 4}
    ]
    assert api("GET", "/api/allocations/o2/RED-CHAIR/")[1]["status"] == "backordered"

    # The backorder stands out in the order lines list.
    page.goto("/admin/allocation/orderline/")
    o2 = page.locator("#result_list tbody tr", has=page.locator("th", has_text=re.compile(r"^o2$")))
    expect(o2.locator(".line-status-backordered")).to_have_text("backordered")
    screenshot("4-order-lines")

    # Deallocate o1 with the action: with o1's 4 freed, b2 has the 5 that o2 waits for.
    o1 = page.locator("#result_list tbody tr", has=page.locator("th", has_text=re.compile(r"^o1$")))
    o1.locator("input.action-select").check()
    page.select_option("select[name=action]", "deallocate_lines")
    submit(page, "button[name=index]")
    assert messages(page) == [
        "Deallocated 1 line: o1 (RED-CHAIR).",
        "Served backorders: o2 (RED-CHAIR).",
    ]
    screenshot("5-deallocated")
    status, body = api("GET", "/api/allocations/o2/RED-CHAIR/")
    assert (body["status"], body["batches"]) == ("allocated", [{"reference": "b2", "qty": 5}])
    assert api("GET", "/api/allocations/o1/RED-CHAIR/")[0] == 404

    # Another SKU, half allocated, so the overview has a bar worth looking at.
    assert (
        api(
            "POST",
            "/api/batches/",
            {"reference": "g1", "sku": "GREEN-LAMP", "purchased_quantity": 8},
        )[0]
        == 201
    )
    assert (
        api("POST", "/api/allocations/", {"order_id": "o3", "sku": "GREEN-LAMP", "qty": 2})[0]
        == 201
    )

    # The stock overview, opened from the admin index.
    page.goto("/admin/")
    page.click("#stock-overview-link")
    expect(page.locator("h1")).to_have_text("Stock overview")
    red = page.locator("#sku-RED-CHAIR td")
    expect(red).to_have_text(["2", "5", "5", "0", "0", ""])
    green = page.locator("#sku-GREEN-LAMP td")
    expect(green).to_have_text(["1", "8", "2", "6", "0", ""])
    allocated_bar = page.locator("#sku-GREEN-LAMP .stock-bar .allocated")
    assert allocated_bar.get_attribute("style") == "width: 25.0%"
    bar_width = page.locator("#sku-GREEN-LAMP .stock-bar").bounding_box()["width"]
    assert allocated_bar.bounding_box()["width"] == pytest.approx(bar_width / 4, abs=1.5)
    screenshot("6-stock-overview")


def test_invalid_quantity_shows_the_form_again_with_the_error(page, log_in, ops_user, screenshot):
    services.add_batch(reference="b1", sku="RED-CHAIR", purchased_quantity=10)
    log_in(ops_user)

    add_batch_in_admin(page, "b1", "RED-CHAIR", "-3", eta="2026-02-30")

    expect(page.locator("p.errornote")).to_contain_text("Please correct the errors below.")
    errors = page.locator(".errorlist").all_inner_texts()
    assert errors == [
        "A batch with this reference already exists.",
        "Ensure this value is greater than or equal to 0.",
        "Enter a valid date.",
    ]
    screenshot("form-errors")
    assert list(orm.Batch.objects.values_list("reference", "purchased_quantity")) == [("b1", 10)]


def test_viewer_sees_the_batch_page_read_only(page, log_in, screenshot, groups):
    services.add_batch(reference="b1", sku="RED-CHAIR", purchased_quantity=10)
    services.allocate(order_id="o1", sku="RED-CHAIR", qty=3)
    viewer = UserFactory(username="vera")
    viewer.groups.add(Group.objects.get(name="viewer"))
    log_in(viewer)

    page.goto("/admin/allocation/batch/")
    page.get_by_role("link", name="b1", exact=True).click()

    expect(page.locator("h1")).to_have_text("View batch")
    expect(page.locator("input[name=_save]")).to_have_count(0)
    expect(page.locator("#id_purchased_quantity")).to_have_count(0)
    expect(page.locator(".field-purchased_quantity .readonly")).to_have_text("10")
    expect(page.locator("#held-allocations tbody tr")).to_have_count(1)
    screenshot("viewer-batch-page")
