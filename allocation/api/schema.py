"""The error answers of the API, for its OpenAPI document: each body said once, used by every view.

``allocation.api.errors`` (and the body-limit middleware in front of it)
decides what an error answer is; this module describes those bodies so that
each documented status of each operation names the body that really comes
back, and a generated client parses it into a model instead of ``None``:

- a validation failure is DRF's field-error map (``FieldErrors``);
- every other error is ``{"detail", "code"}``, one component per meaning, its
  ``code`` an enum of exactly the codes that meaning can carry, so that a
  client (or a validator) tells ``out_of_stock`` from ``line_conflict`` by
  the body alone; ``out_of_stock`` also carries ``sku``, ``requested`` and
  ``available``.

Where one status has several bodies (a 400 of a write, a 409 of an
allocation) the document says ``oneOf``; the alternatives exclude each other
(a field-error map has no string values, each code belongs to one component),
and the field-error map, which takes any field name, comes last, as a
generated client tries the alternatives in order.

Answers that belong to no operation are not listed: 405 (a method the path
does not have) and 406 (an Accept header no renderer satisfies); they are
``{"detail", "code"}`` bodies too.

``tests/e2e/test_documented_statuses.py`` produces every documented status of
every operation and checks its body against this; ``test_generated_client.py``
drives a client generated from the document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import exceptions, serializers

from allocation.api.parsers import PayloadTooLarge
from allocation.unit_of_work import Busy, Unavailable


def _codes(*codes: str) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=codes, help_text="What went wrong, for programs.")


class ErrorSerializer(serializers.Serializer):
    """``{"detail", "code"}``: every error that is not a validation failure."""

    detail = serializers.CharField(help_text="What went wrong, as a sentence for people.")
    # A ChoiceField of the exact codes in each subclass.
    code: serializers.Field = serializers.CharField()


class ParseErrorSerializer(ErrorSerializer):
    """The body is not well-formed JSON (or form data), is in an unusable charset, or its
    Content-Length is not a number."""

    code = _codes(exceptions.ParseError.default_code)


class InvalidSkuSerializer(ErrorSerializer):
    """``invalid_sku``: the SKU has no batches at all, so nothing can be allocated."""

    code = _codes("invalid_sku")


class NotAuthenticatedSerializer(ErrorSerializer):
    """No credentials (``not_authenticated``), or a token that is unknown, malformed or
    belongs to an inactive user (``authentication_failed``)."""

    code = _codes(
        exceptions.NotAuthenticated.default_code, exceptions.AuthenticationFailed.default_code
    )


class PermissionDeniedSerializer(ErrorSerializer):
    """The user lacks the model permission this write needs, or a session write came
    without its CSRF token."""

    code = _codes(exceptions.PermissionDenied.default_code)


class NotFoundSerializer(ErrorSerializer):
    """``not_found``: no such batch, line or product, or a list ``cursor`` that is not one
    of ours."""

    code = _codes(exceptions.NotFound.default_code)


class DuplicateBatchSerializer(ErrorSerializer):
    """``duplicate_batch``: a batch with this reference exists already."""

    code = _codes("duplicate_batch")


class OutOfStockSerializer(ErrorSerializer):
    """``out_of_stock`` (rule 4): the SKU's batches together cannot cover the line; nothing
    was recorded."""

    code = _codes("out_of_stock")
    sku = serializers.CharField()
    requested = serializers.IntegerField(help_text="The line's qty.")
    available = serializers.IntegerField(
        help_text="The SKU's total available quantity at that moment (0: none left)."
    )


class LineConflictSerializer(ErrorSerializer):
    """``line_conflict`` (rule 6): the line is recorded already with another qty; deallocate
    it first to change it."""

    code = _codes("line_conflict")


class UnknownSkusSerializer(ErrorSerializer):
    """``invalid_sku`` for an order: these SKUs have no batches at all; nothing was recorded."""

    code = _codes("invalid_sku")
    skus = serializers.ListField(child=serializers.CharField(), min_length=1)


class ShortLineSerializer(serializers.Serializer):
    sku = serializers.CharField()
    requested = serializers.IntegerField(help_text="The line's qty.")
    available = serializers.IntegerField(help_text="The SKU's total available quantity.")


class OrderOutOfStockSerializer(ErrorSerializer):
    """``out_of_stock`` for an order: every line that does not fit; nothing was recorded."""

    code = _codes("out_of_stock")
    lines = ShortLineSerializer(many=True)


class OrderLineConflictSerializer(ErrorSerializer):
    """``line_conflict`` for an order: the line of ``sku`` is recorded with another qty."""

    code = _codes("line_conflict")
    sku = serializers.CharField()


class PayloadTooLargeSerializer(ErrorSerializer):
    """``payload_too_large``: the body is larger than the configured limit."""

    code = _codes(PayloadTooLarge.default_code)


class UnsupportedMediaTypeSerializer(ErrorSerializer):
    """The body's Content-Type is not JSON (or an HTML form)."""

    code = _codes(exceptions.UnsupportedMediaType.default_code)


