"""The permissions matrix: every endpoint x every kind of caller -> the exact status.

Callers: anonymous, an authenticated user without permissions, a member of
the ``viewer`` group, a member of the ``warehouse ops`` group (both created by
migration 0002), and a superuser; all but the anonymous one use a token. A
refused write changes nothing; an allowed one has exactly its effect. Session
callers must send the CSRF token with every write.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from allocation import models as orm
from allocation import services
from tests.e2e.helpers import send
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

SKU = "RED-CHAIR"

CALLERS = ["anonymous", "no_permissions", "viewer", "warehouse_ops", "superuser"]

# (method, path, body) -> status per caller, in CALLERS order.
MATRIX = [
    ("GET", "/api/", None, (401, 200, 200, 200, 200)),
    ("GET", "/api/batches/", None, (401, 200, 200, 200, 200)),
    (
        "POST",
        "/api/batches/",
        {"reference": "b2", "sku": SKU, "purchased_quantity": 5},
        (401, 403, 403, 201, 201),
    ),
    ("GET", "/api/batches/b1/", None, (401, 200, 200, 200, 200)),
    ("PATCH", "/api/batches/b1/", {"purchased_quantity": 12}, (401, 403, 403, 200, 200)),
    ("DELETE", "/api/batches/b1/", None, (401, 403, 403, 200, 200)),
    ("GET", "/api/allocations/", None, (401, 200, 200, 200, 200)),
    # ``warehouse ops`` changes stock and deallocates; it does not place orders.
    (
        "POST",
        "/api/allocations/",
        {"order_id": "o2", "sku": SKU, "qty": 1},
        (401, 403, 403, 403, 201),
    ),
    ("GET", f"/api/allocations/o1/{SKU}/", None, (401, 200, 200, 200, 200)),
    ("DELETE", f"/api/allocations/o1/{SKU}/", None, (401, 403, 403, 204, 204)),
    ("GET", f"/api/products/{SKU}/", None, (401, 200, 200, 200, 200)),
    # Events need view_event (SPEC 6.1), which both groups have.
    ("GET", "/api/events/", None, (401, 403, 200, 200, 200)),
    # {first}: the id of b1's batch_created (PostgreSQL does not restart ids per test).
    ("GET", "/api/events/{first}/", None, (401, 403, 200, 200, 200)),
    # Service endpoints need no authentication (SPEC 2.4).
    ("GET", "/api/schema/", None, (200, 200, 200, 200, 200)),
    ("GET", "/api/docs/", None, (200, 200, 200, 200, 200)),
    ("GET", "/healthz", None, (200, 200, 200, 200, 200)),
]

BEFORE = ({"b1": (10, 4)}, {"o1": ("allocated", 4)})

# The state after each write that is allowed (batches: purchased, allocated).
EFFECTS = {
    ("POST", "/api/batches/"): ({"b1": (10, 4), "b2": (5, 0)}, {"o1": ("allocated", 4)}),
    ("PATCH", "/api/batches/b1/"): ({"b1": (12, 4)}, {"o1": ("allocated", 4)}),
    ("DELETE", "/api/batches/b1/"): ({}, {"o1": ("backordered", 4)}),
    ("POST", "/api/allocations/"): (
        {"b1": (10, 5)},
        {"o1": ("allocated", 4), "o2": ("allocated", 1)},
    ),
    ("DELETE", f"/api/allocations/o1/{SKU}/"): ({"b1": (10, 0)}, {}),
}

CASES = [
    pytest.param(method, path, body, caller, status, id=f"{method} {path} as {caller}")
    for method, path, body, statuses in MATRIX
    for caller, status in zip(CALLERS, statuses, strict=True)
]


def state() -> tuple[dict, dict]:
    batches = {
        ref: (purchased, allocated)
        for ref, purchased, allocated in orm.Batch.objects.values_list(
            "reference", "purchased_quantity", "allocated_quantity"
        )
    }
    lines = {
        order: (status, qty)
        for order, status, qty in orm.OrderLine.objects.values_list("order_id", "status", "qty")
    }
    return batches, lines


@pytest.fixture
def stocked(db):
    """b1 (10 units) with o1 (4) on it."""
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10)
    services.allocate(order_id="o1", sku=SKU, qty=4)
    assert state() == BEFORE


def make_user(caller: str):
    if caller == "no_permissions":
        return UserFactory(username="plain", is_staff=False)
    if caller == "viewer":
        user = UserFactory(username="watcher")
        user.groups.add(Group.objects.get(name="viewer"))
        return user
    if caller == "warehouse_ops":
        user = UserFactory(username="ops")
        user.groups.add(Group.objects.get(name="warehouse ops"))
        return user
    return UserFactory(username="root", is_superuser=True)


@pytest.mark.parametrize(("method", "path", "body", "caller", "status"), CASES)
def test_every_endpoint_answers_each_caller_with_the_exact_status(
    stocked, client_for, method, path, body, caller, status
):
    client = APIClient() if caller == "anonymous" else client_for(make_user(caller))
    path = path.replace("{first}", str(orm.Event.objects.earliest("id").id))

    response = send(client, method, path, body)

    assert response.status_code == status, response.content
    if status in (401, 403):
        expected_code = "not_authenticated" if status == 401 else "permission_denied"
        assert response.json()["code"] == expected_code
    if status == 401:
        assert response["WWW-Authenticate"] == "Token"
    if method == "GET" or status >= 400:
        assert state() == BEFORE
    else:
        assert state() == EFFECTS[method, path]


def test_the_groups_exist_with_the_documented_permissions(db):
    def codenames(name: str) -> set[str]:
        return set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))

    assert codenames("viewer") == {
        "view_batch",
        "view_orderline",
        "view_event",
        "view_webhooksubscription",
    }
    assert codenames("warehouse ops") == {
        "view_event",
        "view_batch",
        "add_batch",
        "change_batch",
        "delete_batch",
        "view_orderline",
        "delete_orderline",
        "view_webhooksubscription",
        "add_webhooksubscription",
        "change_webhooksubscription",
        "delete_webhooksubscription",
    }


# -- sessions: every write needs the CSRF token ----------------------------------------

# (method, path, body, the superuser's status)
WRITES = [(m, p, b, statuses[-1]) for m, p, b, statuses in MATRIX if m != "GET"]
WRITE_IDS = [f"{m} {p}" for m, p, _, _ in WRITES]


@pytest.fixture
def session(db) -> APIClient:
    UserFactory(username="clerk", is_superuser=True)
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="clerk", password=PASSWORD)
    return client


@pytest.mark.parametrize(("method", "path", "body", "status"), WRITES, ids=WRITE_IDS)
def test_a_session_write_without_the_csrf_token_is_refused(
    stocked, session, method, path, body, status
):
    response = send(session, method, path, body)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "CSRF" in response.json()["detail"]
    assert state() == BEFORE


@pytest.mark.parametrize(("method", "path", "body", "status"), WRITES, ids=WRITE_IDS)
def test_a_session_write_with_the_csrf_token_is_accepted(
    stocked, session, method, path, body, status
):
    session.get("/api-auth/login/")  # sets the csrftoken cookie
    token = session.cookies["csrftoken"].value

    response = send(session, method, path, body, HTTP_X_CSRFTOKEN=token)

    assert response.status_code == status, response.content
    assert state() == EFFECTS[method, path]
