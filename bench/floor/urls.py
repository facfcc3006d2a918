from django.urls import path

from bench.floor.views import AllocateView, healthz

urlpatterns = [
    path("api/allocations/", AllocateView.as_view()),
    path("healthz", healthz),
]
