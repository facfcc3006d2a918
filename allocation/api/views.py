"""Viewsets: parse the request, call one service (writes) or selector (reads), render.

No view catches a domain error: ``allocation.api.errors.exception_handler``
maps them all.
"""

from __future__ import annotations

from django.db import connection
from django.http import JsonResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, mixins, status, viewsets
from rest_framework.response import Response

from allocation import models as orm
from allocation import selectors, services
from allocation.api import serializers as s
from allocation.api.filters import BatchFilter, LineFilter
from allocation.api.pagination import Keyset
from domain.model import IDENTIFIER_PATTERN, UNSET

_ERROR = s.ErrorSerializer


def _errors(*codes: int) -> dict:
    described = {
        400: OpenApiResponse(description="Validation error: {field: [message]}, or invalid_sku"),
        401: OpenApiResponse(_ERROR, description="Not authenticated (token clients)"),
        403: OpenApiResponse(
            _ERROR, description="Missing permission, or a session without CSRF token"
        ),
        404: OpenApiResponse(_ERROR, description="not_found"),
        409: OpenApiResponse(_ERROR, description="Conflict"),
        413: OpenApiResponse(_ERROR, description="payload_too_large"),
        415: OpenApiResponse(_ERROR, description="Unsupported media type"),
        503: OpenApiResponse(_ERROR, description="busy or unavailable (database)"),
    }
    return {code: described[code] for code in codes}


# Reads need only a logged-in user: a caller who is not one gets 401 (token
# authentication comes first), so a read is never 403.
_READ = (401, 503)
_WRITE = (400, 401, 403, 413, 415, 503)

_IDENTIFIER = rf"^{IDENTIFIER_PATTERN}$"
_BATCH_REFERENCE = OpenApiParameter("reference", str, OpenApiParameter.PATH, pattern=_IDENTIFIER)


def _batch_change_body(batch, outcome) -> dict:
    body = dict(s.BatchSerializer(batch).data)
    body["reallocated"] = s.LineSerializer(outcome.reallocated, many=True).data
    body["backordered"] = s.LineSerializer(outcome.backordered, many=True).data
    return body


@extend_schema_view(
    list=extend_schema(
        summary="List batches (preference order within a SKU)",
        responses={200: s.BatchSerializer(many=True), **_errors(400, 404, *_READ)},
    ),
    retrieve=extend_schema(
        summary="A batch with the allocations held on it",
        parameters=[_BATCH_REFERENCE],
        responses={200: s.BatchDetailSerializer, **_errors(404, *_READ)},
    ),
    create=extend_schema(
        summary="Create a batch (serves backorders)",
        request=s.BatchInputSerializer,
        responses={201: s.BatchSerializer, **_errors(409, *_WRITE)},
    ),
    partial_update=extend_schema(
        summary="Change a batch's quantity and/or eta (rules 8-10)",
        parameters=[_BATCH_REFERENCE],
        request=s.BatchPatchSerializer,
        responses={200: s.BatchChangeSerializer, **_errors(404, *_WRITE)},
    ),
    destroy=extend_schema(
        summary="Delete a batch; its lines are placed again or backordered",
        parameters=[_BATCH_REFERENCE],
        responses={200: s.StockChangeSerializer, **_errors(404, 401, 403, 503)},
    ),
)
class BatchViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    queryset = orm.Batch.objects.all()
    lookup_field = "reference"
    # Well-formed identifiers only (see urls.py): the rest is a JSON 404.
    lookup_value_regex = IDENTIFIER_PATTERN
    filterset_class = BatchFilter
    # Preference order within a SKU (rule 1), pages by keyset.
    keyset = Keyset(("product_id", "eta", "created_at", "reference"), frozenset({"eta"}))
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.batches()

    def get_serializer_class(self):
        # The browsable API renders its forms from these, too.
        if self.request is not None and self.request.method == "POST":
            return s.BatchInputSerializer
        if self.request is not None and self.request.method == "PATCH":
            return s.BatchPatchSerializer
        if self.action == "retrieve":
            return s.BatchDetailSerializer
        return s.BatchSerializer

    def get_object(self):
        return selectors.batch_detail(self.kwargs["reference"])

    def create(self, request, *args, **kwargs):
        data = _validated(s.BatchInputSerializer, request)
        outcome = services.add_batch(**data)
        return Response(s.BatchSerializer(outcome.batch).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, reference=None):
        data = _validated(s.BatchPatchSerializer, request, context={"reference": reference})
        outcome = services.change_batch(
            reference=reference,
            purchased_quantity=data.get("purchased_quantity"),
            eta=data.get("eta", UNSET),
            sku=data.get("sku"),
        )
        return Response(_batch_change_body(outcome.batch, outcome))

    def destroy(self, request, reference=None):
        outcome = services.delete_batch(reference=reference)
        return Response(s.StockChangeSerializer(outcome).data)


