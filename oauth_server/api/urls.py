"""URLs of the management API. Privileged: a site mounts it on purpose, e.g.
``path("oauth/api/", include("oauth_server.api.urls"))``; ``oauth_server.urls`` never includes it.
"""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from .schema import SchemaView
from .views import ClientViewSet, NotFoundView, ScopeViewSet, UserConsentViewSet, UserTokenViewSet

app_name = "oauth_server_api"

router = SimpleRouter()
router.register("clients", ClientViewSet, basename="client")
router.register("scopes", ScopeViewSet, basename="scope")

api_patterns = [
    *router.urls,
    path(
        "users/<str:user_id>/consents/",
        UserConsentViewSet.as_view({"get": "list"}),
        name="user-consent-list",
    ),
    path(
        "users/<str:user_id>/consents/<str:client_id>/",
        UserConsentViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
        name="user-consent-detail",
    ),
    path(
        "users/<str:user_id>/tokens/",
        UserTokenViewSet.as_view({"get": "list", "delete": "destroy_all"}),
        name="user-token-list",
    ),
    path(
        "users/<str:user_id>/tokens/<str:token_type>/<str:token_id>/",
        UserTokenViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
        name="user-token-detail",
    ),
]

urlpatterns = [
    *api_patterns,
    path("schema/", SchemaView.as_view(patterns=api_patterns), name="schema"),
    # Last: anything else under the API is a JSON 404 (after authentication); [\s\S]: paths with a
    # newline (%0A) too, which "." alone would leave to Django's HTML 404.
    re_path(r"^[\s\S]*$", NotFoundView.as_view(), name="not-found"),
]
