"""Sign-in on a site with no login page of its own (oauth_server.accounts_urls) and check W010.

A new site that follows the README gets Django's default LOGIN_URL (/accounts/login/) answered by
the app's LoginView; a site whose LOGIN_URL leads to a 404, or to Django's LoginView without its
template (a 500), is told by ``manage.py check`` (oauth_server.W010).
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.contrib.auth import views as auth_views
from django.test import Client as BrowserClient
from django.test import override_settings
from django.urls import include, path, reverse_lazy

from oauth_server.checks import check_login_url
from oauth_server.headers import page_headers
from oauth_server.views.login import LoginView
from tests.factories import ClientFactory, UserFactory, pkce_pair
from tests.helpers import authorize_params


class URLConf:
    """A URLconf object for ROOT_URLCONF (hashable, unlike a SimpleNamespace)."""

    def __init__(self, *patterns) -> None:
        self.urlpatterns = list(patterns)


OAUTH = path("oauth/", include("oauth_server.urls"))
FRESH_SITE = URLConf(path("accounts/", include("oauth_server.accounts_urls")), OAUTH)
NO_LOGIN = URLConf(OAUTH)
AUTH_URLS = URLConf(path("accounts/", include("django.contrib.auth.urls")), OAUTH)
# What a startproject site finds: the apps' templates only (the admin ships no registration/login.html).
APP_TEMPLATES_ONLY = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]


def ids(messages) -> list[str]:
    return [m.id for m in messages]


# --- the app's account pages on a fresh site -------------------------------------------------------
@pytest.fixture
def fresh_site(db):
    with override_settings(
        ROOT_URLCONF=FRESH_SITE,
        TEMPLATES=APP_TEMPLATES_ONLY,
        LOGIN_URL="/accounts/login/",
        LOGOUT_REDIRECT_URL=None,
    ):
        yield


def test_default_login_url_signs_in_and_returns_to_the_authorization_request(fresh_site):
    client = ClientFactory(scopes=["files:read"])
    user = UserFactory(password="a-long-password-123")
    browser = BrowserClient()
    _, challenge = pkce_pair()
    authorize = "/oauth/authorize/?" + urlencode(
        authorize_params(client, challenge=challenge, scope="files:read")
    )
    to_login = browser.get(authorize)
    assert to_login.status_code == 302
    assert to_login["Location"].startswith("/accounts/login/?next=")
    page = browser.get(to_login["Location"])
    assert page.status_code == 200
    assert [t.name for t in page.templates][0] == "oauth_server/login.html"
    assert page["X-Frame-Options"] == "DENY"
    assert page.context["client"] == client  # "to continue to <client>"
    signed_in = browser.post(
        to_login["Location"], {"username": user.username, "password": "a-long-password-123"}
    )
    assert signed_in.status_code == 302
    assert signed_in["Location"] == authorize
    consent = browser.get(authorize)
    assert consent.status_code == 200
    assert "oauth_server/consent.html" in [t.name for t in consent.templates]


def test_logout_signs_out_on_post_with_the_apps_page(fresh_site):
    browser = BrowserClient()
    browser.force_login(UserFactory())
    assert browser.get("/accounts/logout/").status_code == 405  # Django's LogoutView: POST only
    page = browser.post("/accounts/logout/")
    assert page.status_code == 200
    assert [t.name for t in page.templates][0] == "oauth_server/logged_out.html"
    assert 'href="/accounts/login/"' in page.content.decode()
    assert "_auth_user_id" not in browser.session


def test_the_app_page_wins_over_the_admins_logged_out_page(fresh_site, settings):
    assert "django.contrib.admin" in settings.INSTALLED_APPS  # which ships registration/logged_out.html
    browser = BrowserClient()
    page = browser.post("/accounts/logout/")
    assert "oauth_server/logged_out.html" in [t.name for t in page.templates]


# --- oauth_server.W010 -----------------------------------------------------------------------------
def test_fresh_site_with_the_apps_accounts_urls_is_clean(fresh_site):
    assert check_login_url() == []


def test_a_login_url_that_is_no_url_of_the_site_is_reported():
    with override_settings(ROOT_URLCONF=NO_LOGIN, LOGIN_URL="/accounts/login/"):
        messages = check_login_url()
    assert ids(messages) == ["oauth_server.W010"]
    assert "404" in messages[0].msg
    assert 'include("oauth_server.accounts_urls")' in messages[0].hint


def test_an_unknown_url_name_is_reported():
    with override_settings(ROOT_URLCONF=FRESH_SITE, LOGIN_URL="signin"):
        assert ids(check_login_url()) == ["oauth_server.W010"]


def test_djangos_login_view_without_its_template_is_reported():
    """The README/integration.md failure: django.contrib.auth.urls on a site with no login template."""
    with override_settings(
        ROOT_URLCONF=AUTH_URLS, TEMPLATES=APP_TEMPLATES_ONLY, LOGIN_URL="/accounts/login/"
    ):
        messages = check_login_url()
    assert ids(messages) == ["oauth_server.W010"]
    assert "registration/login.html" in messages[0].msg
    assert "500" in messages[0].msg


def test_djangos_login_view_with_its_template_is_fine():
    """The test settings' TEMPLATES DIRS hold the demo's registration/login.html."""
    with override_settings(ROOT_URLCONF=AUTH_URLS, LOGIN_URL="/accounts/login/"):
        assert check_login_url() == []


def test_a_template_name_given_to_as_view_is_the_one_checked():
    missing = auth_views.LoginView.as_view(template_name="site/no-such-login.html")
    present = auth_views.LoginView.as_view(template_name="oauth_server/login.html")
    for view, expected in ((missing, ["oauth_server.W010"]), (present, [])):
        urlconf = URLConf(path("signin/", view, name="signin"), OAUTH)
        with override_settings(ROOT_URLCONF=urlconf, TEMPLATES=APP_TEMPLATES_ONLY, LOGIN_URL="signin"):
            assert ids(check_login_url()) == expected


@pytest.mark.parametrize(
    "login_url",
    ["/accounts/login/", "login", reverse_lazy("login")],
)
def test_the_apps_login_view_wrapped_or_not_by_path_or_name_is_fine(login_url):
    for view in (LoginView.as_view(), page_headers(LoginView.as_view())):
        urlconf = URLConf(path("accounts/login/", view, name="login"), OAUTH)
        with override_settings(ROOT_URLCONF=urlconf, TEMPLATES=APP_TEMPLATES_ONLY, LOGIN_URL=login_url):
            assert check_login_url() == []


def test_a_login_view_of_the_sites_own_is_trusted():
    def sso_login(request):  # allauth, an SSO bridge...
        raise AssertionError("not called by the check")

    urlconf = URLConf(path("sso/login/", sso_login), OAUTH)
    with override_settings(ROOT_URLCONF=urlconf, LOGIN_URL="/sso/login/"):
        assert check_login_url() == []


def test_a_login_url_on_another_host_is_not_checked():
    with override_settings(ROOT_URLCONF=NO_LOGIN, LOGIN_URL="https://sso.example.com/login"):
        assert check_login_url() == []


def test_a_script_prefix_is_allowed_for(monkeypatch):
    monkeypatch.setattr("django.urls.get_script_prefix", lambda: "/app/")
    with override_settings(ROOT_URLCONF=FRESH_SITE, LOGIN_URL="/app/accounts/login/"):
        assert check_login_url() == []
