"""A JSON parser that bounds what it reads and survives hostile nesting."""

import json

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser


# Defined here, not in errors.py: DRF imports the parser classes while
# errors.py is still importing rest_framework.views (a circular import).
class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than the limit of {limit} bytes.")


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        if stream is None:
            return None
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(limit)
        try:
            text = raw.decode((parser_context or {}).get("encoding", settings.DEFAULT_CHARSET))
            return json.loads(text, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        except LookupError as exc:
            # A charset Python knows but that is no text encoding ("rot13", "hex").
            raise ParseError(f"Unsupported charset in the Content-Type header: {exc}") from exc
        except RecursionError as exc:
            raise ParseError("JSON parse error - the document is nested too deeply.") from exc


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")
