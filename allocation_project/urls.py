from django.contrib import admin
from django.urls import include, path

from allocation.api.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("allocation.api.urls")),
    path("api-auth/", include("rest_framework.urls")),
    path("healthz", healthz, name="healthz"),
]
