"""URLs: ``path("oauth/", include("oauth_server.urls"))``; the issuer is that mount point's URL.

The namespace is DOT's (``oauth2_provider``) because DOT's own code reverses names in it (issuer,
metadata); our views take DOT's names.
"""

from django.urls import path

from . import views
from .views.connected_apps import ConnectedAppsView, RevokeConnectedAppView
from .views.introspection import IntrospectTokenView
from .views.logout import RPInitiatedLogoutView
from .views.revocation import RevokeTokenView
from .views.token import TokenView
from .views.userinfo import UserInfoView

app_name = "oauth2_provider"

urlpatterns = [
    path("authorize/", views.AuthorizationView.as_view(), name="authorize"),
    path("token/", TokenView.as_view(), name="token"),
    path("revoke/", RevokeTokenView.as_view(), name="revoke-token"),
    path("introspect/", IntrospectTokenView.as_view(), name="introspect"),
    path("userinfo/", UserInfoView.as_view(), name="user-info"),
    path("logout/", RPInitiatedLogoutView.as_view(), name="rp-initiated-logout"),
    path("connected-apps/", ConnectedAppsView.as_view(), name="connected-apps"),
    path(
        "connected-apps/<path:client_id>/revoke/",
        RevokeConnectedAppView.as_view(),
        name="connected-app-revoke",
    ),
    path(
        ".well-known/openid-configuration",
        views.OpenIDConfigurationView.as_view(),
        name="oidc-connect-discovery-info",
    ),
    path(
        ".well-known/oauth-authorization-server",
        views.AuthorizationServerMetadataView.as_view(),
        name="oauth-server-metadata",
    ),
    path(".well-known/jwks.json", views.JwksView.as_view(), name="jwks-info"),
]
