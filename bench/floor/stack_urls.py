from django.urls import path

from bench.floor.stack_views import StackAllocateView
from bench.floor.views import healthz

urlpatterns = [
    path("api/allocations/", StackAllocateView.as_view()),
    path("healthz", healthz),
]
