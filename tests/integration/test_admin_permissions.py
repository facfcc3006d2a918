"""The groups the data migration creates, and what their members may do in the admin."""

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps as global_apps
from django.contrib.auth.models import Group
from django.db import connection
from django.urls import reverse

from allocation import models as orm
from allocation import services
from tests.factories import UserFactory

BATCHES = reverse("admin:allocation_batch_changelist")
LINES = reverse("admin:allocation_orderline_changelist")


def codenames(group_name: str) -> list[str]:
    group = Group.objects.get(name=group_name)
    return sorted(
        f"{p.content_type.app_label}.{p.codename}"
        for p in group.permissions.select_related("content_type")
    )


def member_of(group_name: str, username: str):
    user = UserFactory(username=username)
    user.groups.add(Group.objects.get(name=group_name))
    return user


def batch_pk(reference: str) -> int:
    return orm.Batch.objects.get(reference=reference).pk


def stored_state() -> tuple:
    return (
        sorted(
            orm.Batch.objects.values_list(
                "reference", "purchased_quantity", "allocated_quantity", "eta"
            )
        ),
        sorted(orm.OrderLine.objects.values_list("order_id", "status")),
    )


@pytest.fixture
def stock(db):
    services.add_batch(reference="b1", sku="RED-CHAIR", purchased_quantity=10)
    services.allocate(order_id="o1", sku="RED-CHAIR", qty=4)


# -- the migration ---------------------------------------------------------------------


def test_migration_creates_warehouse_ops_and_viewer_groups_with_their_permissions(db):
    assert codenames("warehouse ops") == [
        "allocation.add_batch",
        "allocation.add_webhooksubscription",
        "allocation.change_batch",
        "allocation.change_webhooksubscription",
        "allocation.delete_batch",
        "allocation.delete_orderline",
        "allocation.delete_webhooksubscription",
        "allocation.view_batch",
        "allocation.view_event",
        "allocation.view_orderline",
        "allocation.view_webhooksubscription",
    ]
    # view_event: given by 0004, for the event feed and the admin's Events page;
    # view_webhooksubscription by 0007 (viewers see subscriptions, never add them).
    assert codenames("viewer") == [
        "allocation.view_batch",
        "allocation.view_event",
        "allocation.view_orderline",
        "allocation.view_webhooksubscription",
    ]


def test_group_migration_can_run_again_without_duplicating_anything(db):
    migration = importlib.import_module("allocation.migrations.0002_groups")

    models_module = global_apps.get_app_config("allocation").models_module

    migration.create_groups(global_apps, SimpleNamespace(connection=connection))

    assert global_apps.get_app_config("allocation").models_module is models_module
    assert Group.objects.filter(name__in=["warehouse ops", "viewer"]).count() == 2
    assert len(codenames("warehouse ops")) == 6
    assert len(codenames("viewer")) == 2


# -- viewer: sees everything, changes nothing ---------------------------------------------


def test_viewer_sees_batches_lines_and_a_read_only_batch_page(client, stock):
    client.force_login(member_of("viewer", "vera"))

    assert client.get(BATCHES).status_code == 200
    assert client.get(LINES).status_code == 200
    page = client.get(reverse("admin:allocation_batch_change", args=[batch_pk("b1")]))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert list(page.context["adminform"].form.fields) == []
    html = page.content.decode()
    assert 'name="_save"' not in html
    assert ">o1</a>" in html
    assert client.get(reverse("admin:allocation_stock_overview")).status_code == 200


def test_viewer_cannot_add_change_or_delete_batches(client, stock):
    client.force_login(member_of("viewer", "vera"))
    before = stored_state()
    change = reverse("admin:allocation_batch_change", args=[batch_pk("b1")])
    delete = reverse("admin:allocation_batch_delete", args=[batch_pk("b1")])
    add = reverse("admin:allocation_batch_add")

    assert client.get(add).status_code == 403
    assert (
        client.post(
            add, {"reference": "b2", "sku": "RED-CHAIR", "purchased_quantity": "1"}
        ).status_code
        == 403
    )
    assert client.post(change, {"purchased_quantity": "0", "eta": ""}).status_code == 403
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    bulk = client.post(
        BATCHES,
        {"action": "delete_selected", "_selected_action": [str(batch_pk("b1"))], "post": "yes"},
    )
    # No action is offered to a viewer: the post just shows the list again.
    assert bulk.status_code == 200
    assert stored_state() == before


