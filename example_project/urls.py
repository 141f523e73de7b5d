from django.contrib import admin
from django.urls import include, path

from oauth_server.views.login import LoginView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("oauth/", include("oauth_server.urls")),
    # RFC 8414 3.1: the issuer /oauth's metadata at /.well-known/oauth-authorization-server/oauth.
    path("", include("oauth_server.wellknown_urls")),
    path("oauth/api/", include("oauth_server.api.urls")),
    path("", include("example_project.demo.urls")),
]