class ServiceUnavailableSerializer(ErrorSerializer):
    """The database stayed busy after bounded retries (``busy``) or cannot be reached
    (``unavailable``); nothing was written. Retry after ``Retry-After`` seconds."""

    code = _codes(Busy.code, Unavailable.code)


class FieldErrorsSerializer(serializers.Serializer):
    """Stands for DRF's field-error body in the document; see ``FieldErrorsExtension``."""


class FieldErrorsExtension(OpenApiSerializerExtension):
    """DRF's validation body has a key per invalid field, which no serializer can declare."""

    target_class = FieldErrorsSerializer

    def get_name(self, auto_schema=None, direction=None) -> str:
        return "FieldErrors"

    def map_serializer(self, auto_schema, direction) -> dict:
        messages = {"type": "array", "items": {"type": "string"}, "minItems": 1}
        return {
            "type": "object",
            "description": (
                "A validation failure: each invalid request field (or query parameter) "
                "named, with its messages; errors about the body as a whole are under "
                "non_field_errors."
            ),
            "properties": {"non_field_errors": messages},
            "additionalProperties": messages,
            "minProperties": 1,
        }


def _one_of(name: str, *bodies: type[serializers.Serializer]) -> PolymorphicProxySerializer:
    # No discriminator: a field-error map has no ``code``; the codes tell the others apart.
    return PolymorphicProxySerializer(
        component_name=name, serializers=list(bodies), resource_type_field_name=None
    )


ERRORS: dict[int, OpenApiResponse] = {
    400: OpenApiResponse(
        _one_of("BadRequest", ParseErrorSerializer, FieldErrorsSerializer),
        description="Validation failed (a field-error map), or the body is not JSON (parse_error).",
    ),
    401: OpenApiResponse(NotAuthenticatedSerializer, description="No credentials, or a bad token."),
    403: OpenApiResponse(
        PermissionDeniedSerializer,
        description="The user lacks the permission (or a session write its CSRF token).",
    ),
    404: OpenApiResponse(NotFoundSerializer, description="No such object, or a bad list cursor."),
    413: OpenApiResponse(PayloadTooLargeSerializer, description="The body is over the size limit."),
    415: OpenApiResponse(UnsupportedMediaTypeSerializer, description="The body is not JSON."),
    503: OpenApiResponse(
        ServiceUnavailableSerializer,
        description="The database is busy or unreachable; nothing was written. Retry later.",
    ),
}

# The bodies some operations add to a status.
DUPLICATE_BATCH = OpenApiResponse(
    DuplicateBatchSerializer, description="A batch with this reference exists (duplicate_batch)."
)
ALLOCATION_BAD_REQUEST = OpenApiResponse(
    _one_of(
        "AllocationBadRequest", InvalidSkuSerializer, ParseErrorSerializer, FieldErrorsSerializer
    ),
    description=(
        "Validation failed (a field-error map), the SKU has no batches (invalid_sku), "
        "or the body is not JSON (parse_error)."
    ),
)
ALLOCATION_CONFLICT = OpenApiResponse(
    _one_of("AllocationConflict", OutOfStockSerializer, LineConflictSerializer),
    description=(
        "Not enough stock (out_of_stock, with sku, requested and available), or the line "
        "exists with another qty (line_conflict)."
    ),
)

ORDER_BAD_REQUEST = OpenApiResponse(
    _one_of("OrderBadRequest", UnknownSkusSerializer, ParseErrorSerializer, FieldErrorsSerializer),
    description=(
        "Validation failed (a field-error map; messages about a line name it: lines[2].qty), "
        "SKUs without batches (invalid_sku, with skus), or the body is not JSON (parse_error)."
    ),
)
ORDER_CONFLICT = OpenApiResponse(
    _one_of("OrderConflict", OrderOutOfStockSerializer, OrderLineConflictSerializer),
    description=(
        "Lines that do not fit (out_of_stock, with every short line), or a line recorded "
        "with another qty (line_conflict, with its sku). Nothing was recorded."
    ),
)

# Response headers: drf-spectacular attaches each to the listed statuses of
# the operations that document them, and to nothing else.
HEADERS = [
    OpenApiParameter(
        "WWW-Authenticate",
        str,
        OpenApiParameter.HEADER,
        required=True,
        response=[401],
        description="The scheme to authenticate with: Token.",
    ),
    OpenApiParameter(
        "Retry-After",
        int,
        OpenApiParameter.HEADER,
        required=True,
        response=[503],
        description="Seconds to wait before trying again.",
    ),
]


def operation(
    summary: str,
    ok: Mapping[int, Any],
    errors: Iterable[int],
    *,
    request: Any = None,
    parameters: Sequence[OpenApiParameter | type[serializers.Serializer]] = (),
    bodies: Mapping[int, OpenApiResponse] | None = None,
):
    """``extend_schema`` for one operation: its success answers, then its error statuses,
    each with the body ``ERRORS`` gives it unless ``bodies`` names another."""
    described = {**ERRORS, **(bodies or {})}
    responses = {**ok, **{status: described[status] for status in errors}}
    extra = {} if request is None else {"request": request}
    return extend_schema(
        summary=summary, parameters=[*parameters, *HEADERS], responses=responses, **extra
    )
