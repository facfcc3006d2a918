"""The batch admin: lists in fixed queries, writes through the services (rules 8-9)."""

from datetime import date

import pytest
from django.urls import reverse

from allocation import models as orm
from allocation import services
from tests.factories import (
    AllocationRowFactory,
    BatchRowFactory,
    OrderLineRowFactory,
    ProductFactory,
    tick,
)
from tests.integration.helpers import messages_of, placements

CHANGELIST = reverse("admin:allocation_batch_changelist")
ADD = reverse("admin:allocation_batch_add")


def change_url(reference: str) -> str:
    return reverse(
        "admin:allocation_batch_change", args=[orm.Batch.objects.get(reference=reference).pk]
    )


def delete_url(reference: str) -> str:
    return reverse(
        "admin:allocation_batch_delete", args=[orm.Batch.objects.get(reference=reference).pk]
    )


def stored(reference: str) -> tuple:
    return orm.Batch.objects.values_list(
        "product_id", "purchased_quantity", "allocated_quantity", "eta"
    ).get(reference=reference)


@pytest.fixture
def two_lines_on_b1(db):
    """b1 (in stock, 10) holds o1 (4, older) and o2 (5, newer); b2 (inbound, 5) is empty."""
    services.add_batch(reference="b1", sku="RED-CHAIR", purchased_quantity=10)
    services.add_batch(reference="b2", sku="RED-CHAIR", purchased_quantity=5, eta=date(2026, 3, 1))
    services.allocate(order_id="o1", sku="RED-CHAIR", qty=4)
    services.allocate(order_id="o2", sku="RED-CHAIR", qty=5)


# -- changelist -------------------------------------------------------------------


def test_changelist_shows_reference_sku_status_eta_and_quantities(ops, two_lines_on_b1):
    response = ops.get(CHANGELIST)

    assert response.status_code == 200
    rows = [
        [str(v) for v in row]
        for row in response.context["cl"].result_list.values_list(
            "reference", "product_id", "eta", "purchased_quantity", "allocated_quantity"
        )
    ]
    assert rows == [
        ["b1", "RED-CHAIR", "None", "10", "9"],
        ["b2", "RED-CHAIR", "2026-03-01", "5", "0"],
    ]
    html = response.content.decode()
    assert '<td class="field-status">in stock</td>' in html
    assert '<td class="field-status">inbound</td>' in html
    assert '<td class="field-available">1</td>' in html
    assert '<td class="field-available">5</td>' in html
    assert '<td class="field-purchased">10</td>' in html
    assert '<td class="field-allocated">9</td>' in html
    for header in ("Reference", "SKU", "Status", "Eta", "Purchased", "Allocated", "Available"):
        assert f">{header}</a>" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=in_stock", ["b1"]),
        ("status=inbound", ["g1", "b2"]),  # by SKU, then preference
        ("sku=GREEN-LAMP", ["g1"]),
        ("sku=RED-CHAIR&status=inbound", ["b2"]),
        ("eta__year=2026&eta__month=3", ["b2"]),
        ("q=g1", ["g1"]),
        ("q=GREEN", ["g1"]),
        ("q=red-chair", ["b1", "b2"]),
    ],
)
def test_changelist_filters_by_status_sku_and_eta_and_searches_reference_and_sku(
    ops, two_lines_on_b1, query, expected
):
    services.add_batch(reference="g1", sku="GREEN-LAMP", purchased_quantity=3, eta=date(2026, 5, 2))

    response = ops.get(f"{CHANGELIST}?{query}")

    assert response.status_code == 200
    assert [b.reference for b in response.context["cl"].result_list] == expected


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        # Column 0 is the action checkbox.
        ("5", ["s2", "s1", "s3"]),  # purchased ascending
        ("-6", ["s3", "s1", "s2"]),  # allocated descending
        ("7", ["s3", "s1", "s2"]),  # available ascending
        ("-7", ["s2", "s1", "s3"]),  # available descending
    ],
)
def test_quantity_columns_sort(ops, order, expected):
    product = ProductFactory(sku="SORT")
    BatchRowFactory(reference="s1", product=product, purchased_quantity=10, allocated_quantity=5)
    BatchRowFactory(reference="s2", product=product, purchased_quantity=8, allocated_quantity=0)
    BatchRowFactory(reference="s3", product=product, purchased_quantity=12, allocated_quantity=12)

    response = ops.get(f"{CHANGELIST}?o={order}")

    assert [b.reference for b in response.context["cl"].result_list] == expected


