"""SPEC 2: no input, however malformed, produces a 5xx; each gets its documented 4xx.

The test client re-raises any exception a view lets through, so a 5xx here
would fail the test rather than return a response.
"""

import json

import pytest
from django.test import override_settings

from tests.e2e.helpers import (
    SKU,
    allocated,
    assert_error,
    assert_field_errors,
    create_batch,
    stock,
)

pytestmark = pytest.mark.django_db

BAD_IDENTIFIERS = [
    pytest.param("", id="empty"),
    pytest.param("x" * 256, id="256-chars"),
    pytest.param("-abc", id="leading-dash"),
    pytest.param(".abc", id="leading-dot"),
    pytest.param(":abc", id="leading-colon"),
    pytest.param("_abc", id="leading-underscore"),
    pytest.param("a b", id="inner-space"),
    pytest.param(" ab", id="leading-space"),
    pytest.param("ab ", id="trailing-space"),
    pytest.param("ab\n", id="trailing-newline"),
    pytest.param("a/b", id="slash"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("caf\u00e9", id="unicode-letter"),
    pytest.param("\uff21\uff22", id="fullwidth"),
    pytest.param("a\u200bb", id="zero-width-space"),
    pytest.param(123, id="int"),
    pytest.param(1.5, id="float"),
    pytest.param(True, id="bool"),
    pytest.param(None, id="null"),
    pytest.param(["a"], id="list"),
    pytest.param({"a": 1}, id="object"),
]

BAD_QUANTITIES = [
    pytest.param(-1, id="negative"),
    pytest.param(2_147_483_648, id="above-max"),
    pytest.param(10**30, id="huge"),
    pytest.param(1.5, id="float"),
    pytest.param(2.0, id="integral-float"),
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
    pytest.param("5", id="numeric-string"),
    pytest.param("abc", id="string"),
    pytest.param("", id="empty-string"),
    pytest.param(None, id="null"),
    pytest.param([5], id="list"),
    pytest.param({"n": 5}, id="object"),
]

BAD_ETAS = [
    pytest.param("2026-1-5", id="short-parts"),
    pytest.param("20261121", id="compact"),
    pytest.param("2026-02-30", id="no-such-day"),
    pytest.param("2026-13-01", id="no-such-month"),
    pytest.param("0000-01-01", id="year-zero"),
    pytest.param("2026-11-21T00:00:00", id="datetime"),
    pytest.param("21/11/2026", id="european"),
    pytest.param(" 2026-11-21", id="leading-space"),
    pytest.param("", id="empty"),
    pytest.param("tomorrow", id="word"),
    pytest.param(20261121, id="number"),
    pytest.param(True, id="bool"),
    pytest.param(["2026-11-21"], id="list"),
]


def batch_body(**overrides) -> dict:
    return {"reference": "b1", "sku": SKU, "purchased_quantity": 10, **overrides}


def assert_no_batches(api) -> None:
    assert api.get("/api/batches/").json()["results"] == []


# -- batch fields ------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["reference", "sku"])
@pytest.mark.parametrize("value", BAD_IDENTIFIERS)
def test_batch_with_a_bad_identifier_is_a_400_field_error(api, field, value):
    response = api.post("/api/batches/", batch_body(**{field: value}), format="json")

    assert_field_errors(response, field)
    assert_no_batches(api)


@pytest.mark.parametrize("value", BAD_QUANTITIES)
def test_batch_with_a_bad_quantity_is_a_400_field_error(api, value):
    response = api.post("/api/batches/", batch_body(purchased_quantity=value), format="json")

    assert_field_errors(response, "purchased_quantity")
    assert_no_batches(api)


@pytest.mark.parametrize("value", BAD_ETAS)
def test_batch_with_a_bad_eta_is_a_400_field_error(api, value):
    response = api.post("/api/batches/", batch_body(eta=value), format="json")

    assert_field_errors(response, "eta")
    assert_no_batches(api)


def test_batch_missing_every_field_names_each_required_one(api):
    body = assert_field_errors(
        api.post("/api/batches/", {}, format="json"), "reference", "sku", "purchased_quantity"
    )

    assert body["reference"] == ["This field is required."]


def test_every_bad_field_is_reported_at_once(api):
    response = api.post(
        "/api/batches/",
        {"reference": "-x", "sku": "a b", "purchased_quantity": -1, "eta": "2026-1-5"},
        format="json",
    )

    assert_field_errors(response, "reference", "sku", "purchased_quantity", "eta")


@pytest.mark.parametrize("value", BAD_QUANTITIES)
def test_patch_with_a_bad_quantity_is_a_400_and_changes_nothing(api, value):
    create_batch(api, "b1", qty=10)
    allocated(api, "o1", qty=4)

    response = api.patch("/api/batches/b1/", {"purchased_quantity": value}, format="json")

    assert_field_errors(response, "purchased_quantity")
    assert stock(api, "b1") == (10, 4, 6)


@pytest.mark.parametrize("value", BAD_ETAS)
def test_patch_with_a_bad_eta_is_a_400_and_changes_nothing(api, value):
    create_batch(api, "b1", qty=10, eta="2027-01-01")

    response = api.patch("/api/batches/b1/", {"eta": value}, format="json")

    assert_field_errors(response, "eta")
    assert api.get("/api/batches/b1/").json()["eta"] == "2027-01-01"


@pytest.mark.parametrize("field", ["reference", "sku"])
@pytest.mark.parametrize(
    "value", [pytest.param("a b", id="bad-string"), pytest.param(5, id="int"), None]
)
def test_patch_with_a_malformed_reference_or_sku_is_a_400(api, field, value):
    create_batch(api, "b1", qty=10)

    assert_field_errors(api.patch("/api/batches/b1/", {field: value}, format="json"), field)
    assert stock(api, "b1") == (10, 0, 10)


# -- line fields ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["order_id", "sku"])
@pytest.mark.parametrize("value", BAD_IDENTIFIERS)
def test_line_with_a_bad_identifier_is_a_400_field_error(api, field, value):
    create_batch(api, "b1", qty=10)
    body = {"order_id": "o1", "sku": SKU, "qty": 1, field: value}

    assert_field_errors(api.post("/api/allocations/", body, format="json"), field)
    assert stock(api, "b1") == (10, 0, 10)


@pytest.mark.parametrize(
    "value", [*BAD_QUANTITIES, pytest.param(0, id="zero"), pytest.param(-(2**31), id="min-int")]
)
def test_line_with_a_bad_qty_is_a_400_field_error(api, value):
    create_batch(api, "b1", qty=10)
    body = {"order_id": "o1", "sku": SKU, "qty": value}

    assert_field_errors(api.post("/api/allocations/", body, format="json"), "qty")
    assert stock(api, "b1") == (10, 0, 10)


def test_line_of_the_largest_qty_is_valid_and_simply_out_of_stock(api):
    create_batch(api, "b1", qty=10)

    response = api.post(
        "/api/allocations/", {"order_id": "o1", "sku": SKU, "qty": 2_147_483_647}, format="json"
    )

    body = assert_error(response, 409, "out_of_stock")
    assert (body["requested"], body["available"]) == (2_147_483_647, 10)


# -- malformed bodies ----------------------------------------------------------------------


def post_raw(api, body, content_type="application/json", url="/api/batches/"):
    return api.generic("POST", url, body, content_type=content_type)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("{", id="truncated"),
        pytest.param('{"reference": "b1",}', id="trailing-comma"),
        pytest.param("{'reference': 'b1'}", id="single-quotes"),
        pytest.param('{"purchased_quantity": NaN}', id="nan"),
        pytest.param('{"purchased_quantity": Infinity}', id="infinity"),
        pytest.param('{"purchased_quantity": -Infinity}', id="minus-infinity"),
        pytest.param("[" * 100_000, id="deep-array"),
        pytest.param('{"a":' * 100_000, id="deep-object"),
        pytest.param("[" * 100_000 + "]" * 100_000, id="deep-array-closed"),
        pytest.param("9" * 5000, id="number-too-long"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
    ],
)
def test_bad_json_is_a_400_parse_error(api, raw):
    body = assert_error(post_raw(api, raw), 400, "parse_error")

    assert set(body) == {"detail", "code"}
    assert_no_batches(api)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("[]", id="array"),
        pytest.param(
            '[{"reference": "b1", "sku": "S", "purchased_quantity": 1}]', id="array-of-one"
        ),
        pytest.param('"b1"', id="string"),
        pytest.param("42", id="number"),
        pytest.param("true", id="bool"),
        pytest.param("null", id="null"),
        pytest.param("1e999", id="overflowing-number"),
    ],
)
def test_a_json_body_that_is_not_an_object_is_a_400(api, raw):
    response = post_raw(api, raw)

    assert response.status_code == 400
    assert set(response.json()) == {"non_field_errors"}
    assert_no_batches(api)