@extend_schema_view(
    list=extend_schema(
        summary="List order lines",
        responses={200: s.LineSerializer(many=True), **_errors(400, 404, *_READ)},
    ),
    create=extend_schema(
        summary="Allocate an order line (201 new, 200 idempotent repeat)",
        request=s.LineInputSerializer,
        responses={
            201: s.LineSerializer,
            200: s.LineSerializer,
            **_errors(*_WRITE),
            409: OpenApiResponse(
                s.OutOfStockSerializer,
                description="out_of_stock (with sku, requested, available) or line_conflict",
            ),
        },
    ),
)
class AllocationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = orm.OrderLine.objects.all()
    filterset_class = LineFilter
    keyset = Keyset(("order_id", "product_id"))

    def get_queryset(self):
        return selectors.lines()

    def get_serializer_class(self):
        if self.request is not None and self.request.method == "POST":
            return s.LineInputSerializer
        return s.LineSerializer

    def create(self, request, *args, **kwargs):
        # The busiest endpoint: a well-formed body skips the serializer (it
        # would accept it as it is) and the answer is rendered as
        # LineSerializer renders it, without building one.
        data = s.well_formed_line(request.data) or _validated(s.LineInputSerializer, request)
        outcome = services.allocate(**data)
        code = status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK
        return Response(s.line_data(outcome.allocation), status=code)


@extend_schema_view(
    get=extend_schema(
        summary="One order line", responses={200: s.LineSerializer, **_errors(404, *_READ)}
    ),
    delete=extend_schema(
        summary="Deallocate an order line (rule 7)",
        responses={204: None, **_errors(404, 401, 403, 503)},
    ),
)
class AllocationDetailView(generics.GenericAPIView):
    queryset = orm.OrderLine.objects.all()
    serializer_class = s.LineSerializer

    def get(self, request, order_id: str, sku: str):
        return Response(s.LineSerializer(selectors.line(order_id, sku)).data)

    def delete(self, request, order_id: str, sku: str):
        services.deallocate(order_id=order_id, sku=sku)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    retrieve=extend_schema(
        summary="Stock summary of one SKU",
        parameters=[OpenApiParameter("sku", str, OpenApiParameter.PATH, pattern=_IDENTIFIER)],
        responses={200: s.ProductSerializer, **_errors(404, *_READ)},
    ),
)
class ProductViewSet(viewsets.GenericViewSet):
    queryset = orm.Product.objects.all()
    serializer_class = s.ProductSerializer
    lookup_field = "sku"
    # Well-formed identifiers only (see urls.py): the rest is a JSON 404.
    lookup_value_regex = IDENTIFIER_PATTERN

    def retrieve(self, request, sku=None):
        return Response(s.ProductSerializer(selectors.product_summary(sku)).data)


def _validated(serializer_class, request, context=None) -> dict:
    serializer = serializer_class(data=request.data, context=context or {})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


@extend_schema(
    summary="Liveness and database check",
    auth=[],
    responses={
        200: OpenApiResponse(description='{"status": "ok"}'),
        503: OpenApiResponse(description='{"status": "unavailable"}'),
    },
)
def healthz(request) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        connection.close()
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})