def _batches(count: int) -> None:
    products = [ProductFactory(sku=f"SKU-{n}") for n in range(3)]
    for n in range(count):
        BatchRowFactory(
            reference=f"ref-{n:04d}",
            product=products[n % 3],
            purchased_quantity=50,
            allocated_quantity=n % 50,
            eta=None if n % 2 else date(2026, 1 + n % 12, 1),
        )


# session, user, SKU filter choices, page count, page rows, and two for the
# date hierarchy (eta range, then the distinct months or years within it).
CHANGELIST_QUERIES = 7


@pytest.mark.parametrize("count", [5, 200])
def test_changelist_costs_the_same_queries_for_5_and_200_batches(
    ops, django_assert_num_queries, count
):
    _batches(count)

    with django_assert_num_queries(CHANGELIST_QUERIES):
        response = ops.get(CHANGELIST)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == min(count, 100)


# -- a batch's page -------------------------------------------------------------------


def test_batch_page_lists_its_allocations_read_only_and_fixes_reference_and_sku(
    ops, two_lines_on_b1
):
    response = ops.get(change_url("b1"))

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert sorted(form.fields) == ["eta", "purchased_quantity"]
    html = response.content.decode()
    table = html[html.index('<table id="held-allocations">') :]
    table = table[: table.index("</table>")]
    assert [cell for cell in ("o1", "o2") if f">{cell}</a>" in table] == ["o1", "o2"]
    # Most recently allocated first: o2 (5 of 5) then o1 (4 of 4).
    assert table.index(">o2<") < table.index(">o1<")
    assert "<td>5</td><td>5</td>" in table
    assert "<td>4</td><td>4</td>" in table
    assert '<div class="readonly">RED-CHAIR</div>' in html
    assert '<div class="readonly">b1</div>' in html
    assert 'name="allocated_quantity"' not in html
    assert 'id="sku-stock-link"' in html


def test_reference_and_sku_posted_on_change_are_ignored(ops, two_lines_on_b1):
    response = ops.post(
        change_url("b2"),
        {"reference": "renamed", "sku": "OTHER", "purchased_quantity": "5", "eta": "2026-03-01"},
    )

    assert response.status_code == 302
    assert stored("b2") == ("RED-CHAIR", 5, 0, date(2026, 3, 1))
    assert not orm.Batch.objects.filter(reference="renamed").exists()


# -- writes go through the services ---------------------------------------------------


def test_adding_a_batch_goes_through_the_service_and_serves_backorders(ops, two_lines_on_b1):
    services.change_batch(reference="b1", purchased_quantity=0)  # o1 -> b2, o2 backordered
    assert placements()[("o2", "RED-CHAIR")] == ("backordered", [])

    response = ops.post(
        ADD, {"reference": "b3", "sku": "RED-CHAIR", "purchased_quantity": "7", "eta": ""}
    )

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST
    assert stored("b3") == ("RED-CHAIR", 7, 5, None)
    assert placements()[("o2", "RED-CHAIR")] == ("allocated", [("b3", 5)])
    assert messages_of(response) == [
        "Served backorders: o2.",
        "The batch “b3” was added successfully.",
    ]


