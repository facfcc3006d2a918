"""Every status code the OpenAPI schema documents is real: a request here produces each one.

The fuzzer (test_fuzz_schemathesis.py) shows that every status the API
answers is documented; this is the converse. ``STATUSES`` must equal what
/api/schema/ documents, and for each (operation, status) one request below
gets exactly that status, with a JSON body of the documented kind that
validates against the schema the document gives that status, and with the
headers the document says that answer carries.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
from django.db import OperationalError, connection
from django.test import Client
from rest_framework.test import APIClient

from allocation import models as orm
from allocation import services, unit_of_work
from allocation.webhooks import services as webhook_services
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
    ("POST", "/api/orders/"): {200, 201, 400, 401, 403, 409, 413, 415, 503},
    ("GET", "/api/orders/{order_id}/"): {200, 401, 404, 503},
    ("DELETE", "/api/orders/{order_id}/"): {204, 401, 403, 404, 503},
    ("GET", "/api/events/"): {200, 400, 401, 403, 503},
    ("GET", "/api/events/{id}/"): {200, 401, 403, 404, 503},
    ("GET", "/api/webhooks/"): {200, 401, 403, 404, 503},
    ("POST", "/api/webhooks/"): {201, 400, 401, 403, 413, 415, 503},
    ("GET", "/api/webhooks/{id}/"): {200, 401, 403, 404, 503},
    ("DELETE", "/api/webhooks/{id}/"): {204, 401, 403, 404, 503},
}

# A concrete path for each template: one that exists, one that does not.
EXISTING = {
    "/api/batches/{reference}/": "/api/batches/b1/",
    "/api/allocations/{order_id}/{sku}/": LINE,
    "/api/products/{sku}/": f"/api/products/{SKU}/",
    "/api/orders/{order_id}/": "/api/orders/o1/",
    # {first}: the first event's id (PostgreSQL does not restart ids per test).
    "/api/events/{id}/": "/api/events/{first}/",
    # {webhook}: the subscription's id.
    "/api/webhooks/{id}/": "/api/webhooks/{webhook}/",
}
MISSING = {
    "/api/batches/{reference}/": "/api/batches/nope/",
    "/api/allocations/{order_id}/{sku}/": f"/api/allocations/nope/{SKU}/",
    "/api/products/{sku}/": "/api/products/NOPE/",
    "/api/orders/{order_id}/": "/api/orders/nope/",
    "/api/events/{id}/": "/api/events/999999/",
    "/api/webhooks/{id}/": "/api/webhooks/999999/",
}
VALID_BODY = {
    ("POST", "/api/batches/"): {"reference": "b2", "sku": SKU, "purchased_quantity": 5},
    ("PATCH", "/api/batches/{reference}/"): {"purchased_quantity": 12},
    ("POST", "/api/allocations/"): {"order_id": "o2", "sku": SKU, "qty": 1},
    ("POST", "/api/orders/"): {"order_id": "o2", "lines": [{"sku": SKU, "qty": 1}]},
    ("POST", "/api/webhooks/"): {"url": "https://hooks.example.com/a", "types": ["line_moved"]},
}
INVALID_BODY = {
    ("POST", "/api/batches/"): {"reference": "b2", "sku": SKU, "purchased_quantity": -1},
    ("PATCH", "/api/batches/{reference}/"): {"purchased_quantity": "many"},
    ("POST", "/api/allocations/"): {"order_id": "o2", "sku": SKU, "qty": 0},
    ("POST", "/api/orders/"): {"order_id": "o2", "lines": []},
    ("POST", "/api/webhooks/"): {"url": "ftp://hooks.example.com/a"},
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
        if template == "/api/events/":
            path += "?type=bogus"
        elif method == "GET":
            path += "?status=bogus"
        else:
            body = INVALID_BODY[method, template]
    elif status == 404:
        if method == "GET" and template not in MISSING:
            path += "?cursor=not-a-cursor"
        else:
            path = MISSING[template]
    elif status == 409:
        body = {
            "/api/batches/": {"reference": "b1", "sku": SKU, "purchased_quantity": 5},  # duplicate
            "/api/orders/": {"order_id": "o2", "lines": [{"sku": SKU, "qty": 100}]},  # short
        }.get(template, {"order_id": "o2", "sku": SKU, "qty": 100})  # out_of_stock
    elif status == 413:
        body = {**body, "padding": "x" * 2048}
    elif status == 415:
        content_type = "text/plain"
    elif status == 200 and (method, template) == ("POST", "/api/allocations/"):
        body = {"order_id": "o1", "sku": SKU, "qty": 4}  # the idempotent repeat
    elif status == 200 and (method, template) == ("POST", "/api/orders/"):
        body = {"order_id": "o1", "lines": [{"sku": SKU, "qty": 4}]}  # the idempotent repeat
    return {"client": client, "path": path, "body": body, "content_type": content_type}


@pytest.fixture
def clients(db, client_for) -> dict[str, APIClient]:
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10)
    services.allocate(order_id="o1", sku=SKU, qty=4)
    webhook_services.subscribe(url="https://hooks.example.com/a")
    return {
        "superuser": client_for(UserFactory(username="root", is_superuser=True)),
        "no_permissions": client_for(UserFactory(username="plain")),
        "anonymous": APIClient(),
        "bad_token": APIClient(HTTP_AUTHORIZATION="Token not-a-token"),
    }


def send(clients, request: dict, method: str):
    data = "" if request["body"] is None else json.dumps(request["body"])
    path = request["path"]
    if "{first}" in path:
        path = path.replace("{first}", str(orm.Event.objects.earliest("id").id))
    if "{webhook}" in path:
        path = path.replace("{webhook}", str(orm.WebhookSubscription.objects.get().id))
    return clients[request["client"]].generic(
        method, path, data, content_type=request["content_type"]
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


@pytest.fixture(scope="module")
def document() -> dict:
    response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def as_json_schema(schema):
    """OpenAPI 3.0's ``nullable`` said the JSON Schema way (null is one more allowed value)."""
    if isinstance(schema, list):
        return [as_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: as_json_schema(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def assert_matches_the_document(document: dict, response, method: str, template: str, status):
    """The body validates against the schema documented for this status; documented headers are
    there."""
    documented = document["paths"][template][method.lower()]["responses"][str(status)]
    for name, header in documented.get("headers", {}).items():
        if header.get("required"):
            assert response.has_header(name), (name, response.headers)
        if response.has_header(name) and header["schema"]["type"] == "integer":
            assert response[name].isdigit(), (name, response[name])
    if "content" not in documented:
        assert response.content == b""
        return
    schema = documented["content"]["application/json"]["schema"]
    root = {"allOf": [as_json_schema(schema)], "components": as_json_schema(document["components"])}
    jsonschema.Draft7Validator(root).validate(response.json())


def test_the_schema_documents_exactly_these_statuses(api):
    schema = api.get("/api/schema/?format=json").json()
    documented = {
        (method.upper(), path): {int(code) for code in operation["responses"]}
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }
    assert documented == STATUSES


@pytest.mark.parametrize(("method", "template", "status"), [c for c in CASES if c.values[2] != 503])
def test_each_documented_status_is_produced(settings, document, clients, method, template, status):
    settings.API_MAX_BODY_BYTES = 1024
    request = request_producing(status, method, template)

    response = send(clients, request, method)

    assert response.status_code == status, response.content
    assert_documented_body(response, status)
    assert_matches_the_document(document, response, method, template, status)


# Where a status has several documented bodies, a request for each: (method, template,
# client, path, raw body, the status, and the component the body must be).
BODIES = [
    ("POST", "/api/batches/", "superuser", "{", 400, "ParseError"),
    ("POST", "/api/batches/", "superuser", "[]", 400, "FieldErrors"),
    ("PATCH", "/api/batches/{reference}/", "superuser", '{"sku": "OTHER"}', 400, "FieldErrors"),
    ("PATCH", "/api/batches/{reference}/", "superuser", "{", 400, "ParseError"),
    ("POST", "/api/allocations/", "superuser", "{", 400, "ParseError"),
    (
        "POST",
        "/api/allocations/",
        "superuser",
        '{"order_id": "o2", "sku": "NO-SUCH", "qty": 1}',
        400,
        "InvalidSku",
    ),
    ("POST", "/api/allocations/", "superuser", '{"qty": 1.5}', 400, "FieldErrors"),
    (
        "POST",
        "/api/allocations/",
        "superuser",
        json.dumps({"order_id": "o1", "sku": SKU, "qty": 5}),
        409,
        "LineConflict",
    ),
    (
        "POST",
        "/api/allocations/",
        "superuser",
        json.dumps({"order_id": "o2", "sku": SKU, "qty": 7}),
        409,
        "OutOfStock",
    ),
    ("GET", "/api/batches/", "bad_token", "", 401, "NotAuthenticated"),
    ("GET", "/api/batches/", "anonymous", "", 401, "NotAuthenticated"),
]


@pytest.mark.parametrize(
    ("method", "template", "client", "raw", "status", "component"),
    BODIES,
    ids=[f"{m} {t} {s} {c}" for m, t, _, _, s, c in BODIES],
)
def test_each_documented_body_of_a_status_is_produced(
    document, clients, method, template, client, raw, status, component
):
    response = clients[client].generic(
        method, EXISTING.get(template, template), raw, content_type="application/json"
    )

    assert response.status_code == status, response.content
    assert_matches_the_document(document, response, method, template, status)
    schema = {"$ref": f"#/components/schemas/{component}"}
    root = {"allOf": [schema], "components": as_json_schema(document["components"])}
    jsonschema.Draft7Validator(root).validate(response.json())
    # Nothing was written: b1 still holds o1's 4 and nothing else.
    assert orm.Batch.objects.get(reference="b1").allocated_quantity == 4
    assert orm.OrderLine.objects.count() == 1
    assert orm.Batch.objects.count() == 1


def lost_database(execute, sql, params, many, context):
    raise OperationalError("server closed the connection unexpectedly")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("method", "template", "status"), [c for c in CASES if c.values[2] == 503])
def test_each_operation_answers_503_when_the_database_is_gone(
    monkeypatch, document, clients, method, template, status
):
    monkeypatch.setattr(unit_of_work, "BACKOFF_SECONDS", 0)
    request = request_producing(status, method, template)

    # The id is looked up before the database goes.
    request["path"] = request["path"].replace("{first}", str(orm.Event.objects.earliest("id").id))
    webhook = str(orm.WebhookSubscription.objects.get().id)
    request["path"] = request["path"].replace("{webhook}", webhook)
    with connection.execute_wrapper(lost_database):
        response = send(clients, request, method)

    assert response.status_code == 503, response.content
    assert response.json() == {
        "detail": "The database cannot be reached; please retry shortly.",
        "code": "unavailable",
    }
    assert response["Retry-After"] == "1"
    assert_matches_the_document(document, response, method, template, status)
    assert orm.Batch.objects.get(reference="b1").allocated_quantity == 4
    assert orm.OrderLine.objects.count() == 1
