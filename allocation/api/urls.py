from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated
from rest_framework.routers import APIRootView, DefaultRouter

from allocation.api import views
from allocation.api.errors import api_not_found
from domain.validation import IDENTIFIER_PATTERN


class APIRoot(APIRootView):
    # The index of endpoints guards no model: a login is all it asks for.
    permission_classes = [IsAuthenticated]


class Router(DefaultRouter):
    APIRootView = APIRoot
    # References may contain dots: no ``.json`` format suffixes.
    include_format_suffixes = False


router = Router()
# Allocations first: URLs resolve in order, and they are the busiest route.
router.register("allocations", views.AllocationViewSet, basename="allocation")
router.register("batches", views.BatchViewSet, basename="batch")
router.register("orders", views.OrderViewSet, basename="order")
router.register("products", views.ProductViewSet, basename="product")
router.register("webhooks", views.WebhookViewSet, basename="webhook")

urlpatterns = [
    # Only well-formed identifiers reach a view; anything else (a NUL byte,
    # which PostgreSQL refuses in a query, an over-long value) falls through
    # to the JSON 404 below, as nothing by that name can exist.
    re_path(
        rf"^allocations/(?P<order_id>{IDENTIFIER_PATTERN})/(?P<sku>{IDENTIFIER_PATTERN})/$",
        views.AllocationDetailView.as_view(),
        name="allocation-detail",
    ),
    path("events/", views.EventFeedView.as_view(), name="event-list"),
    # Ids the database can hold; anything else is the JSON 404 below.
    re_path(r"^events/(?P<id>[0-9]{1,18})/$", views.EventDetailView.as_view(), name="event-detail"),
    *router.urls,
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # Anything else under /api/ is a JSON 404, never Django's HTML page.
    # [\s\S], not ".": a path with an encoded newline is an unknown route too.
    re_path(r"^[\s\S]*\Z", api_not_found),
]
