"""Each domain error carries its own code; the API maps codes to statuses in one table."""

from __future__ import annotations

import pytest

from allocation.api.errors import DOMAIN_STATUS, domain_error_response
from domain import exceptions as domain

EXAMPLES = [
    (domain.BatchNotFound("b1"), 404, {"code": "not_found"}),
    (domain.LineNotFound("o1", "RUG"), 404, {"code": "not_found"}),
    (domain.ProductNotFound("RUG"), 404, {"code": "not_found"}),
    (domain.DuplicateBatch("b1"), 409, {"code": "duplicate_batch"}),
    (
        domain.OutOfStock("RUG", 5, 3),
        409,
        {"code": "out_of_stock", "sku": "RUG", "requested": 5, "available": 3},
    ),
    (domain.LineConflict("o1", "RUG", 2, 3), 409, {"code": "line_conflict"}),
    (domain.InvalidSku("RUG"), 400, {"code": "invalid_sku"}),
]


@pytest.mark.parametrize(("error", "status", "expected"), EXAMPLES)
def test_the_api_answers_each_domain_error_with_its_own_code(error, status, expected):
    response = domain_error_response(error)

    assert response.status_code == status
    assert response.data == {"detail": str(error), **expected}


def test_errors_about_one_field_are_field_errors():
    change = domain_error_response(domain.SkuChange("b1", "RUG", "LAMP"))
    quantity = domain_error_response(domain.InvalidQuantity("qty", 0, 1, 10))

    assert (change.status_code, change.data) == (
        400,
        {"sku": ["Batch 'b1' holds SKU 'RUG'; its SKU cannot change to 'LAMP'."]},
    )
    assert (quantity.status_code, quantity.data) == (
        400,
        {"qty": ["qty must be between 1 and 10, not 0."]},
    )


def every_subclass(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *every_subclass(sub)]
    return found


def test_every_domain_error_code_has_a_status_or_the_error_names_a_field():
    unmapped = [
        cls.__name__
        for cls in every_subclass(domain.DomainError)
        if cls.code not in DOMAIN_STATUS and cls not in (domain.SkuChange, domain.InvalidQuantity)
    ]

    assert unmapped == []
    assert domain.SkuChange.field == "sku"
