"""URLs: ``path("oauth/", include("oauth_server.urls"))``.

The namespace is DOT's (``oauth2_provider``) because DOT's own views reverse names in it (issuer,
metadata); our authorize view takes DOT's ``authorize`` name. Introspection is not mounted until
it is restricted to the tokens a client may see.
"""

from django.urls import path
from oauth2_provider import views as dot_views

from . import views

app_name = "oauth2_provider"

urlpatterns = [
    path("authorize/", views.AuthorizationView.as_view(), name="authorize"),
    path("token/", dot_views.TokenView.as_view(), name="token"),
    path("revoke/", dot_views.RevokeTokenView.as_view(), name="revoke-token"),
    path(
        ".well-known/oauth-authorization-server",
        dot_views.OAuthServerMetadataView.as_view(),
        name="oauth-server-metadata",
    ),
]
