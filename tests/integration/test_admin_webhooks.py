"""The admin's webhook subscriptions (SPEC 6.3): status, pending, last error; pause, resume."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from allocation import models as orm
from allocation import services
from allocation.webhooks import secrets
from allocation.webhooks import services as webhook_services
from tests.factories import UserFactory
from tests.integration.helpers import messages_of

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:allocation_webhooksubscription_changelist")
URL = "https://hooks.example.com/"


def test_the_list_shows_status_pending_and_last_error_in_a_fixed_number_of_queries(ops):
    ids = [webhook_services.subscribe(url=f"{URL}{n}").id for n in range(3)]
    services.add_batch(reference="b1", sku="RED-CHAIR", purchased_quantity=5)
    webhook_services.record_failure(subscription_id=ids[1], error="HTTP 503", attempts=1)
    webhook_services.pause(subscription_ids=[ids[2]])

    with CaptureQueriesContext(connection) as few:
        response = ops.get(CHANGELIST)
    for n in range(3, 10):
        webhook_services.subscribe(url=f"{URL}{n}")
    with CaptureQueriesContext(connection) as many:
        ops.get(CHANGELIST)

    assert response.status_code == 200
    rows = response.context["cl"].result_list
    assert [(r.id, r.status, r.pending, r.last_error) for r in rows] == [
        (ids[0], "active", 1, None),
        (ids[1], "active", 1, "HTTP 503"),
        (ids[2], "paused", 1, None),
    ]
    assert "HTTP 503" in response.text
    assert len(many) == len(few)


def test_pause_and_resume_actions_change_status_through_the_services(ops):
    subscription_id = webhook_services.subscribe(url=URL).id
    webhook_services.record_failure(subscription_id=subscription_id, error="timeout", attempts=4)

    paused = ops.post(
        CHANGELIST, {"action": "pause", "_selected_action": [subscription_id]}, follow=True
    )
    assert orm.WebhookSubscription.objects.get().status == "paused"
    resumed = ops.post(
        CHANGELIST, {"action": "resume", "_selected_action": [subscription_id]}, follow=True
    )

    row = orm.WebhookSubscription.objects.get()
    assert messages_of(paused) == ["Paused 1 subscription(s)."]
    assert messages_of(resumed) == ["Resumed 1 subscription(s)."]
    assert (row.status, row.attempts, row.next_attempt_at) == ("active", 0, None)


def test_adding_one_in_the_admin_shows_its_secret_once(ops):
    response = ops.post(
        reverse("admin:allocation_webhooksubscription_add"),
        {"url": URL, "types": ["line_moved"], "secret": ""},
        follow=True,
    )

    row = orm.WebhookSubscription.objects.get()
    secret = secrets.unseal(row.secret)
    assert (row.url, row.types, row.status) == (URL, ["line_moved"], "active")
    assert [m for m in messages_of(response) if "secret" in m] == [
        f"Its signing secret, shown this once: {secret}"
    ]


def test_an_internal_url_is_refused_in_the_admin_too(ops, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False

    response = ops.post(
        reverse("admin:allocation_webhooksubscription_add"), {"url": "http://127.0.0.1/h"}
    )

    assert response.status_code == 200
    assert "loopback, private or link-local" in response.text
    assert orm.WebhookSubscription.objects.count() == 0


def test_a_viewer_sees_subscriptions_but_cannot_pause_them(client):
    subscription_id = webhook_services.subscribe(url=URL).id
    viewer = UserFactory(username="v", is_staff=True)
    viewer.groups.add(Group.objects.get(name="viewer"))
    client.force_login(viewer)

    listed = client.get(CHANGELIST)
    client.post(CHANGELIST, {"action": "pause", "_selected_action": [subscription_id]})

    assert listed.status_code == 200
    assert URL in listed.text
    assert orm.WebhookSubscription.objects.get().status == "active"
