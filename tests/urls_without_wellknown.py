"""The demo's URLconf without ``oauth_server.wellknown_urls`` (tests/test_cimd.py: check W011)."""

from django.urls import include, path

urlpatterns = [
    path("oauth/", include("oauth_server.urls")),
]