def test_viewer_is_offered_no_action_and_cannot_deallocate(client, stock):
    client.force_login(member_of("viewer", "vera"))
    line = orm.OrderLine.objects.get(order_id="o1")

    listing = client.get(LINES)
    assert listing.context["action_form"] is None
    assert "Deallocate selected lines" not in listing.content.decode()
    response = client.post(
        LINES, {"action": "deallocate_lines", "_selected_action": [str(line.pk)]}
    )

    assert response.status_code == 200
    assert orm.OrderLine.objects.filter(order_id="o1", status="allocated").exists()
    delete = reverse("admin:allocation_orderline_delete", args=[line.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert orm.OrderLine.objects.filter(order_id="o1").exists()


def test_viewer_cannot_write_through_the_api_either(client_for, stock):
    api = client_for(member_of("viewer", "vera"))

    assert api.get("/api/batches/").status_code == 200
    assert (
        api.post(
            "/api/batches/",
            {"reference": "b2", "sku": "RED-CHAIR", "purchased_quantity": 1},
            format="json",
        ).status_code
        == 403
    )
    assert api.delete("/api/allocations/o1/RED-CHAIR/").status_code == 403
    assert orm.OrderLine.objects.filter(order_id="o1").exists()


# -- warehouse ops: change stock, deallocate --------------------------------------------------


def test_warehouse_ops_add_change_and_delete_batches_through_the_services(client, stock):
    client.force_login(member_of("warehouse ops", "otto"))

    added = client.post(
        reverse("admin:allocation_batch_add"),
        {"reference": "b2", "sku": "RED-CHAIR", "purchased_quantity": "6", "eta": "2026-06-01"},
    )
    changed = client.post(
        reverse("admin:allocation_batch_change", args=[batch_pk("b1")]),
        {"purchased_quantity": "0", "eta": ""},
    )

    assert (added.status_code, changed.status_code) == (302, 302)
    assert sorted(
        orm.Batch.objects.values_list("reference", "purchased_quantity", "allocated_quantity")
    ) == [
        ("b1", 0, 0),
        ("b2", 6, 4),
    ]
    deleted = client.post(
        reverse("admin:allocation_batch_delete", args=[batch_pk("b2")]), {"post": "yes"}
    )
    assert deleted.status_code == 302
    assert list(orm.OrderLine.objects.values_list("order_id", "status")) == [("o1", "backordered")]


def test_warehouse_ops_deallocate_lines_but_cannot_type_them_in(client, stock):
    client.force_login(member_of("warehouse ops", "otto"))
    line = orm.OrderLine.objects.get(order_id="o1")

    assert client.get(reverse("admin:allocation_orderline_add")).status_code == 403
    assert (
        client.post(
            reverse("admin:allocation_orderline_change", args=[line.pk]), {"qty": "1"}
        ).status_code
        == 403
    )
    response = client.post(
        LINES, {"action": "deallocate_lines", "_selected_action": [str(line.pk)]}
    )

    assert response.status_code == 302
    assert not orm.OrderLine.objects.exists()
    assert orm.Batch.objects.get(reference="b1").allocated_quantity == 0


def test_staff_without_permissions_see_nothing_and_change_nothing(client, stock):
    client.force_login(UserFactory(username="stan"))
    before = stored_state()

    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert index.context["app_list"] == []
    assert client.get(BATCHES).status_code == 403
    assert client.get(LINES).status_code == 403
    assert (
        client.post(
            reverse("admin:allocation_batch_change", args=[batch_pk("b1")]),
            {"purchased_quantity": "0", "eta": ""},
        ).status_code
        == 403
    )
    assert stored_state() == before
