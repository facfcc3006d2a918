from rest_framework.negotiation import DefaultContentNegotiation


class ContentNegotiation(DefaultContentNegotiation):
    """An unknown ``?format=`` is ignored like any unknown query parameter (SPEC 2).

    DRF answers it with a 404; here the Accept header decides instead.
    """

    def filter_renderers(self, renderers, format):
        return [renderer for renderer in renderers if renderer.format == format] or renderers
