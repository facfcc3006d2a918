"""Query filters. An invalid value of a known filter is a 400, never ignored."""

import django_filters
from django.db.models import F

from allocation import models as orm
from domain.model import BatchStatus, LineStatus

_BOOLEAN = [("true", "true"), ("false", "false")]


class BatchFilter(django_filters.FilterSet):
    sku = django_filters.CharFilter(field_name="product_id")
    status = django_filters.ChoiceFilter(
        choices=[(s.value, s.value) for s in BatchStatus], method="filter_status"
    )
    available = django_filters.ChoiceFilter(choices=_BOOLEAN, method="filter_available")

    class Meta:
        model = orm.Batch
        fields = ["sku", "status", "available"]

    def filter_status(self, queryset, name, value):
        return queryset.with_status(value)

    def filter_available(self, queryset, name, value):
        if value == "true":
            return queryset.filter(allocated_quantity__lt=F("purchased_quantity"))
        return queryset.filter(allocated_quantity__gte=F("purchased_quantity"))


class LineFilter(django_filters.FilterSet):
    order_id = django_filters.CharFilter()
    sku = django_filters.CharFilter(field_name="product_id")
    batch = django_filters.CharFilter(method="filter_batch")
    status = django_filters.ChoiceFilter(choices=[(s.value, s.value) for s in LineStatus])

    class Meta:
        model = orm.OrderLine
        fields = ["order_id", "sku", "batch", "status"]

    def filter_batch(self, queryset, name, value):
        holding = orm.Allocation.objects.filter(batch__reference=value).values("line_id")
        return queryset.filter(id__in=holding)