def test_adding_a_batch_of_a_new_sku_creates_the_product(ops):
    response = ops.post(
        ADD,
        {
            "reference": "n1",
            "sku": "NEW-SKU",
            "purchased_quantity": "3",
            "eta": "2027-01-31",
            "_continue": "Save and continue editing",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == change_url("n1")
    assert stored("n1") == ("NEW-SKU", 3, 0, date(2027, 1, 31))
    assert orm.Product.objects.filter(sku="NEW-SKU").exists()
    assert messages_of(response) == [
        "The batch “n1” was added successfully. You may edit it again below."
    ]


def test_lowering_quantity_reallocates_and_backorders_and_says_which(ops, two_lines_on_b1):
    response = ops.post(change_url("b1"), {"purchased_quantity": "0", "eta": ""})

    assert response.status_code == 302
    assert stored("b1") == ("RED-CHAIR", 0, 0, None)
    assert stored("b2") == ("RED-CHAIR", 5, 4, date(2026, 3, 1))
    assert placements() == {
        ("o1", "RED-CHAIR"): ("allocated", [("b2", 4)]),
        ("o2", "RED-CHAIR"): ("backordered", []),
    }
    assert messages_of(response)[0] == "Reallocated: o1. Backordered: o2."
    assert messages_of(response)[1] == "The batch “b1” was changed successfully."


def test_lowering_quantity_a_little_takes_off_only_the_latest_line(ops, two_lines_on_b1):
    response = ops.post(change_url("b1"), {"purchased_quantity": "6", "eta": ""})

    assert response.status_code == 302
    # o2 (newest) leaves b1 and fits on b2; o1 stays where it was.
    assert placements() == {
        ("o1", "RED-CHAIR"): ("allocated", [("b1", 4)]),
        ("o2", "RED-CHAIR"): ("allocated", [("b2", 5)]),
    }
    assert stored("b1") == ("RED-CHAIR", 6, 4, None)
    assert messages_of(response)[0] == "Reallocated: o2."


def test_raising_quantity_serves_backorders(ops, two_lines_on_b1):
    services.change_batch(reference="b1", purchased_quantity=0)

    response = ops.post(change_url("b1"), {"purchased_quantity": "5", "eta": ""})

    assert response.status_code == 302
    assert placements() == {
        ("o1", "RED-CHAIR"): ("allocated", [("b2", 4)]),
        ("o2", "RED-CHAIR"): ("allocated", [("b1", 5)]),
    }
    assert messages_of(response)[0] == "Served backorders: o2."


def test_changing_only_eta_moves_no_line(ops, two_lines_on_b1):
    response = ops.post(change_url("b1"), {"purchased_quantity": "10", "eta": "2026-02-01"})

    assert response.status_code == 302
    assert stored("b1") == ("RED-CHAIR", 10, 9, date(2026, 2, 1))
    assert placements() == {
        ("o1", "RED-CHAIR"): ("allocated", [("b1", 4)]),
        ("o2", "RED-CHAIR"): ("allocated", [("b1", 5)]),
    }
    assert messages_of(response) == ["The batch “b1” was changed successfully."]


def test_saving_unchanged_calls_no_service(ops, two_lines_on_b1, monkeypatch):
    def fail(**kwargs):
        raise AssertionError("change_batch called for an unchanged form")

    monkeypatch.setattr(services, "change_batch", fail)

    response = ops.post(change_url("b1"), {"purchased_quantity": "10", "eta": ""})

    assert response.status_code == 302
    assert stored("b1") == ("RED-CHAIR", 10, 9, None)


def test_deleting_a_batch_with_lines_replaces_them_instead_of_blocking(ops, two_lines_on_b1):
    confirm = ops.get(delete_url("b1"))
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "Batch: b1 (2 order lines on it will be allocated again or backordered)" in html
    assert "protected" not in html

    response = ops.post(delete_url("b1"), {"post": "yes"})

    assert response.status_code == 302
    assert not orm.Batch.objects.filter(reference="b1").exists()
    assert placements() == {
        ("o1", "RED-CHAIR"): ("allocated", [("b2", 4)]),
        ("o2", "RED-CHAIR"): ("backordered", []),
    }
    assert messages_of(response) == [
        "Reallocated: o1. Backordered: o2.",
        "The batch “b1” was deleted successfully.",
    ]


def test_bulk_delete_action_goes_through_the_service_per_batch(ops, two_lines_on_b1):
    ids = [str(pk) for pk in orm.Batch.objects.values_list("pk", flat=True)]
    confirm = ops.post(CHANGELIST, {"action": "delete_selected", "_selected_action": ids})
    assert confirm.status_code == 200
    assert "Batch: b1 (2 order lines on it will be allocated again or backordered)" in (
        confirm.content.decode()
    )

    response = ops.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    )

    assert response.status_code == 302
    assert orm.Batch.objects.count() == 0
    # o1 went from b1 to b2, then b2 went too: both lines wait, none dropped.
    assert placements() == {
        ("o1", "RED-CHAIR"): ("backordered", []),
        ("o2", "RED-CHAIR"): ("backordered", []),
    }
    assert messages_of(response) == [
        "Backordered: o2, o1.",
        "Successfully deleted 2 batches.",
    ]


# -- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"purchased_quantity": "-1"}, "purchased_quantity", "greater than or equal to 0"),
        (
            {"purchased_quantity": "2147483648"},
            "purchased_quantity",
            "less than or equal to 2147483647",
        ),
        ({"purchased_quantity": "ten"}, "purchased_quantity", "Enter a whole number."),
        ({"purchased_quantity": ""}, "purchased_quantity", "This field is required."),
        ({"eta": "2026-02-30"}, "eta", "Enter a valid date."),
        ({"eta": "tomorrow"}, "eta", "Enter a valid date."),
        ({"reference": "b1"}, "reference", "A batch with this reference already exists."),
        ({"reference": "has space"}, "reference", "Use 1-255 letters"),
        ({"reference": ""}, "reference", "This field is required."),
        ({"reference": "x" * 256}, "reference", "at most 255 characters"),
        ({"sku": "-bad"}, "sku", "Use 1-255 letters"),
        ({"sku": "a\x00b"}, "sku", "Null characters are not allowed."),
    ],
)
def test_invalid_add_form_is_shown_again_with_the_field_error_and_writes_nothing(
    ops, two_lines_on_b1, data, field, error
):
    before = (
        list(
            orm.Batch.objects.values_list("reference", "purchased_quantity", "allocated_quantity")
        ),
        placements(),
    )
    post = {"reference": "b9", "sku": "RED-CHAIR", "purchased_quantity": "3", "eta": "", **data}

    response = ops.post(ADD, post)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert error in errors[field][0]
    assert (
        list(
            orm.Batch.objects.values_list("reference", "purchased_quantity", "allocated_quantity")
        ),
        placements(),
    ) == before


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"purchased_quantity": "-5"}, "purchased_quantity", "greater than or equal to 0"),
        (
            {"purchased_quantity": "99999999999999999999"},
            "purchased_quantity",
            "less than or equal to",
        ),
        ({"eta": "2026-13-01"}, "eta", "Enter a valid date."),
    ],
)
def test_invalid_change_form_is_shown_again_and_moves_no_line(
    ops, two_lines_on_b1, data, field, error
):
    response = ops.post(change_url("b1"), {"purchased_quantity": "2", "eta": "", **data})

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert error in errors[field][0]
    assert stored("b1") == ("RED-CHAIR", 10, 9, None)
    assert placements() == {
        ("o1", "RED-CHAIR"): ("allocated", [("b1", 4)]),
        ("o2", "RED-CHAIR"): ("allocated", [("b1", 5)]),
    }


