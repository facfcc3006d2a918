"""The allocate path's serializers take shortcuts; here they answer as their fields would.

``LineInputSerializer`` accepts a well-formed JSON body without building its
fields, and ``LineSerializer`` renders without building them. Each is compared
with DRF's generic path over the same serializer class, on random input.
"""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from allocation.api.serializers import LineInputSerializer, LineSerializer
from domain.model import MAX_QUANTITY, Allocation, OrderLine, Part


class GenericLineInput(LineInputSerializer):
    run_validation = serializers.Serializer.run_validation


class GenericLine(LineSerializer):
    to_representation = serializers.Serializer.to_representation


identifiers = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:\-]{0,20}\Z")
anything = st.one_of(
    identifiers,
    st.text(max_size=12),
    st.text(alphabet="ab1-_. \x00é", min_size=250, max_size=260),
    st.integers(min_value=-3, max_value=MAX_QUANTITY + 3),
    st.sampled_from([0, 1, MAX_QUANTITY, MAX_QUANTITY + 1, 2**70, -(2**70)]),
    st.booleans(),
    st.floats(allow_nan=False),
    st.none(),
    st.just("12"),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "order_id": st.one_of(identifiers, identifiers, anything),
        "sku": st.one_of(identifiers, identifiers, anything),
        "qty": st.one_of(st.integers(min_value=1, max_value=MAX_QUANTITY), anything),
        "other": anything,
    },
)


def outcome(serializer_class, data) -> tuple:
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return True, dict(serializer.validated_data)
    return False, serializer.errors


@settings(max_examples=500, deadline=None)
@given(bodies)
def test_allocation_input_is_judged_as_the_fields_judge_it(body):
    assert outcome(LineInputSerializer, body) == outcome(GenericLineInput, body)


@pytest.mark.parametrize(
    "field, value",
    [
        ("qty", 0),
        ("qty", 1),
        ("qty", MAX_QUANTITY),
        ("qty", MAX_QUANTITY + 1),
        ("qty", True),
        ("qty", 1.0),
        ("qty", "1"),
        ("qty", None),
        ("order_id", ""),
        ("order_id", " a"),
        ("order_id", "a" * 255),
        ("order_id", "a" * 256),
        ("order_id", "é"),
        ("order_id", "a\n"),
        ("order_id", 12),
        ("sku", "-a"),
        ("sku", "a,b"),
    ],
)
def test_edges_are_judged_as_the_fields_judge_them(field, value):
    body = {"order_id": "o-1", "sku": "LAMP", "qty": 3, field: value}
    assert outcome(LineInputSerializer, body) == outcome(GenericLineInput, body)


def test_a_well_formed_body_is_taken_as_it_is():
    body = {"order_id": "o-1", "sku": "SKU:2", "qty": 7, "note": "ignored"}
    assert outcome(LineInputSerializer, body) == (
        True,
        {"order_id": "o-1", "sku": "SKU:2", "qty": 7},
    )


def test_a_malformed_body_gets_the_fields_messages():
    valid, errors = outcome(LineInputSerializer, {"order_id": " o", "qty": True})
    assert valid is False
    assert set(errors) == {"order_id", "sku", "qty"}
    assert errors["sku"] == ["This field is required."]
    assert errors["qty"] == ["A valid integer is required."]


when = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
) | st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))]),
)
allocations = st.builds(
    lambda oid, sku, qty, requested, parts: Allocation(
        line=OrderLine(oid, sku, qty),
        requested_at=requested,
        parts=[Part(ref, n) for ref, n in parts],
        allocated_at=requested if parts else None,
    ),
    identifiers,
    identifiers,
    st.integers(min_value=1, max_value=MAX_QUANTITY),
    when,
    st.lists(st.tuples(identifiers, st.integers(min_value=1, max_value=100)), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(allocations)
def test_a_line_renders_as_its_fields_render_it(allocation):
    assert LineSerializer(allocation).data == GenericLine(allocation).data


def test_a_line_renders_its_status_parts_and_time_in_utc():
    allocation = Allocation(
        line=OrderLine("o-1", "LAMP", 5),
        requested_at=datetime(2026, 11, 21, 9, 30, tzinfo=timezone(timedelta(hours=1))),
        parts=[Part("b1", 3), Part("b2", 2)],
    )
    assert LineSerializer(allocation).data == {
        "order_id": "o-1",
        "sku": "LAMP",
        "qty": 5,
        "status": "allocated",
        "batches": [{"reference": "b1", "qty": 3}, {"reference": "b2", "qty": 2}],
        "requested_at": "2026-11-21T08:30:00Z",
    }
