"""Webhook subscriptions (SPEC 6.3): status, ``pending`` and ``last_error``; pause, resume.

Every write calls ``allocation.webhooks.services``: adding one (its secret is
generated, shown once in the message and stored encrypted), deleting, and the
pause and resume actions. The changelist is one statement (``pending`` is a
subquery of it) after the event horizon's.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from allocation import models as orm
from allocation.webhooks import selectors, services
from domain.events import EVENT_TYPES
from domain.webhooks import BadWebhook, secret_key


class SubscribeForm(forms.ModelForm):
    # Checked by the domain's rules (clean_url), as the API does.
    url = forms.CharField(max_length=2000, label="URL")
    types = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None checked: every type.",
    )
    secret = forms.CharField(
        required=False,
        max_length=200,
        help_text="Standard Webhooks format (whsec_ + base64); left empty, one is generated.",
    )

    class Meta:
        model = orm.WebhookSubscription
        fields = ["url"]

    def clean_url(self) -> str:
        try:
            return services.checked_url(self.cleaned_data["url"])
        except BadWebhook as error:
            raise ValidationError(str(error)) from None

    def clean_secret(self) -> str | None:
        secret = self.cleaned_data.get("secret") or None
        if secret is not None:
            try:
                secret_key(secret)
            except BadWebhook as error:
                raise ValidationError(str(error)) from None
        return secret


@admin.register(orm.WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "url",
        "types_shown",
        "status",
        "pending",
        "delivered_through",
        "last_error",
        "next_attempt_at",
    ]
    list_filter = ["status"]
    actions = ["pause", "resume"]
    readonly_fields = [
        "url",
        "types",
        "status",
        "delivered_through",
        "pending",
        "last_error",
        "attempts",
        "next_attempt_at",
        "created_at",
    ]

    def get_queryset(self, request):
        return selectors.subscriptions()

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = SubscribeForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["url", "types", "secret"]
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    @admin.display(description="types")
    def types_shown(self, subscription) -> str:
        return ", ".join(subscription.types) or "all"

    @admin.display(description="pending")
    def pending(self, subscription) -> int:
        return subscription.pending

    def save_model(self, request, obj, form, change):
        if change:
            return  # nothing here is edited in place: pause, resume or delete it
        subscribed = services.subscribe(
            url=form.cleaned_data["url"],
            types=form.cleaned_data["types"],
            secret=form.cleaned_data["secret"],
        )
        obj.pk = obj.id = subscribed.id
        self.message_user(
            request,
            f"Its signing secret, shown this once: {subscribed.secret}",
            messages.WARNING,
        )

    def save_related(self, request, form, formsets, change):
        """No related rows: the subscription was written by the service."""

    def delete_model(self, request, obj):
        services.unsubscribe(subscription_id=obj.id)

    def delete_queryset(self, request, queryset):
        for subscription_id in queryset.values_list("id", flat=True):
            services.unsubscribe(subscription_id=subscription_id)

    @admin.action(description="Pause delivery", permissions=["change"])
    def pause(self, request, queryset):
        count = services.pause(subscription_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"Paused {count} subscription(s).", messages.SUCCESS)

    @admin.action(description="Resume delivery", permissions=["change"])
    def resume(self, request, queryset):
        count = services.resume(subscription_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"Resumed {count} subscription(s).", messages.SUCCESS)