def test_a_duplicate_raised_by_the_service_becomes_a_message_not_a_500(ops, monkeypatch):
    """A batch created by someone else between the form's check and the write."""
    from domain.exceptions import DuplicateBatch

    def raced(**kwargs):
        raise DuplicateBatch(kwargs["reference"])

    monkeypatch.setattr(services, "add_batch", raced)

    response = ops.post(
        ADD, {"reference": "r1", "sku": "RED-CHAIR", "purchased_quantity": "3", "eta": ""}
    )

    assert response.status_code == 302
    assert response["Location"] == f"{ADD}?reference=r1&sku=RED-CHAIR&purchased_quantity=3&eta="
    assert messages_of(response) == [
        "A batch with reference 'r1' already exists. Nothing was changed."
    ]
    assert not orm.Batch.objects.exists()
    refilled = ops.get(response["Location"])
    assert refilled.context["adminform"].form.initial["reference"] == "r1"


def test_a_busy_database_becomes_a_message_and_the_change_page_again(
    ops, two_lines_on_b1, monkeypatch
):
    from allocation.unit_of_work import Busy

    def busy(**kwargs):
        raise Busy()

    monkeypatch.setattr(services, "change_batch", busy)
    url = change_url("b1")

    response = ops.post(url, {"purchased_quantity": "0", "eta": ""})

    assert response.status_code == 302
    assert response["Location"] == url
    assert messages_of(response) == [
        "The database is busy; please retry shortly. Nothing was changed."
    ]
    assert stored("b1") == ("RED-CHAIR", 10, 9, None)


@pytest.mark.django_db(transaction=True)
def test_a_transient_database_error_is_retried_around_the_admins_transaction(
    ops, two_lines_on_b1, monkeypatch
):
    # As in production: no test transaction around the request, so the
    # admin's own transaction is the outermost one and can start over.
    from django.db import OperationalError

    change_batch = services.change_batch
    attempts = []

    def locked_once(**kwargs):
        attempts.append(kwargs["reference"])
        if len(attempts) == 1:
            raise OperationalError("database is locked")
        return change_batch(**kwargs)

    monkeypatch.setattr(services, "change_batch", locked_once)
    url = change_url("b1")

    response = ops.post(url, {"purchased_quantity": "4", "eta": ""})

    assert response.status_code == 302
    assert attempts == ["b1", "b1"]
    assert stored("b1") == ("RED-CHAIR", 4, 4, None)
    assert placements()[("o2", "RED-CHAIR")] == ("allocated", [("b2", 5)])
    assert not any("busy" in message for message in messages_of(response))


