"""Schema fuzzing: schemathesis generates requests from /api/schema/ for every operation.

In process, through the WSGI application and the test database, as an
authenticated superuser: every answer must be a non-5xx, documented status
with a documented content type and a body that matches the documented
schema; schema-valid requests must be accepted and schema-invalid ones
rejected (schemathesis' checks, configured in ``schemathesis.toml``).
``bench/fuzz.py`` runs the full schemathesis CLI against real gunicorn
workers.

Bounded for CI: ``FUZZ_EXAMPLES`` (default 15) examples per operation and mode.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token

from allocation import services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 15))
CONFIG = Path(__file__).resolve().parents[2] / "schemathesis.toml"

OPERATIONS = [
    ("GET", "/api/batches/"),
    ("POST", "/api/batches/"),
    ("GET", "/api/batches/{reference}/"),
    ("PATCH", "/api/batches/{reference}/"),
    ("DELETE", "/api/batches/{reference}/"),
    ("GET", "/api/allocations/"),
    ("POST", "/api/allocations/"),
    ("GET", "/api/allocations/{order_id}/{sku}/"),
    ("DELETE", "/api/allocations/{order_id}/{sku}/"),
    ("GET", "/api/products/{sku}/"),
    ("GET", "/api/webhooks/"),
    ("POST", "/api/webhooks/"),
    ("GET", "/api/webhooks/{id}/"),
    ("DELETE", "/api/webhooks/{id}/"),
    ("POST", "/api/orders/"),
    ("GET", "/api/orders/{order_id}/"),
    ("DELETE", "/api/orders/{order_id}/"),
    ("GET", "/api/events/"),
    ("GET", "/api/events/{id}/"),
]
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]


@pytest.fixture
def api_schema(db, settings):
    # schemathesis' WSGI client calls the app "localhost".
    settings.ALLOWED_HOSTS = ["localhost"]
    # The real handler closes the connection after each request, which would
    # end the test's transaction; Django's own test client disconnects this too.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi(
            "/api/schema/",
            get_wsgi_application(),
            config=schemathesis.Config.from_path(CONFIG),
        )
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def token(db) -> str:
    user = UserFactory(username="fuzzer", is_superuser=True)
    # Some stock under short names the generator hits often, so generated
    # allocations also succeed, split, repeat and conflict.
    services.add_batch(reference="0", sku="0", purchased_quantity=50)
    services.add_batch(reference="1", sku="0", purchased_quantity=5)
    services.allocate(order_id="0", sku="0", qty=2)
    return Token.objects.create(user=user).key


def test_the_fuzzed_operations_are_every_operation_in_the_schema(api_schema):
    documented = {
        (operation.method.upper(), operation.path)
        for operation in (result.ok() for result in api_schema.get_all_operations())
    }
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_generated_requests_as_documented(
    api_schema, token, method, path, mode
):
    operation = api_schema[path][method]
    headers = {"Authorization": f"Token {token}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_documented(case):
        case.call_and_validate(headers=headers)

    answers_as_documented()
