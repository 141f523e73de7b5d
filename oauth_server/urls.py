"""URLs: ``path("oauth/", include("oauth_server.urls"))``; the issuer is that mount point's URL.

The namespace is DOT's (``oauth2_provider``) because DOT's own code reverses names in it (issuer,
metadata); our views take DOT's names.

Each view is wrapped here, outermost first, with its security headers (``headers``), its CORS
policy (``cors``) and its rate limits (``ratelimit``), so the protections are visible in one place
and an endpoint cannot be mounted without them (docs/abuse.md).
"""

from django.urls import path

from . import grants, views
from .cors import client_cors, public_cors
from .headers import page_headers, token_headers
from .ratelimit import rate_limit
from .views.code import CodePageView
from .views.connected_apps import ConnectedAppsView, RevokeConnectedAppView
from .views.introspection import IntrospectTokenView
from .views.logout import RPInitiatedLogoutView
from .views.par import PushedAuthorizationRequestView
from .views.registration import ClientConfigurationView, RegistrationView
from .views.revocation import RevokeTokenView
from .views.token import TokenView
from .views.userinfo import UserInfoView

app_name = "oauth2_provider"

authorize_view = page_headers(rate_limit("authorize", html=True)(views.AuthorizationView.as_view()))
token_view = token_headers(client_cors(["POST", "OPTIONS"])(rate_limit("token")(TokenView.as_view())))
revoke_view = token_headers(client_cors(["POST", "OPTIONS"])(rate_limit("revoke")(RevokeTokenView.as_view())))
# Server to server only (confidential clients): no CORS.
introspect_view = token_headers(rate_limit("introspect")(IntrospectTokenView.as_view()))
# Server to server (RFC 9126); a browser app has nothing to push that it could not send itself.
par_view = token_headers(rate_limit("par")(PushedAuthorizationRequestView.as_view()))
userinfo_view = token_headers(
    client_cors(["GET", "POST", "OPTIONS"], client_bound=False)(UserInfoView.as_view())
)

# RFC 7591/7592: JSON APIs without cookies, callable from any origin (browser-based MCP clients
# register themselves); rate-limited per IP whatever the policy (REGISTRATION_POLICY).
_registration_cors = {"headers": "Authorization, Content-Type"}
register_view = token_headers(
    public_cors(["POST", "OPTIONS"], **_registration_cors)(rate_limit("register")(RegistrationView.as_view()))
)
register_client_view = token_headers(
    public_cors(["GET", "PUT", "DELETE", "OPTIONS"], **_registration_cors)(
        rate_limit("register")(ClientConfigurationView.as_view())
    )
)

urlpatterns = [
    path("authorize/", authorize_view, name="authorize"),
    path("token/", token_view, name="token"),
    path("revoke/", revoke_view, name="revoke-token"),
    path("introspect/", introspect_view, name="introspect"),
    path("par/", par_view, name="pushed-authorization-request"),
    path("userinfo/", userinfo_view, name="user-info"),
    path("logout/", page_headers(RPInitiatedLogoutView.as_view()), name="rp-initiated-logout"),
    # A redirect URI for developers' clients: shows the code just issued (views/code.py).
    path("code/", page_headers(CodePageView.as_view()), name="show-code"),
    path("register/", register_view, name="register"),
    path("register/<path:client_id>/", register_client_view, name="register-client"),
    path("connected-apps/", page_headers(ConnectedAppsView.as_view()), name="connected-apps"),
    path(
        "connected-apps/<path:client_id>/revoke/",
        page_headers(RevokeConnectedAppView.as_view()),
        name="connected-app-revoke",
    ),
    path(
        ".well-known/openid-configuration",
        public_cors()(views.OpenIDConfigurationView.as_view()),
        name="oidc-connect-discovery-info",
    ),
    path(
        ".well-known/oauth-authorization-server",
        public_cors()(views.AuthorizationServerMetadataView.as_view()),
        name="oauth-server-metadata",
    ),
    path(".well-known/jwks.json", public_cors()(views.JwksView.as_view()), name="jwks-info"),
]
# Endpoints of grants that have their own (RFC 8628's device authorization endpoint, say); each grant
# module wraps its views with headers, CORS and rate limits itself (grants/device_code.py, views/device.py).
urlpatterns += grants.registry.urlpatterns()
