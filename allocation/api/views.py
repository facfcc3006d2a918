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
from rest_framework import exceptions, generics, mixins, status, views, viewsets
from rest_framework.response import Response

from allocation import models as orm
from allocation import selectors, services
from allocation.api import serializers as s
from allocation.api.filters import BatchFilter, LineFilter
from allocation.api.pagination import Keyset
from allocation.api.schema import (
    ALLOCATION_BAD_REQUEST,
    ALLOCATION_CONFLICT,
    DUPLICATE_BATCH,
    ORDER_BAD_REQUEST,
    ORDER_CONFLICT,
    operation,
)
from allocation.auth.permissions import CanViewEvents, ModelPermissions
from allocation.unit_of_work import DjangoUnitOfWork
from allocation.webhooks import selectors as webhook_selectors
from allocation.webhooks import services as webhook_services
from domain.model import PREFERENCE_ORDER, UNSET
from domain.validation import IDENTIFIER_PATTERN

# Reads need only a logged-in user: a caller who is not one gets 401 (token
# authentication comes first), so a read is never 403.
_READ = (401, 503)
_WRITE = (400, 401, 403, 413, 415, 503)

_IDENTIFIER = rf"^{IDENTIFIER_PATTERN}$"
_BATCH_REFERENCE = OpenApiParameter("reference", str, OpenApiParameter.PATH, pattern=_IDENTIFIER)


def _through_api(request) -> DjangoUnitOfWork:
    """A unit of work whose events say the API's logged-in user caused them."""
    return DjangoUnitOfWork(actor=request.user.get_username() or None, source="api")


def _batch_change_body(batch, outcome) -> dict:
    body = dict(s.BatchSerializer(batch).data)
    body["reallocated"] = s.LineSerializer(outcome.reallocated, many=True).data
    body["backordered"] = s.LineSerializer(outcome.backordered, many=True).data
    return body