def test_an_empty_json_body_reports_the_missing_fields(api):
    assert_field_errors(post_raw(api, ""), "reference", "sku", "purchased_quantity")


def test_a_huge_integer_inside_an_object_is_a_400(api):
    raw = '{"reference": "b1", "sku": "S", "purchased_quantity": ' + "9" * 4000 + "}"

    assert_field_errors(post_raw(api, raw), "purchased_quantity")
    assert_no_batches(api)


def test_a_deeply_nested_field_value_is_a_400(api):
    raw = json.dumps(batch_body(reference=[[[[[[[[["b1"]]]]]]]]]))

    assert_field_errors(post_raw(api, raw), "reference")


def test_unknown_body_keys_are_ignored(api):
    response = api.post("/api/batches/", batch_body(colour="red", id=99), format="json")

    assert response.status_code == 201
    assert stock(api, "b1") == (10, 0, 10)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "text/csv", "application/octet-stream", "x" * 300],
)
def test_an_unsupported_content_type_is_a_415(api, content_type):
    assert_error(
        post_raw(api, json.dumps(batch_body()), content_type=content_type),
        415,
        "unsupported_media_type",
    )
    assert_no_batches(api)


def test_a_415_applies_to_patch_too(api):
    create_batch(api, "b1", qty=10)

    response = api.generic(
        "PATCH", "/api/batches/b1/", '{"purchased_quantity": 1}', content_type="text/plain"
    )

    assert_error(response, 415, "unsupported_media_type")
    assert stock(api, "b1") == (10, 0, 10)


