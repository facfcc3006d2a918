"""factory-boy factories: ``DjangoModelFactory`` for rows, plain ``Factory`` for domain objects.

Rows made here bypass the service layer on purpose (read-side and admin
tests need exact states); tests of behaviour create state through services.
"""

from datetime import UTC, datetime, timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from allocation import models as orm
from domain import model

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
#: Every ``UserFactory`` user's password, for tests that log in as a person would.
PASSWORD = "correct-horse-battery"


def tick(n: int) -> datetime:
    """The n-th instant after T0, one second apart: distinct, ordered timestamps."""
    return T0 + timedelta(seconds=n)


# -- domain ----------------------------------------------------------------------


class DomainBatchFactory(factory.Factory):
    class Meta:
        model = model.Batch

    reference = factory.Sequence(lambda n: f"batch-{n:04d}")
    sku = "RED-CHAIR"
    purchased_quantity = 20
    eta = None
    created_at = factory.Sequence(tick)


class OrderLineFactory(factory.Factory):
    class Meta:
        model = model.OrderLine

    order_id = factory.Sequence(lambda n: f"order-{n:04d}")
    sku = "RED-CHAIR"
    qty = 1


# -- rows ------------------------------------------------------------------------


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = orm.Product
        django_get_or_create = ("sku",)

    sku = factory.Sequence(lambda n: f"SKU-{n:04d}")


class BatchRowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = orm.Batch

    reference = factory.Sequence(lambda n: f"row-batch-{n:05d}")
    product = factory.SubFactory(ProductFactory)
    purchased_quantity = 20
    allocated_quantity = 0
    eta = None
    created_at = factory.Sequence(tick)


class OrderLineRowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = orm.OrderLine

    order_id = factory.Sequence(lambda n: f"row-order-{n:05d}")
    product = factory.SubFactory(ProductFactory)
    qty = 1
    status = model.LineStatus.ALLOCATED.value
    requested_at = factory.Sequence(tick)
    allocated_at = factory.SelfAttribute("requested_at")


class AllocationRowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = orm.Allocation

    line = factory.SubFactory(OrderLineRowFactory)
    batch = factory.SubFactory(BatchRowFactory)
    qty = 1


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def permissions(self, create, codenames, **kwargs):
        """``UserFactory(permissions=["add_batch", ...])`` grants allocation perms."""
        if create and codenames:
            self.user_permissions.add(
                *Permission.objects.filter(
                    content_type__app_label="allocation", codename__in=codenames
                )
            )
