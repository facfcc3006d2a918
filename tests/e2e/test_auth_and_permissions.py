"""SPEC 2: every endpoint needs authentication; writes need the matching model permission."""

import pytest
from rest_framework.test import APIClient

from tests.e2e.helpers import (
    SKU,
    allocated,
    assert_error,
    create_batch,
    held,
    placement,
    send,
    stock,
)
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


READS = [
    ("GET", "/api/batches/"),
    ("GET", "/api/batches/b1/"),
    ("GET", "/api/allocations/"),
    ("GET", f"/api/allocations/o1/{SKU}/"),
    ("GET", f"/api/products/{SKU}/"),
]
WRITES = [
    ("POST", "/api/batches/", {"reference": "b2", "sku": SKU, "purchased_quantity": 5}),
    ("PATCH", "/api/batches/b1/", {"purchased_quantity": 1}),
    ("DELETE", "/api/batches/b1/", None),
    ("POST", "/api/allocations/", {"order_id": "o2", "sku": SKU, "qty": 1}),
    ("DELETE", f"/api/allocations/o1/{SKU}/", None),
]


@pytest.fixture
def stocked(api):
    """b1 (10) with o1 (4) on it, made by the superuser."""
    create_batch(api, "b1", qty=10)
    allocated(api, "o1", qty=4)


def assert_untouched(api) -> None:
    assert stock(api, "b1") == (10, 4, 6)
    assert held(api, "b1") == [("o1", 4)]
    assert [b["reference"] for b in api.get("/api/batches/").json()["results"]] == ["b1"]
    assert len(api.get("/api/allocations/").json()["results"]) == 1


# -- no or bad credentials -------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), [(m, p, None) for m, p in READS] + WRITES)
def test_no_credentials_is_a_401_for_every_endpoint(api, stocked, anonymous, method, path, body):
    response = send(anonymous, method, path, body)

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
    assert_untouched(api)


@pytest.mark.parametrize(
    "header",
    [
        "Token 0123456789abcdef0123456789abcdef01234567",
        "Token",
        "Token a b",
        "Bearer xyz",
        "Basic Zm9vOmJhcg==",
        "Token \u00e9",
        "Token " + "a" * 10_000,
    ],
)
def test_a_bad_token_is_a_401(api, stocked, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/batches/")

    assert response.status_code == 401
    assert response.json()["code"] in {"authentication_failed", "not_authenticated"}


def test_an_inactive_users_token_is_a_401(api, stocked, client_for):
    user = UserFactory(is_superuser=True, is_active=False)

    assert_error(client_for(user).get("/api/batches/"), 401, "authentication_failed")


# -- sessions ----------------------------------------------------------------------------


def test_a_logged_in_session_can_read(api, stocked):
    UserFactory(username="clerk")
    client = APIClient()
    assert client.login(username="clerk", password=PASSWORD)

    for _, path in READS:
        assert client.get(path).status_code == 200, path
    assert client.get("/api/batches/b1/").json()["allocated_quantity"] == 4


def test_a_session_write_needs_the_csrf_token(api, stocked):
    UserFactory(username="clerk", is_superuser=True)
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="clerk", password=PASSWORD)

    response = client.post(
        "/api/batches/", {"reference": "b2", "sku": SKU, "purchased_quantity": 5}, format="json"
    )

    body = assert_error(response, 403, "permission_denied")
    assert "CSRF" in body["detail"]
    assert_untouched(api)


