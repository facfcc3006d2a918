from django.contrib import admin
from django.urls import include, path

from allocation.api.views import healthz

# The API first: every allocation resolves its URL, and each pattern tried costs.
urlpatterns = [
    path("api/", include("allocation.api.urls")),
    path("admin/", admin.site.urls),
    path("api-auth/", include("rest_framework.urls")),
    path("healthz", healthz, name="healthz"),
]