@extend_schema_view(
    list=operation(
        "List batches (preference order within a SKU)",
        {200: s.BatchSerializer(many=True)},
        (400, 404, *_READ),
    ),
    retrieve=operation(
        "A batch with the allocations held on it",
        {200: s.BatchDetailSerializer},
        (404, *_READ),
        parameters=[_BATCH_REFERENCE],
    ),
    create=operation(
        "Create a batch (serves backorders)",
        {201: s.BatchSerializer},
        (409, *_WRITE),
        request=s.BatchInputSerializer,
        bodies={409: DUPLICATE_BATCH},
    ),
    partial_update=operation(
        "Change a batch's quantity and/or eta (rules 8-10)",
        {200: s.BatchChangeSerializer},
        (404, *_WRITE),
        request=s.BatchPatchSerializer,
        parameters=[_BATCH_REFERENCE],
    ),
    destroy=operation(
        "Delete a batch; its lines are placed again or backordered",
        {200: s.StockChangeSerializer},
        (404, 401, 403, 503),
        parameters=[_BATCH_REFERENCE],
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
    keyset = Keyset(("product_id", *PREFERENCE_ORDER), orm.NULLS_FIRST)
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
        outcome = services.add_batch(**data, uow=_through_api(request))
        return Response(s.BatchSerializer(outcome.batch).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, reference=None):
        data = _validated(s.BatchPatchSerializer, request, context={"reference": reference})
        outcome = services.change_batch(
            reference=reference,
            purchased_quantity=data.get("purchased_quantity"),
            eta=data.get("eta", UNSET),
            sku=data.get("sku"),
            uow=_through_api(request),
        )
        return Response(_batch_change_body(outcome.batch, outcome))

    def destroy(self, request, reference=None):
        outcome = services.delete_batch(reference=reference, uow=_through_api(request))
        return Response(s.StockChangeSerializer(outcome).data)


@extend_schema_view(
    list=operation("List order lines", {200: s.LineSerializer(many=True)}, (400, 404, *_READ)),
    create=operation(
        "Allocate an order line (201 new, 200 idempotent repeat)",
        {201: s.LineSerializer, 200: s.LineSerializer},
        (409, *_WRITE),
        request=s.LineInputSerializer,
        bodies={400: ALLOCATION_BAD_REQUEST, 409: ALLOCATION_CONFLICT},
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
        outcome = services.allocate(**data, uow=_through_api(request))
        code = status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK
        return Response(s.line_data(outcome.allocation), status=code)


@extend_schema_view(
    get=operation("One order line", {200: s.LineSerializer}, (404, *_READ)),
    delete=operation("Deallocate an order line (rule 7)", {204: None}, (404, 401, 403, 503)),
)
class AllocationDetailView(generics.GenericAPIView):
    queryset = orm.OrderLine.objects.all()
    serializer_class = s.LineSerializer

    def get(self, request, order_id: str, sku: str):
        return Response(s.LineSerializer(selectors.line(order_id, sku)).data)

    def delete(self, request, order_id: str, sku: str):
        services.deallocate(order_id=order_id, sku=sku, uow=_through_api(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


_ORDER_ID = OpenApiParameter("order_id", str, OpenApiParameter.PATH, pattern=_IDENTIFIER)


@extend_schema_view(
    create=operation(
        "Allocate every line of an order, all or nothing (201 new, 200 idempotent repeat)",
        {201: s.OrderSerializer, 200: s.OrderSerializer},
        (409, *_WRITE),
        request=s.OrderInputSerializer,
        bodies={400: ORDER_BAD_REQUEST, 409: ORDER_CONFLICT},
    ),
    retrieve=operation(
        "Every line of an order, by SKU",
        {200: s.OrderSerializer},
        (404, *_READ),
        parameters=[_ORDER_ID],
    ),
    destroy=operation(
        "Deallocate every line of an order (rule 7 per SKU)",
        {204: None},
        (404, 401, 403, 503),
        parameters=[_ORDER_ID],
    ),
)
class OrderViewSet(viewsets.GenericViewSet):
    # The model whose permissions guard the writes: add/delete order lines.
    queryset = orm.OrderLine.objects.all()
    lookup_field = "order_id"
    # Well-formed identifiers only (see urls.py): the rest is a JSON 404.
    lookup_value_regex = IDENTIFIER_PATTERN

    def get_serializer_class(self):
        if self.request is not None and self.request.method == "POST":
            return s.OrderInputSerializer
        return s.OrderSerializer

    def create(self, request, *args, **kwargs):
        data = _validated(s.OrderInputSerializer, request)
        lines = [(line["sku"], line["qty"]) for line in data["lines"]]
        outcome = services.allocate_order(
            order_id=data["order_id"], lines=lines, uow=_through_api(request)
        )
        code = status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK
        return Response(s.order_data(outcome.order_id, outcome.allocations), status=code)

    def retrieve(self, request, order_id=None):
        return Response(s.order_data(order_id, selectors.order_lines(order_id)))

    def destroy(self, request, order_id=None):
        services.deallocate_order(order_id=order_id, uow=_through_api(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    retrieve=operation(
        "Stock summary of one SKU",
        {200: s.ProductSerializer},
        (404, *_READ),
        parameters=[OpenApiParameter("sku", str, OpenApiParameter.PATH, pattern=_IDENTIFIER)],
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


class _EventView(views.APIView):
    # A model's view permission, which the groups of migration 0004 carry.
    permission_classes = [CanViewEvents]


class EventFeedView(_EventView):
    # Two plain views under one prefix: name the operations, or both are "retrieve".
    @extend_schema(operation_id="events_list")
    @operation(
        "Event feed: the events after an id, oldest first; never skips one (SPEC 6.1)",
        {200: s.EventPageSerializer},
        (400, 401, 403, 503),
        parameters=[s.EventQuerySerializer],
    )
    def get(self, request):
        params = s.EventQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = dict(params.validated_data)
        types = data.pop("type", ())
        query = selectors.EventQuery(**data, types=types)
        events = selectors.event_page(query)
        return Response(
            {
                "results": s.EventSerializer(events, many=True).data,
                "next_after": events[-1].id if events else query.after,
            }
        )


class EventDetailView(_EventView):
    @extend_schema(operation_id="events_retrieve")
    @operation(
        "One event",
        {200: s.EventSerializer},
        (401, 403, 404, 503),
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH)],
    )
    def get(self, request, id: str):
        event = selectors.event(int(id))
        if event is None:
            raise exceptions.NotFound(f"No event with id {id}.")
        return Response(s.EventSerializer(event).data)


_WEBHOOK_ID = OpenApiParameter("id", int, OpenApiParameter.PATH)


@extend_schema_view(
    list=operation(
        "List webhook subscriptions, with the events pending for each",
        {200: s.WebhookSerializer(many=True)},
        (401, 403, 404, 503),
    ),
    retrieve=operation(
        "One webhook subscription",
        {200: s.WebhookSerializer},
        (401, 403, 404, 503),
        parameters=[_WEBHOOK_ID],
    ),
    create=operation(
        "Subscribe a URL to the events written from now on; the answer shows the secret, once",
        {201: s.WebhookCreatedSerializer},
        _WRITE,
        request=s.WebhookInputSerializer,
    ),
    destroy=operation(
        "Delete a webhook subscription",
        {204: None},
        (401, 403, 404, 503),
        parameters=[_WEBHOOK_ID],
    ),
)
class WebhookViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Webhook subscriptions (SPEC 6.2): view, add and delete need their model permission."""

    queryset = orm.WebhookSubscription.objects.all()
    permission_classes = [ModelPermissions]
    lookup_value_regex = "[0-9]{1,18}"
    keyset = Keyset(("id",))

    def get_queryset(self):
        return webhook_selectors.subscriptions()

    def get_serializer_class(self):
        if self.request is not None and self.request.method == "POST":
            return s.WebhookInputSerializer
        return s.WebhookSerializer

    def retrieve(self, request, pk=None):
        return Response(s.WebhookSerializer(webhook_selectors.subscription(int(pk))).data)

    def create(self, request, *args, **kwargs):
        data = _validated(s.WebhookInputSerializer, request)
        subscribed = webhook_services.subscribe(**data)
        body = dict(s.WebhookSerializer(webhook_selectors.subscription(subscribed.id)).data)
        body["secret"] = subscribed.secret
        return Response(body, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        webhook_services.unsubscribe(subscription_id=int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


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
