"""Views of the management API: clients, scopes, users' consents and tokens, one module each.

Every view takes its authentication, permissions, renderers, parsers, pagination, filters and
exception handler from ``base.AdminAPIMixin``, never from the site's ``REST_FRAMEWORK`` defaults:
the API cannot be opened (or reshaped) by a site-wide setting. The error format is in
``api/errors.py``, the pagination in ``api/pagination.py``, the OpenAPI plumbing and ``SchemaView``
in ``api/schema.py``. The names below keep ``oauth_server.api.views.X`` working.
"""

from ..errors import api_exception_handler
from ..pagination import AdminPagination
from ..schema import SchemaView
from .base import AdminAPIMixin, NotFoundView
from .clients import ClientViewSet
from .consents import UserConsentViewSet
from .scopes import ScopeViewSet
from .tokens import UserTokenViewSet

__all__ = [
    "AdminAPIMixin",
    "AdminPagination",
    "ClientViewSet",
    "NotFoundView",
    "SchemaView",
    "ScopeViewSet",
    "UserConsentViewSet",
    "UserTokenViewSet",
    "api_exception_handler",
]
