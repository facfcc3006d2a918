"""The batch form: shape only; the service decides what a new quantity does to the lines."""

from __future__ import annotations

from django import forms

from allocation import models as orm
from domain.validation import IDENTIFIER_MAX_LENGTH, MAX_QUANTITY, is_identifier


class BatchForm(forms.ModelForm):
    # The ORM field is the ``product`` foreign key; people type a SKU, and
    # the service creates the product row when the SKU is new.
    sku = forms.CharField(label="SKU", max_length=IDENTIFIER_MAX_LENGTH)
    purchased_quantity = forms.IntegerField(min_value=0, max_value=MAX_QUANTITY)

    class Meta:
        model = orm.Batch
        fields = ("reference", "purchased_quantity", "eta")
        error_messages = {
            "reference": {"unique": "A batch with this reference already exists."},
        }

    def clean_reference(self):
        return _identifier(self.cleaned_data["reference"])

    def clean_sku(self):
        return _identifier(self.cleaned_data["sku"])


def _identifier(value: str) -> str:
    if not is_identifier(value):
        raise forms.ValidationError(
            "Use 1-255 letters, digits and . _ - : (starting with a letter or digit)."
        )
    return value
