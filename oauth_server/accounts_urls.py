"""Sign-in and sign-out pages for a site that has none of its own.

``path("accounts/", include("oauth_server.accounts_urls"))`` next to ``include("oauth_server.urls")``.

Mounted at ``accounts/``, ``login/`` is Django's default ``LOGIN_URL`` (``/accounts/login/``), where
the authorization endpoint sends anonymous users, so the app works on a fresh ``startproject``
site with no setting. The names are Django's usual, un-namespaced ``login`` and ``logout``.

A site with its own sign-in (django-allauth, SSO, ``django.contrib.auth.urls`` with its own
``registration/login.html``) leaves this out and points ``LOGIN_URL`` at its page; check
``oauth_server.W009`` warns when ``LOGIN_URL`` leads nowhere.
"""

from django.urls import path

from .headers import page_headers
from .views.accounts import LogoutView
from .views.login import LoginView

urlpatterns = [
    path("login/", page_headers(LoginView.as_view()), name="login"),
    path("logout/", page_headers(LogoutView.as_view()), name="logout"),
]
