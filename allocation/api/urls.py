from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from allocation.api import views
from allocation.api.errors import api_not_found


class Router(DefaultRouter):
    # References may contain dots: no ``.json`` format suffixes.
    include_format_suffixes = False


router = Router()
router.register("batches", views.BatchViewSet, basename="batch")
router.register("allocations", views.AllocationViewSet, basename="allocation")
router.register("products", views.ProductViewSet, basename="product")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path(
        "allocations/<str:order_id>/<str:sku>/",
        views.AllocationDetailView.as_view(),
        name="allocation-detail",
    ),
    *router.urls,
    # Anything else under /api/ is a JSON 404, never Django's HTML page.
    re_path(r"^.*$", api_not_found),
]
