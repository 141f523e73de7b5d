"""Metadata at the site root, for an issuer with a path (RFC 8414 3.1): include at the root of the
site's URLconf, next to the app's own include::

    path("oauth/", include("oauth_server.urls")),
    path("", include("oauth_server.wellknown_urls")),

``/.well-known/oauth-authorization-server/oauth`` (RFC 8414, tried first by MCP clients) and
``/.well-known/openid-configuration/oauth`` (the path-inserting form some OIDC clients try) then serve
the same document as ``/oauth/.well-known/openid-configuration``. Other paths answer 404. Without
this include, ``manage.py check`` warns (``oauth_server.W011``).
"""

from django.urls import path

from .cors import public_cors
from .views.discovery import RootMetadataView

app_name = "oauth_server_wellknown"

root_metadata_view = public_cors()(RootMetadataView.as_view())

urlpatterns = [
    path(
        ".well-known/oauth-authorization-server/<path:path>", root_metadata_view, name="oauth-server-metadata"
    ),
    path(".well-known/openid-configuration/<path:path>", root_metadata_view, name="openid-configuration"),
]
