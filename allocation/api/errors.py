"""One place that turns every error into the SPEC's JSON bodies.

Validation failures keep DRF's field-error body (``{"field": ["message"]}``);
everything else becomes ``{"detail": "<sentence>", "code": "<machine code>"}``.
Views never catch domain errors themselves.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, connection
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from allocation.unit_of_work import (
    Busy,
    ServiceUnavailable,
    Unavailable,
    classify,
    is_database_failure,
)
from domain import exceptions as domain

log = logging.getLogger(__name__)


def error_body(detail: str, code: str, **extra) -> dict:
    return {"detail": detail, "code": code, **extra}


#: HTTP status per domain error code (SPEC 2's error table); the code itself
#: and any extra keys come from the error.
DOMAIN_STATUS = {
    "not_found": 404,
    "duplicate_batch": 409,
    "out_of_stock": 409,
    "line_conflict": 409,
    "invalid_sku": 400,
}


def domain_error_response(exc: domain.DomainError) -> Response:
    if exc.field is not None:
        # About one field of the input: reported as DRF reports field errors.
        return Response({exc.field: [str(exc)]}, status=400)
    status = DOMAIN_STATUS.get(exc.code)
    if status is None:
        log.error("unmapped domain error: %r", exc)
        status = 400
    return Response(error_body(str(exc), exc.code, **exc.details()), status=status)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, domain.DomainError):
        return domain_error_response(exc)
    if isinstance(exc, DatabaseError):
        # Raised outside a unit of work's retries (authentication, a read):
        # a transient error still means "busy" or "unavailable", not a 500.
        kind = classify(exc)
        if kind == "connection":
            # The database is gone: drop the broken connection; say so fast.
            connection.close()
            exc = Unavailable()
        elif kind == "conflict":
            exc = Busy()
        elif is_database_failure(exc):
            # The database failed the request for its own reasons (disk full,
            # a statement cancelled, an internal error); a use case's unit of
            # work has rolled back. Errors in our own SQL or data
            # (IntegrityError, ProgrammingError, DataError) stay 500s: bugs.
            log.error("database error: %s", exc, exc_info=exc)
            exc = Unavailable("The database could not complete the request; please retry later.")
    if isinstance(exc, ServiceUnavailable):
        return Response(error_body(str(exc), exc.code), status=503, headers={"Retry-After": "1"})
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        return response
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.default_detail)
        response.data = error_body(str(detail), str(code))
    return response


# CSRF-exempt: it changes nothing, and a DELETE or PATCH to an unknown path
# would otherwise get the CSRF middleware's HTML 403 instead of this 404.
@csrf_exempt
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Unknown routes under /api/: JSON, never Django's HTML page."""
    detail = f"No API endpoint at {request.path}."
    if not request.path.endswith("/"):
        detail += f" Did you mean {request.path}/ ?"
    return JsonResponse(error_body(detail, "not_found"), status=404)
