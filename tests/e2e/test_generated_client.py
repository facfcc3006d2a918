"""A client generated from /api/schema/ drives the API; each answer parses into its model.

openapi-python-client generates a typed package from the document once per
module; each test drives it against the Django application in process
(httpx's WSGI transport: no server, same connection, so the test's
transaction holds). The client raises on any status the document does not
list, and parses each body into the model documented for its status: an
answer that parsed into ``None`` or into the wrong model, or that failed to
parse, would mean the document lies about that answer.
"""

from __future__ import annotations

import datetime
import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PACKAGE = "generated_allocation_client"
SKU = "RED-CHAIR"
OPERATIONS = {
    "allocations": ["create", "destroy", "list", "retrieve"],
    "batches": ["create", "destroy", "list", "partial_update", "retrieve"],
    "products": ["retrieve"],
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """The client package openapi-python-client generates from the served document."""
    response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200
    folder = tmp_path_factory.mktemp("generated-client")
    document = folder / "schema.json"
    document.write_text(json.dumps(response.json()))
    # No post-generation hooks: they only format the code (with ruff, from PATH).
    config = folder / "config.json"
    config.write_text(json.dumps({"post_hooks": []}))
    command = [
        sys.executable,
        "-m",
        "openapi_python_client",
        "generate",
        "--path",
        str(document),
        "--output-path",
        str(folder / PACKAGE),
        "--meta",
        "none",
        "--config",
        str(config),
    ]
    # Our own command line, no shell.
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)  # noqa: S603
    # The generator reports what it could not turn into code as warnings.
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr

    sys.path.insert(0, str(folder))
    try:
        package = SimpleNamespace(
            client=importlib.import_module(f"{PACKAGE}.client"),
            types=importlib.import_module(f"{PACKAGE}.types"),
            models=importlib.import_module(f"{PACKAGE}.models"),
            **{
                f"{tag}_{name}": importlib.import_module(f"{PACKAGE}.api.{tag}.{tag}_{name}")
                for tag, names in OPERATIONS.items()
                for name in names
            },
        )
        yield package
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