def test_json_with_a_charset_is_accepted(api):
    response = post_raw(
        api, json.dumps(batch_body()), content_type="application/json; charset=utf-8"
    )

    assert response.status_code == 201
    assert stock(api, "b1") == (10, 0, 10)


@pytest.mark.parametrize(
    "charset", ["rot13", "base64", "hex", "zlib", "utf-16", "utf-32", "punycode"]
)
def test_a_json_body_in_an_unusable_charset_is_a_400(api, charset):
    response = post_raw(
        api, json.dumps(batch_body()).encode(), content_type=f"application/json; charset={charset}"
    )

    assert_error(response, 400, "parse_error")
    assert_no_batches(api)


@pytest.mark.parametrize("charset", ["rot13", "hex"])
def test_a_form_body_in_an_unusable_charset_is_a_400(api, charset):
    response = post_raw(
        api,
        "reference=b1&sku=S&purchased_quantity=1",
        content_type=f"application/x-www-form-urlencoded; charset={charset}",
    )

    assert_error(response, 400, "parse_error")
    assert_no_batches(api)


def test_a_malformed_multipart_body_is_a_400(api):
    response = post_raw(api, "garbage", content_type="multipart/form-data; boundary=xyz")

    assert response.status_code == 400
    assert_no_batches(api)


def test_a_non_numeric_content_length_is_a_400(api):
    response = api.generic(
        "POST",
        "/api/batches/",
        json.dumps(batch_body()),
        content_type="application/json",
        CONTENT_LENGTH="lots",
    )

    assert_error(response, 400, "parse_error")
    assert_no_batches(api)


# -- body size -------------------------------------------------------------------------------


@override_settings(API_MAX_BODY_BYTES=64)
def test_a_json_body_over_the_limit_is_a_413(api):
    raw = json.dumps(batch_body(padding="x" * 100))
    assert len(raw) > 64

    body = assert_error(post_raw(api, raw), 413, "payload_too_large")

    assert "64" in body["detail"]
    assert_no_batches(api)


def test_the_json_parser_bounds_what_it_reads_by_itself(api, settings):
    # The middleware answers first when Content-Length says too much; without
    # it (a body whose length is not declared up front) the parser still stops.
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "allocation.api.middleware.APIBodyLimitMiddleware"
    ]
    settings.API_MAX_BODY_BYTES = 64

    response = post_raw(api, json.dumps(batch_body(padding="x" * 100)))

    assert_error(response, 413, "payload_too_large")
    assert response.data["code"] == "payload_too_large"  # a DRF response: the parser's
    assert_no_batches(api)


@override_settings(API_MAX_BODY_BYTES=64)
def test_a_body_at_the_limit_is_read(api):
    raw = json.dumps({"reference": "b1", "sku": "S", "purchased_quantity": 1})
    raw += " " * (64 - len(raw))
    assert len(raw) == 64

    assert post_raw(api, raw).status_code == 201


@override_settings(API_MAX_BODY_BYTES=64)
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_any_body_over_the_limit_is_a_413_whatever_its_type(api, content_type):
    assert_error(post_raw(api, "x" * 65, content_type=content_type), 413, "payload_too_large")


