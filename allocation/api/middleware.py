from django.conf import settings
from django.http import JsonResponse

from allocation.api.errors import error_body


class APIBodyLimitMiddleware:
    """Refuse an oversized API body before anything reads it (413, JSON).

    The JSON parser bounds what it reads as well, for bodies sent without a
    Content-Length; this catches form and multipart bodies too, which Django
    would otherwise answer with an HTML 400.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return JsonResponse(
                    error_body("The Content-Length header is not a number.", "parse_error"),
                    status=400,
                )
            limit = settings.API_MAX_BODY_BYTES
            if length > limit:
                return JsonResponse(
                    error_body(
                        f"The request body is larger than the limit of {limit} bytes.",
                        "payload_too_large",
                    ),
                    status=413,
                )
        return self.get_response(request)