@pytest.fixture
def application():
    """The WSGI application, called in this thread and inside the test's transaction."""
    # The real handler closes the connection after each request, which would
    # end the test's transaction; Django's own test client disconnects this too.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def connect(generated, application):
    """``connect(user or token)``: a generated client authenticated with that user's token."""
    opened = []

    def make(who) -> object:
        token = who if isinstance(who, str) else Token.objects.get_or_create(user=who)[0].key
        client = generated.client.AuthenticatedClient(
            base_url="http://testserver",
            token=token,
            prefix="Token",
            # An answer with a status the document does not list is an error.
            raise_on_unexpected_status=True,
            httpx_args={"transport": httpx.WSGITransport(app=application)},
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.get_httpx_client().close()


@pytest.fixture
def client(connect, superuser):
    return connect(superuser)


@pytest.fixture
def m(generated) -> ModuleType:
    """The generated models."""
    return generated.models


def answer(response, status: int, model: type):
    """The parsed body of a response that has this status and parsed into this model."""
    assert response.status_code == status, response.content
    assert isinstance(response.parsed, model), (type(response.parsed), response.content)
    return response.parsed


def add_batch(generated, client, m, reference: str, qty: int, eta: datetime.date | None = None):
    body = m.BatchInputRequest(reference=reference, sku=SKU, purchased_quantity=qty, eta=eta)
    return generated.batches_create.sync_detailed(client=client, body=body)


def allocate(generated, client, m, order_id: str, qty: int, sku: str = SKU):
    body = m.LineInputRequest(order_id=order_id, sku=sku, qty=qty)
    return generated.allocations_create.sync_detailed(client=client, body=body)


def parts(line) -> list[tuple[str, int]]:
    return [(part.reference, part.qty) for part in line.batches]


def product(generated, client, m):
    return answer(generated.products_retrieve.sync_detailed(SKU, client=client), 200, m.Product)


def totals(summary) -> tuple[int, int, int, int]:
    return (
        summary.purchased_quantity,
        summary.allocated_quantity,
        summary.available_quantity,
        summary.backordered_quantity,
    )


@pytest.fixture
def stocked(generated, client, m) -> None:
    """b1: 10 in stock; b2: 5 inbound."""
    answer(add_batch(generated, client, m, "b1", 10), 201, m.Batch)
    answer(add_batch(generated, client, m, "b2", 5, datetime.date(2026, 12, 1)), 201, m.Batch)


# -- batches ----------------------------------------------------------------------------------


def test_creating_a_batch_answers_the_batch_model(generated, client, m):
    batch = answer(add_batch(generated, client, m, "b1", 10), 201, m.Batch)

    assert (batch.reference, batch.sku, batch.purchased_quantity) == ("b1", SKU, 10)
    assert batch.eta is None
    assert batch.status == m.BatchStatusEnum.IN_STOCK
    assert (batch.allocated_quantity, batch.available_quantity) == (0, 10)
    assert isinstance(batch.created_at, datetime.datetime)

    inbound = answer(
        add_batch(generated, client, m, "b2", 5, datetime.date(2026, 12, 1)), 201, m.Batch
    )
    assert inbound.eta == datetime.date(2026, 12, 1)
    assert inbound.status == m.BatchStatusEnum.INBOUND


def test_a_duplicate_batch_answers_the_duplicate_batch_model(generated, client, m, stocked):
    error = answer(add_batch(generated, client, m, "b1", 99), 409, m.DuplicateBatch)

    assert error.code == m.DuplicateBatchCodeEnum.DUPLICATE_BATCH
    assert "b1" in error.detail
    assert totals(product(generated, client, m)) == (15, 0, 15, 0)


def test_an_invalid_batch_answers_the_field_errors_model(generated, client, m):
    body = m.BatchInputRequest(reference="-b1", sku=SKU, purchased_quantity=-1)

    errors = answer(
        generated.batches_create.sync_detailed(client=client, body=body), 400, m.FieldErrors
    )

    assert sorted(errors.additional_keys) == ["purchased_quantity", "reference"]
    assert all(isinstance(message, str) and message for message in errors["reference"])
    listed = answer(generated.batches_list.sync_detailed(client=client), 200, m.PaginatedBatchList)
    assert listed.results == []


# -- allocations ------------------------------------------------------------------------------


def test_allocating_then_repeating_answers_the_line_model(generated, client, m, stocked):
    line = answer(allocate(generated, client, m, "o1", 4), 201, m.Line)

    assert (line.order_id, line.sku, line.qty) == ("o1", SKU, 4)
    assert line.status == m.LineStatusEnum.ALLOCATED
    assert parts(line) == [("b1", 4)]
    assert isinstance(line.requested_at, datetime.datetime)

    repeat = answer(allocate(generated, client, m, "o1", 4), 200, m.Line)
    assert (repeat.order_id, repeat.qty, parts(repeat)) == ("o1", 4, [("b1", 4)])
    assert repeat.requested_at == line.requested_at

    read = answer(
        generated.allocations_retrieve.sync_detailed("o1", SKU, client=client), 200, m.Line
    )
    assert parts(read) == [("b1", 4)]
    batch = answer(
        generated.batches_retrieve.sync_detailed("b1", client=client), 200, m.BatchDetail
    )
    assert [(a.order_id, a.sku, a.qty) for a in batch.allocations] == [("o1", SKU, 4)]
    assert totals(product(generated, client, m)) == (15, 4, 11, 0)


def test_another_qty_answers_the_line_conflict_model(generated, client, m, stocked):
    answer(allocate(generated, client, m, "o1", 4), 201, m.Line)

    error = answer(allocate(generated, client, m, "o1", 5), 409, m.LineConflict)

    assert error.code == m.LineConflictCodeEnum.LINE_CONFLICT
    assert "o1" in error.detail
    assert totals(product(generated, client, m)) == (15, 4, 11, 0)


def test_too_much_answers_the_out_of_stock_model_with_what_is_left(generated, client, m, stocked):
    answer(allocate(generated, client, m, "o1", 12), 201, m.Line)

    error = answer(allocate(generated, client, m, "o2", 4), 409, m.OutOfStock)

    assert error.code == m.OutOfStockCodeEnum.OUT_OF_STOCK
    assert (error.sku, error.requested, error.available) == (SKU, 4, 3)
    assert error.detail
    assert totals(product(generated, client, m)) == (15, 12, 3, 0)
    missing = generated.allocations_retrieve.sync_detailed("o2", SKU, client=client)
    assert answer(missing, 404, m.NotFound).code == m.NotFoundCodeEnum.NOT_FOUND


def test_a_sku_without_batches_answers_the_invalid_sku_model(generated, client, m, stocked):
    error = answer(allocate(generated, client, m, "o1", 1, sku="NO-SUCH-SKU"), 400, m.InvalidSku)

    assert error.code == m.InvalidSkuCodeEnum.INVALID_SKU
    assert "NO-SUCH-SKU" in error.detail
    listed = answer(
        generated.allocations_list.sync_detailed(client=client), 200, m.PaginatedLineList
    )
    assert listed.results == []


def test_an_invalid_line_answers_the_field_errors_model(generated, client, m, stocked):
    errors = answer(allocate(generated, client, m, "o 1", 0), 400, m.FieldErrors)

    assert sorted(errors.additional_keys) == ["order_id", "qty"]
    assert isinstance(errors.non_field_errors, generated.types.Unset)
    assert all(isinstance(message, str) and message for message in errors["qty"])
    listed = answer(
        generated.allocations_list.sync_detailed(client=client), 200, m.PaginatedLineList
    )
    assert listed.results == []
    assert totals(product(generated, client, m)) == (15, 0, 15, 0)


def test_a_body_over_the_limit_answers_the_payload_too_large_model(
    generated, client, m, stocked, settings
):
    settings.API_MAX_BODY_BYTES = 64

    error = answer(allocate(generated, client, m, "o" * 100, 1), 413, m.PayloadTooLarge)

    assert error.code == m.PayloadTooLargeCodeEnum.PAYLOAD_TOO_LARGE
    assert totals(product(generated, client, m)) == (15, 0, 15, 0)


def test_lists_are_read_page_by_page_through_the_next_link(generated, client, m, stocked):
    for n in range(5):
        answer(allocate(generated, client, m, f"o{n}", 1), 201, m.Line)

    pages, cursor = [], None
    while True:
        kwargs = {"page_size": 2} if cursor is None else {"page_size": 2, "cursor": cursor}
        page = answer(
            generated.allocations_list.sync_detailed(client=client, **kwargs),
            200,
            m.PaginatedLineList,
        )
        pages.append([line.order_id for line in page.results])
        assert all(isinstance(line, m.Line) for line in page.results)
        if page.next_ is None:
            break
        cursor = parse_qs(urlsplit(page.next_).query)["cursor"][0]

    assert pages == [["o0", "o1"], ["o2", "o3"], ["o4"]]
    assert page.previous is not None


# -- changing and deleting stock ---------------------------------------------------------------


def test_lowering_a_batch_answers_the_lines_reallocated_and_backordered(
    generated, client, m, stocked
):
    for order_id, qty in [("o1", 4), ("o2", 3), ("o3", 3)]:
        assert parts(answer(allocate(generated, client, m, order_id, qty), 201, m.Line)) == [
            ("b1", qty)
        ]

    response = generated.batches_partial_update.sync_detailed(
        "b1", client=client, body=m.PatchedBatchPatchRequest(purchased_quantity=4)
    )

    # Rule 8: o3 then o2 come off b1; o2 (requested first) finds b2, o3 no longer fits.
    change = answer(response, 200, m.BatchChange)
    assert (change.reference, change.purchased_quantity) == ("b1", 4)
    assert (change.allocated_quantity, change.available_quantity) == (4, 0)
    assert [(line.order_id, parts(line)) for line in change.reallocated] == [("o2", [("b2", 3)])]
    assert [(line.order_id, line.status) for line in change.backordered] == [
        ("o3", m.LineStatusEnum.BACKORDERED)
    ]
    assert change.backordered[0].batches == []
    assert totals(product(generated, client, m)) == (9, 7, 2, 3)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"purchased_quantity": -5}, "purchased_quantity"), ({"sku": "OTHER"}, "sku")],
    ids=["serializer", "service"],
)
def test_an_invalid_change_answers_the_field_errors_model(
    generated, client, m, stocked, change, field
):
    response = generated.batches_partial_update.sync_detailed(
        "b1", client=client, body=m.PatchedBatchPatchRequest(**change)
    )

    errors = answer(response, 400, m.FieldErrors)
    assert errors.additional_keys == [field]
    assert all(isinstance(message, str) and message for message in errors[field])
    assert totals(product(generated, client, m)) == (15, 0, 15, 0)


