"""Every status code the OpenAPI schema documents is real: a request here produces each one.

The fuzzer (test_fuzz_schemathesis.py) shows that every status the API
answers is documented; this is the converse. ``STATUSES`` must equal what
/api/schema/ documents, and for each (operation, status) one request below
gets exactly that status, with a JSON body of the documented kind.
"""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError, connection
from rest_framework.test import APIClient

from allocation import models as orm
from allocation import services, unit_of_work
from tests.factories import UserFactory

SKU = "RED-CHAIR"
LINE = f"/api/allocations/o1/{SKU}/"

STATUSES = {
    ("GET", "/api/batches/"): {200, 400, 401, 404, 503},
    ("POST", "/api/batches/"): {201, 400, 401, 403, 409, 413, 415, 503},
    ("GET", "/api/batches/{reference}/"): {200, 401, 404, 503},
    ("PATCH", "/api/batches/{reference}/"): {200, 400, 401, 403, 404, 413, 415, 503},
    ("DELETE", "/api/batches/{reference}/"): {200, 401, 403, 404, 503},
    ("GET", "/api/allocations/"): {200, 400, 401, 404, 503},
    ("POST", "/api/allocations/"): {200, 201, 400, 401, 403, 409, 413, 415, 503},
    ("GET", "/api/allocations/{order_id}/{sku}/"): {200, 401, 404, 503},
    ("DELETE", "/api/allocations/{order_id}/{sku}/"): {204, 401, 403, 404, 503},
    ("GET", "/api/products/{sku}/"): {200, 401, 404, 503},
}

# A concrete path for each template: one that exists, one that does not.
EXISTING = {
    "/api/batches/{reference}/": "/api/batches/b1/",
    "/api/allocations/{order_id}/{sku}/": LINE,
    "/api/products/{sku}/": f"/api/products/{SKU}/",
}
MISSING = {
    "/api/batches/{reference}/": "/api/batches/nope/",
    "/api/allocations/{order_id}/{sku}/": f"/api/allocations/nope/{SKU}/",
    "/api/products/{sku}/": "/api/products/NOPE/",
}
VALID_BODY = {
    ("POST", "/api/batches/"): {"reference": "b2", "sku": SKU, "purchased_quantity": 5},
    ("PATCH", "/api/batches/{reference}/"): {"purchased_quantity": 12},
    ("POST", "/api/allocations/"): {"order_id": "o2", "sku": SKU, "qty": 1},
}
INVALID_BODY = {
    ("POST", "/api/batches/"): {"reference": "b2", "sku": SKU, "purchased_quantity": -1},
    ("PATCH", "/api/batches/{reference}/"): {"purchased_quantity": "many"},
    ("POST", "/api/allocations/"): {"order_id": "o2", "sku": SKU, "qty": 0},
}

CASES = [
    pytest.param(method, template, status, id=f"{method} {template} {status}")
    for (method, template), statuses in STATUSES.items()
    for status in sorted(statuses)
]


def request_producing(status: int, method: str, template: str) -> dict:
    """The request (client kind, path, body, content type) meant to get ``status``."""
    path = EXISTING.get(template, template)
    body = VALID_BODY.get((method, template))
    content_type = "application/json"
    client = "superuser"
    if status == 401:
        client = "anonymous"
    elif status == 403:
        client = "no_permissions"
    elif status == 400:
        if method == "GET":
            path += "?status=bogus"
        else:
            body = INVALID_BODY[method, template]
    elif status == 404:
        if method == "GET" and template not in MISSING:
            path += "?cursor=not-a-cursor"
        else:
            path = MISSING[template]
    elif status == 409:
        body = (
            {"reference": "b1", "sku": SKU, "purchased_quantity": 5}  # duplicate_batch
            if template == "/api/batches/"
            else {"order_id": "o2", "sku": SKU, "qty": 100}  # out_of_stock
        )
    elif status == 413:
        body = {**body, "padding": "x" * 2048}
    elif status == 415:
        content_type = "text/plain"
    elif status == 200 and (method, template) == ("POST", "/api/allocations/"):
        body = {"order_id": "o1", "sku": SKU, "qty": 4}  # the idempotent repeat
    return {"client": client, "path": path, "body": body, "content_type": content_type}


@pytest.fixture
def clients(db, client_for) -> dict[str, APIClient]:
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10)
    services.allocate(order_id="o1", sku=SKU, qty=4)
    return {
        "superuser": client_for(UserFactory(username="root", is_superuser=True)),
        "no_permissions": client_for(UserFactory(username="plain")),
        "anonymous": APIClient(),
    }


def send(clients, request: dict, method: str):
    data = "" if request["body"] is None else json.dumps(request["body"])
    return clients[request["client"]].generic(
        method, request["path"], data, content_type=request["content_type"]
    )


def assert_documented_body(response, status: int) -> None:
    if status == 204:
        assert response.content == b""
        return
    assert response["Content-Type"] == "application/json"
    body = response.json()
    if status == 400 and "code" not in body:
        # A field-error body: {"field": ["message", ...]}.
        assert body and all(isinstance(v, list) for v in body.values()), body
    elif status >= 400:
        assert set(body) >= {"detail", "code"}, body


def test_the_schema_documents_exactly_these_statuses(api):
    schema = api.get("/api/schema/?format=json").json()
    documented = {
        (method.upper(), path): {int(code) for code in operation["responses"]}
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }
    assert documented == STATUSES


@pytest.mark.parametrize(("method", "template", "status"), [c for c in CASES if c.values[2] != 503])
def test_each_documented_status_is_produced(settings, clients, method, template, status):
    settings.API_MAX_BODY_BYTES = 1024
    request = request_producing(status, method, template)

    response = send(clients, request, method)

    assert response.status_code == status, response.content
    assert_documented_body(response, status)


def lost_database(execute, sql, params, many, context):
    raise OperationalError("server closed the connection unexpectedly")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("method", "template", "status"), [c for c in CASES if c.values[2] == 503])
def test_each_operation_answers_503_when_the_database_is_gone(
    monkeypatch, clients, method, template, status
):
    monkeypatch.setattr(unit_of_work, "BACKOFF_SECONDS", 0)
    request = request_producing(status, method, template)

    with connection.execute_wrapper(lost_database):
        response = send(clients, request, method)

    assert response.status_code == 503, response.content
    assert response.json() == {
        "detail": "The database cannot be reached; please retry shortly.",
        "code": "unavailable",
    }
    assert orm.Batch.objects.get(reference="b1").allocated_quantity == 4
    assert orm.OrderLine.objects.count() == 1