def test_a_session_write_with_the_csrf_token_works(api, stocked):
    UserFactory(username="clerk", is_superuser=True)
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="clerk", password=PASSWORD)
    client.get("/api-auth/login/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value

    response = client.post(
        "/api/batches/",
        {"reference": "b2", "sku": SKU, "purchased_quantity": 5},
        format="json",
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 201
    assert stock(api, "b2") == (5, 0, 5)


def test_a_logged_out_session_is_refused(api, stocked):
    UserFactory(username="clerk")
    client = APIClient()
    client.login(username="clerk", password=PASSWORD)
    client.logout()

    assert client.get("/api/batches/").status_code == 401


# -- permissions -------------------------------------------------------------------------


@pytest.fixture
def no_permissions(client_for):
    return client_for(UserFactory(username="viewer"))


@pytest.mark.parametrize(("method", "path"), READS)
def test_a_user_without_permissions_can_read(api, stocked, no_permissions, method, path):
    response = send(no_permissions, method, path)

    assert response.status_code == 200
    assert response.json() == api.get(path).json()


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_a_user_without_permissions_cannot_write(api, stocked, no_permissions, method, path, body):
    assert_error(send(no_permissions, method, path, body), 403, "permission_denied")

    assert_untouched(api)


def test_add_orderline_allows_allocating_and_nothing_else(api, stocked, client_for):
    clerk = client_for(UserFactory(permissions=["add_orderline"]))

    assert allocated(clerk, "o2", qty=3)["batches"] == [{"reference": "b1", "qty": 3}]
    assert placement(api, "o2") == ("allocated", [("b1", 3)])
    assert stock(api, "b1") == (10, 7, 3)

    assert_error(send(clerk, "DELETE", f"/api/allocations/o2/{SKU}/"), 403, "permission_denied")
    for method, path, body in WRITES:
        if (method, path) != ("POST", "/api/allocations/"):
            assert_error(send(clerk, method, path, body), 403, "permission_denied")
    assert stock(api, "b1") == (10, 7, 3)


def test_delete_orderline_allows_deallocating(api, stocked, client_for):
    clerk = client_for(UserFactory(permissions=["delete_orderline"]))

    assert send(clerk, "DELETE", f"/api/allocations/o1/{SKU}/").status_code == 204

    assert stock(api, "b1") == (10, 0, 10)
    assert_error(send(clerk, *WRITES[3]), 403, "permission_denied")


def test_add_batch_allows_creating_batches_only(api, stocked, client_for):
    buyer = client_for(UserFactory(permissions=["add_batch"]))

    assert create_batch(buyer, "b2", qty=5)["available_quantity"] == 5
    assert stock(api, "b2") == (5, 0, 5)

    assert_error(send(buyer, *WRITES[1]), 403, "permission_denied")
    assert_error(send(buyer, *WRITES[2]), 403, "permission_denied")
    assert stock(api, "b1") == (10, 4, 6)


def test_change_batch_allows_patching_only(api, stocked, client_for):
    buyer = client_for(UserFactory(permissions=["change_batch"]))

    response = send(buyer, "PATCH", "/api/batches/b1/", {"purchased_quantity": 12})

    assert response.status_code == 200
    assert stock(api, "b1") == (12, 4, 8)
    assert_error(send(buyer, *WRITES[0]), 403, "permission_denied")
    assert_error(send(buyer, *WRITES[2]), 403, "permission_denied")
    assert stock(api, "b1") == (12, 4, 8)


def test_delete_batch_allows_deleting_batches(api, stocked, client_for):
    buyer = client_for(UserFactory(permissions=["delete_batch"]))

    response = send(buyer, "DELETE", "/api/batches/b1/")

    assert response.status_code == 200
    assert response.json()["backordered"][0]["order_id"] == "o1"
    assert api.get("/api/batches/b1/").status_code == 404
    assert placement(api, "o1") == ("backordered", [])


def test_permission_is_checked_before_the_object_exists(api, stocked, no_permissions):
    # A 403, not a 404: a user without rights learns nothing about names.
    assert_error(send(no_permissions, "DELETE", "/api/batches/nope/"), 403, "permission_denied")


# -- browsable API and login page -------------------------------------------------------


@pytest.fixture
def staff_browser(db):
    client = APIClient()
    client.force_login(
        UserFactory(
            username="staff",
            is_staff=True,
            permissions=["add_batch", "change_batch", "add_orderline"],
        )
    )
    return client


def test_browsable_list_offers_a_form_to_post(api, stocked, staff_browser):
    response = staff_browser.get("/api/batches/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert '<form action="/api/batches/" method="POST"' in html
    for field in ("reference", "sku", "purchased_quantity", "eta"):
        assert f'name="{field}"' in html
    assert "b1" in html


def test_browsable_detail_pages_render(api, stocked, staff_browser):
    for path in (
        "/api/batches/b1/",
        f"/api/allocations/o1/{SKU}/",
        "/api/allocations/",
        f"/api/products/{SKU}/",
        "/api/",
    ):
        response = staff_browser.get(path, HTTP_ACCEPT="text/html")
        assert response.status_code == 200, path
        assert response["Content-Type"].startswith("text/html"), path


def test_browsable_errors_render_as_html_for_a_browser(api, stocked, staff_browser):
    response = staff_browser.get("/api/batches/nope/", HTTP_ACCEPT="text/html")

    assert response.status_code == 404
    assert b"not_found" in response.content


def test_the_html_form_creates_a_batch(api, stocked, staff_browser):
    # An HTML form sends every value as a string; JSON clients may not.
    response = staff_browser.post(
        "/api/batches/",
        {"reference": "b2", "sku": SKU, "purchased_quantity": "7", "eta": ""},
        HTTP_ACCEPT="text/html",
    )

    assert response.status_code == 201
    assert stock(api, "b2") == (7, 0, 7)
    assert api.get("/api/batches/b2/").json()["status"] == "in_stock"


def test_the_html_form_allocates_a_line(api, stocked, staff_browser):
    response = staff_browser.post(
        "/api/allocations/", {"order_id": "o2", "sku": SKU, "qty": "2"}, HTTP_ACCEPT="text/html"
    )

    assert response.status_code == 201
    assert placement(api, "o2") == ("allocated", [("b1", 2)])


def test_the_html_form_still_rejects_a_non_integer(api, stocked, staff_browser):
    response = staff_browser.post(
        "/api/batches/", {"reference": "b2", "sku": SKU, "purchased_quantity": "7.5"}
    )

    assert response.status_code == 400
    assert set(response.json()) == {"purchased_quantity"}
    assert api.get("/api/batches/b2/").status_code == 404


def test_api_auth_login_page_exists_and_logs_in(api, stocked):
    UserFactory(username="clerk")
    client = APIClient()

    page = client.get("/api-auth/login/")
    assert page.status_code == 200
    assert b'name="username"' in page.content

    response = client.post(
        "/api-auth/login/?next=/api/batches/", {"username": "clerk", "password": PASSWORD}
    )

    assert response.status_code == 302
    assert response["Location"] == "/api/batches/"
    assert client.get("/api/batches/").json()["results"][0]["reference"] == "b1"