def test_deallocating_answers_no_content_then_the_line_is_not_found(generated, client, m, stocked):
    answer(allocate(generated, client, m, "o1", 4), 201, m.Line)

    gone = generated.allocations_destroy.sync_detailed("o1", SKU, client=client)

    assert gone.status_code == 204
    assert gone.parsed is None
    assert gone.content == b""
    again = generated.allocations_destroy.sync_detailed("o1", SKU, client=client)
    assert answer(again, 404, m.NotFound).code == m.NotFoundCodeEnum.NOT_FOUND
    assert totals(product(generated, client, m)) == (15, 0, 15, 0)


def test_deleting_a_batch_answers_the_stock_change_model(generated, client, m, stocked):
    answer(allocate(generated, client, m, "o1", 4), 201, m.Line)

    change = answer(
        generated.batches_destroy.sync_detailed("b1", client=client), 200, m.StockChange
    )

    assert [(line.order_id, parts(line)) for line in change.reallocated] == [("o1", [("b2", 4)])]
    assert change.backordered == []
    missing = generated.batches_retrieve.sync_detailed("b1", client=client)
    assert answer(missing, 404, m.NotFound).code == m.NotFoundCodeEnum.NOT_FOUND


# -- who may ----------------------------------------------------------------------------------


def test_a_bad_token_answers_the_not_authenticated_model(generated, connect, m, stocked):
    response = generated.batches_list.sync_detailed(client=connect("not-a-token"))

    error = answer(response, 401, m.NotAuthenticated)
    assert error.code == m.NotAuthenticatedCodeEnum.AUTHENTICATION_FAILED
    assert response.headers["WWW-Authenticate"] == "Token"


def test_a_user_without_permission_answers_the_permission_denied_model(
    generated, connect, client, m, stocked
):
    clerk = connect(UserFactory(username="clerk"))

    error = answer(allocate(generated, clerk, m, "o1", 1), 403, m.PermissionDenied)

    assert error.code == m.PermissionDeniedCodeEnum.PERMISSION_DENIED
    assert totals(product(generated, client, m)) == (15, 0, 15, 0)
