"""Input serializers check shape only; output serializers describe what we send.

Output serializers read attributes that domain objects and ORM rows share
(``reference``, ``sku``, ``status``, ``available_quantity``...), so a batch
just written by a service and a batch read by a selector look the same.
"""

from __future__ import annotations

import re
from collections import Counter

from django.core.validators import RegexValidator
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils import html

from allocation.webhooks import services as webhook_services
from domain.events import EVENT_TYPES
from domain.model import BatchStatus, LineStatus
from domain.validation import (
    IDENTIFIER_MAX_LENGTH,
    IDENTIFIER_MESSAGE,
    IDENTIFIER_RE,
    MAX_QUANTITY,
    is_identifier,
    is_quantity,
)
from domain.webhooks import STATUSES as WEBHOOK_STATUSES
from domain.webhooks import BadWebhook, secret_key

_identifier_validator = RegexValidator(IDENTIFIER_RE, IDENTIFIER_MESSAGE, code="invalid_identifier")
#: An integer written as text, as an HTML form (or a CSV file, for the commands) sends it.
INTEGER_TEXT_RE = re.compile(r"-?\d{1,20}")
_DATE_RE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")

# Named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]: both have a "status".
BATCH_STATUSES = [s.value for s in BatchStatus]
LINE_STATUSES = [s.value for s in LineStatus]
EVENT_TYPE_NAMES = list(EVENT_TYPES)
WEBHOOK_STATUS_NAMES = list(WEBHOOK_STATUSES)


