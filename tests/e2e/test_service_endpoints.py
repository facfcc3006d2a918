"""SPEC 2.4: /healthz, /api/schema/ and /api/docs/, all without authentication."""

import json
import re

import pytest
from django.db import OperationalError

pytestmark = pytest.mark.django_db


# -- /healthz ------------------------------------------------------------------------------


def test_healthz_is_ok_without_authentication(anonymous):
    response = anonymous.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_healthz_ignores_bad_credentials(anonymous):
    anonymous.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert anonymous.get("/healthz").json() == {"status": "ok"}


class _DeadConnection:
    closed = False

    def cursor(self):
        raise OperationalError("could not connect to server")

    def close(self):
        self.closed = True


def test_healthz_is_503_when_the_database_does_not_answer(anonymous, monkeypatch):
    dead = _DeadConnection()
    monkeypatch.setattr("allocation.api.views.connection", dead)

    response = anonymous.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    assert dead.closed


# -- /api/schema/ --------------------------------------------------------------------------------


@pytest.fixture
def schema(anonymous) -> dict:
    response = anonymous.get("/api/schema/?format=json")
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def test_schema_is_served_as_openapi_3_yaml_without_authentication(anonymous):
    response = anonymous.get("/api/schema/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert response.content.startswith(b"openapi: 3.")


def test_schema_is_served_despite_a_bad_token(anonymous):
    anonymous.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert anonymous.get("/api/schema/").status_code == 200


def test_schema_describes_every_endpoint(schema):
    assert schema["openapi"].startswith("3.")
    operations = {
        (path, method)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "patch", "put", "delete"}
    }
    assert operations == {
        ("/api/batches/", "get"),
        ("/api/batches/", "post"),
        ("/api/batches/{reference}/", "get"),
        ("/api/batches/{reference}/", "patch"),
        ("/api/batches/{reference}/", "delete"),
        ("/api/allocations/", "get"),
        ("/api/allocations/", "post"),
        ("/api/allocations/{order_id}/{sku}/", "get"),
        ("/api/allocations/{order_id}/{sku}/", "delete"),
        ("/api/products/{sku}/", "get"),
        ("/api/orders/", "post"),
        ("/api/orders/{order_id}/", "get"),
        ("/api/orders/{order_id}/", "delete"),
        ("/api/webhooks/", "get"),
        ("/api/webhooks/", "post"),
        ("/api/webhooks/{id}/", "get"),
        ("/api/webhooks/{id}/", "delete"),
        ("/api/events/", "get"),
        ("/api/events/{id}/", "get"),
    }


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/api/batches/", "get", {"200", "400", "401"}),
        ("/api/batches/", "post", {"201", "400", "401", "403", "409", "413", "415"}),
        ("/api/batches/{reference}/", "get", {"200", "401", "404"}),
        ("/api/batches/{reference}/", "patch", {"200", "400", "401", "403", "404", "413", "415"}),
        ("/api/batches/{reference}/", "delete", {"200", "401", "403", "404"}),
        ("/api/allocations/", "get", {"200", "400", "401"}),
        ("/api/allocations/", "post", {"200", "201", "400", "401", "403", "409", "413", "415"}),
        ("/api/allocations/{order_id}/{sku}/", "get", {"200", "401", "404"}),
        ("/api/allocations/{order_id}/{sku}/", "delete", {"204", "401", "403", "404"}),
        ("/api/products/{sku}/", "get", {"200", "401", "404"}),
    ],
)
def test_schema_documents_each_status_an_operation_returns(schema, path, method, statuses):
    # Reads never answer 403: anyone authenticated may read, and an
    # unauthenticated caller gets 401 (token authentication comes first).
    documented = set(schema["paths"][path][method]["responses"])

    assert statuses <= documented
    assert "503" in documented


def test_schema_documents_the_list_filters_and_pagination(schema):
    batch_params = {p["name"] for p in schema["paths"]["/api/batches/"]["get"]["parameters"]}
    line_params = {p["name"] for p in schema["paths"]["/api/allocations/"]["get"]["parameters"]}

    assert {"sku", "status", "available", "page_size"} <= batch_params
    assert {"order_id", "sku", "batch", "status", "page_size"} <= line_params


def test_schema_declares_token_authentication(schema):
    schemes = schema["components"]["securitySchemes"]

    assert any(
        s.get("type") == "apiKey" and s.get("name") == "Authorization" for s in schemes.values()
    )


# -- /api/docs/ -----------------------------------------------------------------------------------


@pytest.fixture
def docs(anonymous) -> str:
    response = anonymous.get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


def referenced_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)


def test_docs_reference_only_files_on_this_site(docs):
    urls = referenced_urls(docs)

    assert len(urls) >= 3  # stylesheet, bundle, preset (and the favicon)
    for url in urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
    assert "http://" not in docs
    assert "https://" not in docs


def test_docs_turn_off_the_online_validator_badge(docs):
    # Swagger UI would fetch a badge from validator.swagger.io otherwise.
    assert re.search(r'"validatorUrl":\s*null', docs)


def test_docs_point_at_this_sites_schema(docs):
    assert '"/api/schema/"' in docs


def test_every_static_file_the_docs_reference_is_served(anonymous, docs):
    static = [url for url in referenced_urls(docs) if url.startswith("/static/")]

    assert {url.rsplit("/", 1)[-1] for url in static} >= {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
    }
    for url in static:
        response = anonymous.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert len(body) > 100, url
