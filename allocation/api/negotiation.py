from rest_framework.negotiation import DefaultContentNegotiation


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, with two changes.

    An unknown ``?format=`` is ignored like any unknown query parameter
    (SPEC 2): DRF answers it with a 404; here the Accept header decides instead.

    The answer for the Accept headers nearly every API client sends
    (``application/json``, ``*/*`` or none) is worked out once per set of
    renderers and then reused: it is always the same, and negotiating costs
    more than the rest of a small response. Any other header, and any
    ``?format=``, is negotiated in full each time (so no client input is
    ever remembered).
    """

    COMMON_ACCEPT = frozenset({"application/json", "*/*"})
    _common: dict[tuple, tuple[int, str]] = {}

    def filter_renderers(self, renderers, format):
        return [renderer for renderer in renderers if renderer.format == format] or renderers

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.headers.get("accept", "*/*")
        if (
            format_suffix
            or accept not in self.COMMON_ACCEPT
            or self.settings.URL_FORMAT_OVERRIDE in request.query_params
        ):
            return super().select_renderer(request, renderers, format_suffix)
        key = (accept, tuple(type(renderer) for renderer in renderers))
        known = self._common.get(key)
        if known is None:
            renderer, media_type = super().select_renderer(request, renderers, format_suffix)
            self._common[key] = (renderers.index(renderer), media_type)
            return renderer, media_type
        index, media_type = known
        return renderers[index], media_type