@pytest.mark.django_db(transaction=True)
def test_a_database_failure_is_a_message_and_a_bug_stays_a_server_error(
    ops, two_lines_on_b1, monkeypatch
):
    # As the API (503 unavailable): the database's own failure (disk full) is
    # reported, nothing written; an IntegrityError is our bug and stays a 500.
    from django.db import IntegrityError, InternalError

    raised = []

    def failing(**kwargs):
        error = raised.pop(0)
        raise error

    monkeypatch.setattr(services, "change_batch", failing)
    url = change_url("b1")

    raised.append(InternalError("could not extend file: No space left on device"))
    response = ops.post(url, {"purchased_quantity": "4", "eta": ""})

    assert response.status_code == 302
    assert messages_of(response) == [
        "The database could not complete the change; nothing was changed. Please retry later."
    ]
    assert stored("b1") == ("RED-CHAIR", 10, 9, None)

    raised.append(IntegrityError("duplicate key value violates unique constraint"))
    ops.raise_request_exception = True
    with pytest.raises(IntegrityError):
        ops.post(url, {"purchased_quantity": "4", "eta": ""})
    assert stored("b1") == ("RED-CHAIR", 10, 9, None)


def test_changing_a_batch_deleted_meanwhile_says_so(ops, two_lines_on_b1):
    url = change_url("b2")
    services.delete_batch(reference="b2")

    response = ops.post(url, {"purchased_quantity": "1", "eta": ""})

    # The admin itself finds the row gone and redirects with its own message.
    assert response.status_code == 302
    assert orm.Batch.objects.filter(reference="b2").count() == 0


def test_a_busy_batch_page_shows_the_latest_allocations_and_links_to_all(ops):
    product = ProductFactory(sku="BUSY")
    batch = BatchRowFactory(
        reference="big", product=product, purchased_quantity=100, allocated_quantity=51
    )
    for n in range(51):
        line = OrderLineRowFactory(
            order_id=f"o{n:02d}", product=product, requested_at=tick(n), allocated_at=tick(n)
        )
        AllocationRowFactory(line=line, batch=batch, qty=1)

    html = ops.get(change_url("big")).content.decode()

    start = html.index('<table id="held-allocations">')
    table = html[start : html.index("</table>", start)]
    assert table.count("<tr>") == 1 + 50  # header + the 50 most recent
    assert ">o50</a>" in table and ">o01</a>" in table and ">o00</a>" not in table
    link = f"{reverse('admin:allocation_orderline_changelist')}?batch=big"
    assert f'<a href="{link}">All lines on this batch</a>' in html
    assert len(ops.get(link).context["cl"].result_list) == 51


@pytest.mark.parametrize(
    ("url", "status"),
    [
        (f"{CHANGELIST}?q=%00", 200),
        (f"{CHANGELIST}?sku=%00", 200),
        (f"{CHANGELIST}?status=bogus", 200),
        (f"{CHANGELIST}?eta__year=abc", 302),
        (f"{CHANGELIST}?o=99", 200),
        (f"{CHANGELIST}?p=-1", 200),
        (f"{CHANGELIST}?available=1", 302),
        (f"{CHANGELIST}abc/change/", 302),
        (f"{CHANGELIST}999999/delete/", 302),
        (f"{CHANGELIST}overview/?q=%00", 200),
        (f"{CHANGELIST}overview/?p=abc", 200),
        (f"{CHANGELIST}overview/?p=99999", 200),
        ("/admin/allocation/orderline/?q=%00", 200),
        ("/admin/allocation/orderline/?batch=%00", 200),
        ("/admin/allocation/orderline/?sku=%00", 200),
        (f"{CHANGELIST}?_facets=True&status=inbound", 200),
        ("/admin/allocation/orderline/?_facets=True&batch=b1", 200),
        ("/admin/allocation/orderline/?status__exact=bogus", 200),
        ("/admin/allocation/orderline/?parts__qty=1", 400),
    ],
)
def test_odd_query_strings_never_give_a_server_error(ops, two_lines_on_b1, url, status):
    ops.raise_request_exception = False

    assert ops.get(url).status_code == status
