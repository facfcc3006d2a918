"""POST/GET/DELETE /api/webhooks/ (SPEC 6.2), read back after every write."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth.models import Group

from allocation import models as orm
from allocation import services
from allocation.webhooks import secrets
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
URL = "https://hooks.example.com/allocation"


def subscribe(api, **body):
    return api.post("/api/webhooks/", {"url": URL, **body}, format="json")


def test_subscribing_answers_201_with_a_generated_secret_shown_once(api):
    response = subscribe(api, types=["line_moved", "batch_created"])

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["url"] == URL
    assert body["types"] == ["line_moved", "batch_created"]
    assert body["status"] == "active"
    assert body["pending"] == 0
    assert body["last_error"] is None
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"][len("whsec_") :], validate=True)) >= 24
    shown = api.get(f"/api/webhooks/{body['id']}/").json()
    assert "secret" not in shown
    assert shown["url"] == URL
    assert [w["id"] for w in api.get("/api/webhooks/").json()["results"]] == [body["id"]]
    assert "secret" not in api.get("/api/webhooks/").json()["results"][0]


def test_two_subscriptions_get_different_secrets_stored_encrypted(api):
    first = subscribe(api).json()
    second = subscribe(api).json()

    assert first["secret"] != second["secret"]
    stored = orm.WebhookSubscription.objects.get(id=first["id"]).secret
    assert first["secret"] not in stored
    assert base64.b64decode(first["secret"][6:]) not in base64.urlsafe_b64decode(stored)
    assert secrets.unseal(stored) == first["secret"]


def test_a_given_secret_is_kept(api):
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()

    body = subscribe(api, secret=secret).json()

    assert body["secret"] == secret
    assert secrets.unseal(orm.WebhookSubscription.objects.get(id=body["id"]).secret) == secret


def test_a_new_subscription_receives_only_events_written_after_it(api):
    services.add_batch(reference="b1", sku="RED-CHAIR", purchased_quantity=10)
    last = orm.Event.objects.latest("id").id

    body = subscribe(api).json()
    services.add_batch(reference="b2", sku="RED-CHAIR", purchased_quantity=10)
    services.allocate(order_id="o1", sku="RED-CHAIR", qty=1)

    assert body["delivered_through"] == last
    assert api.get(f"/api/webhooks/{body['id']}/").json()["pending"] == 2


def test_pending_counts_only_the_types_subscribed(api):
    typed = subscribe(api, types=["line_allocated"]).json()
    services.add_batch(reference="b1", sku="RED-CHAIR", purchased_quantity=10)
    services.allocate(order_id="o1", sku="RED-CHAIR", qty=1)
    services.allocate(order_id="o2", sku="RED-CHAIR", qty=1)

    assert api.get(f"/api/webhooks/{typed['id']}/").json()["pending"] == 2
    everything = subscribe(api).json()
    services.delete_batch(reference="b1")
    pending = {w["id"]: w["pending"] for w in api.get("/api/webhooks/").json()["results"]}
    # The delete: batch_deleted, then both lines backordered.
    assert pending == {typed["id"]: 2, everything["id"]: 3}


def test_delete_answers_204_and_the_subscription_is_gone(api):
    body = subscribe(api).json()

    response = api.delete(f"/api/webhooks/{body['id']}/")

    assert response.status_code == 204
    assert api.get(f"/api/webhooks/{body['id']}/").status_code == 404
    assert api.delete(f"/api/webhooks/{body['id']}/").json()["code"] == "not_found"
    assert orm.WebhookSubscription.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://"}, "url"),
        ({"types": ["line_moved", "no_such_type"]}, "types"),
        ({"types": "line_moved"}, "types"),
        ({"secret": "not-whsec"}, "secret"),
        ({"secret": "whsec_!!!"}, "secret"),
        ({"secret": "whsec_" + base64.b64encode(b"short").decode()}, "secret"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, body, field):
    response = api.post("/api/webhooks/", {"url": URL, **body}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert orm.WebhookSubscription.objects.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_internal_hosts_are_refused_unless_allowed(api, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE = False

    refused = api.post("/api/webhooks/", {"url": url}, format="json")
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    allowed = api.post("/api/webhooks/", {"url": url}, format="json")

    assert refused.status_code == 400
    assert "url" in refused.json()
    assert allowed.status_code == 201
    assert orm.WebhookSubscription.objects.get().url == url


def test_a_public_address_is_accepted_with_private_hosts_refused(api, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False

    response = api.post("/api/webhooks/", {"url": "https://93.184.215.14/hook"}, format="json")

    assert response.status_code == 201


def test_permissions_per_action(client_for):
    viewer = UserFactory(username="v")
    viewer.groups.add(Group.objects.get(name="viewer"))
    ops = UserFactory(username="w")
    ops.groups.add(Group.objects.get(name="warehouse ops"))
    plain = client_for(UserFactory(username="plain"))
    viewer, ops = client_for(viewer), client_for(ops)

    created = ops.post("/api/webhooks/", {"url": URL}, format="json")
    assert created.status_code == 201
    hook = f"/api/webhooks/{created.json()['id']}/"
    assert viewer.post("/api/webhooks/", {"url": URL}, format="json").status_code == 403
    assert viewer.get(hook).status_code == 200
    assert viewer.get("/api/webhooks/").status_code == 200
    assert viewer.delete(hook).status_code == 403
    assert plain.get("/api/webhooks/").status_code == 403
    assert plain.get(hook).status_code == 403
    assert plain.post("/api/webhooks/", {"url": URL}, format="json").status_code == 403
    assert ops.delete(hook).status_code == 204
    assert orm.WebhookSubscription.objects.count() == 0