@override_settings(API_MAX_BODY_BYTES=64)
def test_a_patch_over_the_limit_is_a_413_and_changes_nothing(db, api):
    create_batch(api, "b1", qty=5)

    response = api.generic(
        "PATCH",
        "/api/batches/b1/",
        json.dumps({"purchased_quantity": 1, "padding": "x" * 100}),
        content_type="application/json",
    )

    assert_error(response, 413, "payload_too_large")
    assert stock(api, "b1") == (5, 0, 5)


# -- routes and methods ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/nope/",
        "/api/nope",
        "/api/batches",
        "/api/allocations",
        "/api/products/",
        "/api/batches/b1/extra/",
        "/api/allocations/o1/",
        "/api/allocations/o1/RED-CHAIR/extra/",
        "/api/batches/a%00b/",
        "/api/allocations/o%001/RED-CHAIR/",
        "/api/products/a%00b/",
        "/api/batches/-b1/",
        "/api/batches/" + "x" * 256 + "/",
        "/api/batches/caf%C3%A9/",
        "/api/batches/a%20b/",
        "/api/batches/b1.json",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
def test_unknown_api_routes_are_a_json_404(api, path, method):
    create_batch(api, "b1", qty=5)

    response = api.generic(method, path, "{}", content_type="application/json")

    assert_error(response, 404, "not_found")
    assert stock(api, "b1") == (5, 0, 5)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/batches/b1/"),
        ("POST", "/api/batches/b1/"),
        ("PUT", "/api/batches/"),
        ("PATCH", "/api/batches/"),
        ("DELETE", "/api/batches/"),
        ("PATCH", "/api/allocations/"),
        ("DELETE", "/api/allocations/"),
        ("PUT", "/api/allocations/o1/RED-CHAIR/"),
        ("PATCH", "/api/allocations/o1/RED-CHAIR/"),
        ("POST", "/api/allocations/o1/RED-CHAIR/"),
        ("POST", "/api/products/RED-CHAIR/"),
        ("DELETE", "/api/products/RED-CHAIR/"),
    ],
)
def test_an_unsupported_method_is_a_405(api, method, path):
    create_batch(api, "b1", qty=5)
    allocated(api, "o1", qty=2)

    response = api.generic(method, path, "{}", content_type="application/json")

    assert_error(response, 405, "method_not_allowed")
    assert stock(api, "b1") == (5, 2, 3)


def test_an_unacceptable_accept_header_is_a_406(api):
    response = api.get("/api/batches/", HTTP_ACCEPT="application/xml")

    assert response.status_code == 406
    assert response.json()["code"] == "not_acceptable"


def test_an_unknown_format_parameter_is_ignored(api):
    create_batch(api, "b1", qty=5)

    response = api.get("/api/batches/?format=bogus")

    assert response.status_code == 200
    assert [b["reference"] for b in response.json()["results"]] == ["b1"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/batches/?sku=a%00b",
        "/api/batches/?sku=" + "x" * 5000,
        "/api/allocations/?sku=a%00b",
        "/api/allocations/?order_id=%00",
        "/api/allocations/?batch=a%00b",
        "/api/allocations/?batch=" + "x" * 5000,
    ],
)
def test_hostile_filter_values_never_fail(api, url):
    create_batch(api, "b1", qty=5)
    allocated(api, "o1", qty=1)

    response = api.get(url)

    assert response.status_code in (200, 400), response.content
    if response.status_code == 200:
        assert response.json()["results"] == []


@pytest.mark.parametrize(
    "headers, query, expected",
    [
        ({}, "", "application/json"),
        ({"HTTP_ACCEPT": "*/*"}, "", "application/json"),
        ({"HTTP_ACCEPT": "application/json"}, "", "application/json"),
        ({"HTTP_ACCEPT": "text/html"}, "", "text/html; charset=utf-8"),
        ({"HTTP_ACCEPT": "text/html"}, "?format=api", "text/html; charset=utf-8"),
        ({"HTTP_ACCEPT": "*/*"}, "?format=json", "application/json"),
        ({"HTTP_ACCEPT": "application/json; indent=2"}, "", "application/json"),
    ],
)
def test_common_accept_headers_answer_as_full_negotiation_does(api, headers, query, expected):
    # The answer for the common headers is remembered after the first
    # request; asking twice checks the remembered one too.
    for _ in range(2):
        response = api.get(f"/api/batches/{query}", **headers)
        assert response.status_code == 200
        assert response["Content-Type"] == expected
