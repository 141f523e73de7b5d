"""The management API's pagination (``?page=``, ``?page_size=`` up to 500)."""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination


class AdminPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
