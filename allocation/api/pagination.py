from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """``?page_size=`` up to 1000 (larger is capped; non-positive or junk gives the default)."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