class IdentifierField(serializers.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", IDENTIFIER_MAX_LENGTH)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        self.validators.append(_identifier_validator)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """An integer, not a float, bool or numeric string in disguise.

    Digits in a string are taken only from an HTML form (the browsable API),
    where every value is a string; a JSON client must send a number.
    """

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        if isinstance(data, str) and not (
            html.is_html_input(getattr(self.root, "initial_data", None))
            and INTEGER_TEXT_RE.fullmatch(data.strip())
        ):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictDateField(serializers.DateField):
    """``YYYY-MM-DD`` and nothing else (Python would also take ``20261121``)."""

    def to_internal_value(self, value):
        if not isinstance(value, str) or not _DATE_RE.match(value):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


def quantity_field(minimum: int, **kwargs) -> StrictIntegerField:
    return StrictIntegerField(min_value=minimum, max_value=MAX_QUANTITY, **kwargs)


# -- batches --------------------------------------------------------------------


class BatchInputSerializer(serializers.Serializer):
    reference = IdentifierField()
    sku = IdentifierField()
    purchased_quantity = quantity_field(0)
    eta = StrictDateField(required=False, allow_null=True, default=None)


class BatchPatchSerializer(serializers.Serializer):
    """``reference`` and ``sku`` may be sent only with their current values."""

    reference = IdentifierField(required=False)
    sku = IdentifierField(required=False)
    purchased_quantity = quantity_field(0, required=False)
    eta = StrictDateField(required=False, allow_null=True)

    def validate_reference(self, value: str) -> str:
        if value != self.context["reference"]:
            raise serializers.ValidationError("The reference of a batch cannot be changed.")
        return value


class BatchSerializer(serializers.Serializer):
    reference = serializers.CharField()
    sku = serializers.CharField()
    purchased_quantity = serializers.IntegerField()
    eta = serializers.DateField(allow_null=True)
    status = serializers.ChoiceField(choices=BATCH_STATUSES)
    allocated_quantity = serializers.IntegerField()
    available_quantity = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class BatchPartSerializer(serializers.Serializer):
    """A part held on a batch, as seen from the batch."""

    order_id = serializers.CharField(source="line.order_id")
    sku = serializers.CharField(source="line.product_id")
    qty = serializers.IntegerField()


class BatchDetailSerializer(BatchSerializer):
    allocations = BatchPartSerializer(many=True, source="held_parts")


# -- lines ------------------------------------------------------------------------

# Unbound fields whose to_representation the hot serializers call directly.
_CHAR = serializers.CharField()
_INTEGER = serializers.IntegerField()
# The default time zone given up front: asking for the current one on every
# call costs more than the rest of the rendering (nothing activates another).
_DATETIME = serializers.DateTimeField(default_timezone=timezone.get_default_timezone())
_LINE_STATUS = serializers.ChoiceField(choices=LINE_STATUSES)


def _represent(field: serializers.Field, value):
    """A value as ``Serializer.to_representation`` gives it through ``field`` (None stays None)."""
    return None if value is None else field.to_representation(value)


class LineInputSerializer(serializers.Serializer):
    order_id = IdentifierField()
    sku = IdentifierField()
    qty = quantity_field(1)

    def run_validation(self, data=serializers.empty):
        return well_formed_line(data) or super().run_validation(data)


def well_formed_line(data) -> dict | None:
    """A JSON allocation body the fields would accept, as they would return it; else None.

    Every allocation comes through here: a well-formed body is taken as it is,
    without building the serializer's fields; for anything else (None) the
    serializer judges, with its error messages. tests/unit/test_serializers.py
    checks on random input that both judge alike.
    """
    if type(data) is dict:
        order_id, sku, qty = data.get("order_id"), data.get("sku"), data.get("qty")
        if is_identifier(order_id) and is_identifier(sku) and is_quantity(qty, minimum=1):
            return {"order_id": order_id, "sku": sku, "qty": qty}
    return None


class LinePartSerializer(serializers.Serializer):
    reference = serializers.CharField()
    qty = serializers.IntegerField()


class LineSerializer(serializers.Serializer):
    order_id = serializers.CharField()
    sku = serializers.CharField()
    qty = serializers.IntegerField()
    status = serializers.ChoiceField(choices=LINE_STATUSES)
    batches = serializers.SerializerMethodField()
    requested_at = serializers.DateTimeField()

    def to_representation(self, line) -> dict:
        return line_data(line)

    @extend_schema_field(LinePartSerializer(many=True))
    def get_batches(self, line) -> list[dict]:
        return _line_parts(line)


def _line_parts(line) -> list[dict]:
    parts = line.parts
    if hasattr(parts, "all"):
        # An ORM row: parts were prefetched in preference order.
        return [{"reference": p.batch.reference, "qty": p.qty} for p in parts.all()]
    return [{"reference": p.batch_reference, "qty": p.qty} for p in parts]


def line_data(line) -> dict:
    """A line (domain allocation or ORM row) as ``LineSerializer``'s fields render it.

    Field by field the same, without building the fields for every response:
    each allocation and each listed line is one. tests/unit/test_serializers.py
    compares it with the fields' own rendering on random lines.
    """
    return {
        "order_id": _represent(_CHAR, line.order_id),
        "sku": _represent(_CHAR, line.sku),
        "qty": _represent(_INTEGER, line.qty),
        "status": _represent(_LINE_STATUS, line.status),
        "batches": _line_parts(line),
        "requested_at": _represent(_DATETIME, line.requested_at),
    }


class BatchChangeSerializer(BatchSerializer):
    reallocated = LineSerializer(many=True)
    backordered = LineSerializer(many=True)


class StockChangeSerializer(serializers.Serializer):
    reallocated = LineSerializer(many=True)
    backordered = LineSerializer(many=True)


# -- orders -----------------------------------------------------------------------

#: SPEC 2.5: an order has 1 to 1000 lines.
MAX_ORDER_LINES = 1000


class OrderLineInputSerializer(serializers.Serializer):
    sku = IdentifierField()
    qty = quantity_field(1)


@extend_schema_field(OrderLineInputSerializer(many=True))
class OrderLinesField(serializers.Field):
    """1 to 1000 ``{"sku", "qty"}`` objects, each SKU once.

    Its errors are one flat list of messages, each naming its line by index
    (``lines[2].qty: ...``), so that an order's 400 keeps SPEC 2's
    ``{"field": ["message"]}`` shape, as every other validation error does.
    """

    default_error_messages = {
        "not_a_list": 'Expected a list of lines but got type "{input_type}".',
        "empty": "An order needs at least one line.",
        "max_length": "An order has at most {max_length} lines.",
        "repeated": "Each SKU may appear once in an order: {skus}.",
    }

    def to_internal_value(self, data) -> list[dict]:
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        if not data:
            self.fail("empty")
        if len(data) > MAX_ORDER_LINES:
            self.fail("max_length", max_length=MAX_ORDER_LINES)
        lines, errors = [], []
        for index, item in enumerate(data):
            line = OrderLineInputSerializer(data=item)
            if line.is_valid():
                lines.append(dict(line.validated_data))
                continue
            for name, messages in line.errors.items():
                where = f"lines[{index}]"
                if name != "non_field_errors":
                    where += f".{name}"
                errors += [f"{where}: {message}" for message in messages]
        if errors:
            raise serializers.ValidationError(errors)
        counts = Counter(line["sku"] for line in lines)
        repeated = [sku for sku, count in counts.items() if count > 1]
        if repeated:
            self.fail("repeated", skus=", ".join(repeated))
        return lines

    def to_representation(self, value):
        return value


class OrderInputSerializer(serializers.Serializer):
    order_id = IdentifierField()
    lines = OrderLinesField()


class OrderSerializer(serializers.Serializer):
    order_id = serializers.CharField()
    lines = LineSerializer(many=True)


def order_data(order_id: str, lines) -> dict:
    return {"order_id": order_id, "lines": [line_data(line) for line in lines]}


# -- products ---------------------------------------------------------------------


class ProductSerializer(serializers.Serializer):
    sku = serializers.CharField()
    purchased_quantity = serializers.IntegerField()
    allocated_quantity = serializers.IntegerField()
    available_quantity = serializers.IntegerField()
    backordered_quantity = serializers.IntegerField()
    batches = BatchSerializer(many=True)


# -- events (SPEC 6) ------------------------------------------------------------------

#: ``?type=``: one type or several, comma-separated.
EVENT_TYPES_PATTERN = "^({0})(,({0}))*$".format("|".join(EVENT_TYPES))
#: ``?transaction=``: what the service hands out (uuid4 hex), nothing else can match.
TRANSACTION_PATTERN = r"^[0-9a-f]{1,64}$"
MAX_EVENT_ID = 2**63 - 1


class EventQuerySerializer(serializers.Serializer):
    """The feed's query parameters: any value that is not one of these is a 400."""

    after = serializers.IntegerField(min_value=0, max_value=MAX_EVENT_ID, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)
    sku = IdentifierField(required=False)
    type = serializers.RegexField(EVENT_TYPES_PATTERN, required=False)
    order_id = IdentifierField(required=False)
    batch = IdentifierField(required=False)
    transaction = serializers.RegexField(TRANSACTION_PATTERN, required=False)

    def validate_type(self, value: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value.split(",")))


class EventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.ChoiceField(choices=EVENT_TYPE_NAMES)
    sku = serializers.CharField()
    sku_seq = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    actor = serializers.CharField(allow_null=True)
    # DRF's metaclass takes declared fields off the class, so these two shadow
    # nothing; the stubs cannot tell (typeddjango/djangorestframework-stubs#158, #78).
    source = serializers.ChoiceField(choices=["api", "admin", "cli", "migration"])  # type: ignore[assignment]
    transaction = serializers.CharField()
    data = serializers.JSONField(help_text="What changed; its keys depend on type (SPEC 6).")  # type: ignore[assignment]


class EventPageSerializer(serializers.Serializer):
    results = EventSerializer(many=True)
    next_after = serializers.IntegerField(
        help_text="The id of the last event returned (or after, when none): the next after."
    )


# -- webhooks (SPEC 6.2) ----------------------------------------------------------------


@extend_schema_field({"type": "array", "items": {"type": "string", "enum": EVENT_TYPE_NAMES}})
class EventTypesField(serializers.Field):
    """A list of event type names, checked as a whole: one list of messages if it is not."""

    def to_internal_value(self, data: object) -> list[str]:
        if not isinstance(data, list) or not all(isinstance(t, str) for t in data):
            raise serializers.ValidationError("A list of event type names.")
        try:
            return webhook_services.checked_types(data)
        except BadWebhook as error:
            raise serializers.ValidationError(str(error)) from None

    def to_representation(self, value: list[str]) -> list[str]:
        return list(value)


class WebhookInputSerializer(serializers.Serializer):
    url = serializers.CharField(
        max_length=2000, help_text="http or https; not a loopback, private or link-local host."
    )
    types = EventTypesField(
        required=False,
        default=list,
        help_text="Event types to receive; empty or absent: all.",
    )
    secret = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Standard Webhooks secret, whsec_ + base64 of 24-64 bytes; generated if absent.",
    )

    def validate_url(self, value: str) -> str:
        try:
            return webhook_services.checked_url(value)
        except BadWebhook as error:
            raise serializers.ValidationError(str(error)) from None

    def validate_secret(self, value: str) -> str:
        try:
            secret_key(value)
        except BadWebhook as error:
            raise serializers.ValidationError(str(error)) from None
        return value


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    types = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPE_NAMES))
    status = serializers.ChoiceField(choices=WEBHOOK_STATUS_NAMES)
    delivered_through = serializers.IntegerField(
        help_text="The id of the last event delivered (or passed: not of its types)."
    )
    pending = serializers.IntegerField(help_text="Events of its types waiting for it.")
    last_error = serializers.CharField(
        allow_null=True, help_text="Why the last attempt failed; null once one succeeds."
    )
    created_at = serializers.DateTimeField()


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(
        help_text="The signing secret: shown in this answer only, keep it."
    )
