"""The pages end users see: consent, error and sign-in (content, links, i18n, login_hint).

The HTML is parsed, not searched for substrings, where structure matters (which list a scope is in,
which attributes a link has), because a regression there is what a user would notice.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings as django_settings
from django.template.loader import render_to_string
from django.test import override_settings

from oauth_server.models import Grant
from tests.factories import (
    DEFAULT_PASSWORD,
    ClientFactory,
    ConsentFactory,
    ScopeFactory,
    UserFactory,
    pkce_pair,
)
from tests.helpers import AUTHORIZE_URL, authorize_params, get_authorize, query


class Page(HTMLParser):
    """Elements of a rendered page: every start tag with its attributes and the text inside it."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[dict] = []
        self._open: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": {k: v or "" for k, v in attrs}, "text": ""}
        self.elements.append(element)
        if tag not in ("input", "img", "meta", "link", "br", "path"):
            self._open.append(element)

    def handle_endtag(self, tag):
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index]["tag"] == tag:
                del self._open[index:]
                break

    def handle_data(self, data):
        for element in self._open:
            element["text"] += data

    def find(self, tag: str, **attrs: str) -> list[dict]:
        def matches(element):
            if element["tag"] != tag:
                return False
            for name, value in attrs.items():
                actual = element["attrs"].get(name.rstrip("_"))
                if name.endswith("_") and (actual is None or value not in actual.split()):
                    return False  # class_="x": one of the classes
                if not name.endswith("_") and actual != value:
                    return False
            return True

        return [e for e in self.elements if matches(e)]

    def one(self, tag: str, **attrs: str) -> dict:
        found = self.find(tag, **attrs)
        assert len(found) == 1, (tag, attrs, found)
        return found[0]

    def text(self, tag: str, **attrs: str) -> str:
        return " ".join(self.one(tag, **attrs)["text"].split())

    def post_form_fields(self) -> dict[str, str]:
        """What a browser submits from the (only) POST form, without any submit button."""
        return {
            e["attrs"]["name"]: e["attrs"].get("value", "")
            for e in self.find("input")
            if "name" in e["attrs"] and e["attrs"].get("type") == "hidden"
        }


def _params(client, **extra):
    return authorize_params(client, challenge=pkce_pair()[1], **extra)


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def app(db):
    return ClientFactory(
        name="Acme Photos",
        redirect_uris="https://photos.acme.example/oauth/callback",
        scopes=[
            ScopeFactory(name="photos:read", description="See your photos"),
            ScopeFactory(name="photos:write", description="Upload and delete your photos"),
            ScopeFactory(name="albums:read", description=""),
        ],
    )


def consent_page(browser, client, **extra) -> tuple[object, Page]:
    response = get_authorize(browser, _params(client, **extra))
    assert response.status_code == 200, response
    return response, Page(response.content.decode())


# --- consent page --------------------------------------------------------------------------------
def test_consent_page_names_the_client_and_the_user(logged_in, user, app):
    response, page = consent_page(logged_in, app, scope="photos:read")
    assert page.text("h1") == "Acme Photos wants to access your account"
    assert page.text("title") == "Authorize Acme Photos"
    assert page.one("html")["attrs"]["lang"] == "en"
    assert len(page.find("main")) == 1
    account = page.text("div", class_="oas-account")
    assert "Signed in as" in account and user.get_full_name() in account and user.email in account


def test_headings_are_in_order(logged_in, user, app):
    ConsentFactory(user=user, client=app, scope="photos:read")
    _, page = consent_page(logged_in, app, scope="photos:read photos:write")
    levels = [int(e["tag"][1]) for e in page.elements if e["tag"] in ("h1", "h2", "h3", "h4")]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False)), levels


def test_client_without_logo_gets_an_initial_avatar(logged_in, app):
    _, page = consent_page(logged_in, app, scope="photos:read")
    assert not page.find("img")
    avatar = page.one("span", class_="oas-avatar")
    assert avatar["text"].strip() == "A" and avatar["attrs"]["aria-hidden"] == "true"


def test_client_logo_has_alt_text(logged_in, app):
    app.logo_uri = "https://photos.acme.example/logo.png"
    app.save()
    _, page = consent_page(logged_in, app, scope="photos:read")
    logo = page.one("img")
    assert logo["attrs"]["src"] == "https://photos.acme.example/logo.png"
    assert logo["attrs"]["alt"] == "Acme Photos logo"
    assert not page.find("span", class_="oas-avatar")


def test_new_scopes_and_already_granted_scopes_are_listed_separately(logged_in, user, app):
    ConsentFactory(user=user, client=app, scope="photos:read")
    _, page = consent_page(logged_in, app, scope="photos:read photos:write albums:read")

    new = [e for e in page.find("li", class_="oas-scope") if e in _items(page, "oas-scopes-new")]
    granted = [e for e in page.find("li", class_="oas-scope") if e in _items(page, "oas-scopes-granted")]
    assert {e["attrs"]["data-scope"]: " ".join(e["text"].split()) for e in new} == {
        "photos:write": "Upload and delete your photos",
        "albums:read": "albums:read",  # no description: the scope's name, never an empty line
    }
    assert {e["attrs"]["data-scope"]: " ".join(e["text"].split()) for e in granted} == {
        "photos:read": "See your photos"
    }
    assert page.text("h2", id="new-scopes-title") == "This will allow Acme Photos to:"
    assert page.text("h2", id="granted-scopes-title") == "You already allowed it to:"


def _items(page: Page, list_class: str) -> list[dict]:
    """The <li> elements inside the <ul> with that class (elements are in document order)."""
    start = page.elements.index(page.one("ul", class_=list_class))
    items = []
    for element in page.elements[start + 1 :]:
        if element["tag"] == "ul" or element["tag"] in ("section", "form"):
            break
        if element["tag"] == "li":
            items.append(element)
    return items


def test_prompt_consent_with_everything_granted_shows_only_the_granted_list(logged_in, user, app):
    ConsentFactory(user=user, client=app, scope="photos:read")
    _, page = consent_page(logged_in, app, scope="photos:read", prompt="consent")
    assert not page.find("ul", class_="oas-scopes-new")
    assert page.text("h2", id="granted-scopes-title") == "You already allowed Acme Photos to:"


def test_policy_and_terms_links_only_when_set(logged_in, app):
    _, page = consent_page(logged_in, app, scope="photos:read")
    assert not page.find("ul", class_="oas-links")
    assert "Acme Photos has not provided a privacy policy or terms of service." in page.text(
        "section", class_="oas-trust"
    )

    app.client_uri = "https://photos.acme.example/"
    app.policy_uri = "https://photos.acme.example/privacy"
    app.save()
    _, page = consent_page(logged_in, app, scope="photos:read")
    links = {" ".join(a["text"].split()): a["attrs"] for a in page.find("a") if a in _links(page)}
    assert set(links) == {"Home page", "Privacy policy"}  # no terms of service: none registered
    assert links["Privacy policy"]["href"] == "https://photos.acme.example/privacy"
    for attrs in links.values():
        assert attrs["rel"] == "noopener noreferrer"
        assert "target" not in attrs  # opened normally, in the same tab
    assert "has not provided" not in page.text("section", class_="oas-trust")


def _links(page: Page) -> list[dict]:
    start = page.elements.index(page.one("ul", class_="oas-links"))
    return [e for e in page.elements[start:] if e["tag"] == "a"][:3]


def test_client_urls_that_are_not_http_are_never_rendered(logged_in, app):
    Client = type(app)
    Client.objects.filter(pk=app.pk).update(
        logo_uri="javascript:alert(1)", tos_uri="javascript:alert(2)", policy_uri="data:text/html,x"
    )
    response, page = consent_page(logged_in, app, scope="photos:read")
    assert b"javascript:" not in response.content and b"data:text" not in response.content
    assert not page.find("img") and not page.find("ul", class_="oas-links")


def test_redirect_host_is_shown(logged_in, app):
    _, page = consent_page(logged_in, app, scope="photos:read")
    assert page.text("p", class_="oas-redirect") == "You will be redirected to https://photos.acme.example"


def test_form_has_csrf_token_every_hidden_field_and_real_buttons(logged_in, app):
    response, page = consent_page(logged_in, app, scope="photos:read", nonce="n-0S6", login_hint="x")
    form = page.one("form")
    assert form["attrs"]["method"] == "post" and form["attrs"]["action"] == AUTHORIZE_URL
    fields = page.post_form_fields()
    assert fields["csrfmiddlewaretoken"]
    expected = {k: "" if v is None else str(v) for k, v in response.context["form"].initial.items()}
    expected.pop("allow", None)
    assert {k: v for k, v in fields.items() if k != "csrfmiddlewaretoken"} == expected
    buttons = page.find("button")
    assert [(b["attrs"]["type"], b["attrs"].get("name"), " ".join(b["text"].split())) for b in buttons] == [
        ("submit", None, "Deny"),
        ("submit", "allow", "Allow"),
    ]


def test_submitting_the_rendered_form_approves_or_denies(logged_in, app):
    """The fields a browser would post, read from the HTML: Deny sends access_denied, Allow a code."""
    _, page = consent_page(logged_in, app, scope="photos:read")
    denied = logged_in.post(AUTHORIZE_URL, page.post_form_fields())
    assert query(denied["Location"])["error"] == "access_denied"
    assert not Grant.objects.exists()

    _, page = consent_page(logged_in, app, scope="photos:read")
    approved = logged_in.post(AUTHORIZE_URL, {**page.post_form_fields(), "allow": "true"})
    assert approved.status_code == 302 and "code" in query(approved["Location"])
    assert Grant.objects.count() == 1


def test_switch_account_link_comes_back_through_login_keeping_the_session(logged_in, app):
    _, page = consent_page(logged_in, app, scope="photos:read", login_hint="someone-else")
    href = page.one("a", class_="oas-account-switch")["attrs"]["href"]
    link = urlsplit(href)
    params = {k: v[0] for k, v in parse_qs(link.query).items()}
    assert link.path == AUTHORIZE_URL and params["prompt"] == "login"
    assert "login_hint" not in params  # the user just said the hinted account is not theirs

    response = logged_in.get(href)
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == django_settings.LOGIN_URL
    back = query(response["Location"])["next"]
    assert "prompt" not in query(back) and query(back)["client_id"] == app.client_id
    # Replaced only when the other account signs in (tests/test_reauthentication.py).
    assert "_auth_user_id" in logged_in.session


def test_user_provided_text_is_escaped(logged_in, db):
    evil = ClientFactory(name='<script>alert("x")</script>', scopes=["files:read"])
    response = get_authorize(logged_in, _params(evil, scope="files:read"))
    assert b"<script>" not in response.content
    assert b"&lt;script&gt;" in response.content


# --- error page ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("case", "heading", "explanation", "code"),
    [
        (
            "unknown_client",
            "Unknown application",
            "This application is not registered or has been disabled.",
            "invalid_request",
        ),
        (
            "disabled_client",
            "Unknown application",
            "This application is not registered or has been disabled.",
            "invalid_request",
        ),
        (
            "missing_client_id",
            "Unknown application",
            "The sign-in link does not say which application is asking for access.",
            "invalid_request",
        ),
        (
            "redirect_mismatch",
            "This sign-in link is not valid",
            "The application asked to send you back to an address it has not registered.",
            "invalid_request",
        ),
    ],
)
def test_error_page_explains_the_error_in_plain_words(logged_in, app, case, heading, explanation, code):
    params = _params(app, scope="photos:read")
    if case == "unknown_client":
        params["client_id"] = "no-such-client"
    elif case == "disabled_client":
        app.is_enabled = False
        app.save()
    elif case == "missing_client_id":
        del params["client_id"]
    elif case == "redirect_mismatch":
        params["redirect_uri"] = "https://evil.example/steal"
    response = get_authorize(logged_in, params)

    assert response.status_code == 400
    assert "Location" not in response
    page = Page(response.content.decode())
    assert page.text("h1") == heading
    assert explanation in page.text("p", class_="oas-lead")
    assert page.text("code") == code  # the technical code, in the small print
    assert page.find("small")
    assert not page.find("a")  # nowhere to go: the redirect URI is not trusted
    assert b"evil.example" not in response.content
    assert page.text("title") == "Authorization error"


@pytest.mark.parametrize(
    ("error", "description", "heading"),
    [
        ("invalid_client", "Client authentication failed.", "Unknown application"),
        ("unauthorized_client", "", "Sign-in not allowed"),
        ("unsupported_response_type", "", "Sign-in not supported"),
        ("invalid_scope", "", "Access not available"),
        ("server_error", "", "Something went wrong on our side"),
        ("invalid_request", "The consent form was incomplete.", "This link is not valid"),
        ("something_new", "Whatever.", "Sign-in failed"),
    ],
)
def test_error_template_covers_every_error_code(rf, error, description, heading):
    html = render_to_string(
        "oauth_server/error.html", {"error": error, "description": description}, request=rf.get("/")
    )
    page = Page(html)
    assert page.text("h1") == heading
    assert page.text("code") == error
    if description:
        assert description in page.text("p", class_="oas-technical")


def test_tampered_consent_post_gets_the_error_page_with_its_status(logged_in, app):
    _, page = consent_page(logged_in, app, scope="photos:read")
    fields = page.post_form_fields()
    del fields["redirect_uri"]
    response = logged_in.post(AUTHORIZE_URL, {**fields, "allow": "true"})
    assert response.status_code == 400
    assert Page(response.content.decode()).text("h1") == "This link is not valid"


# --- French ---------------------------------------------------------------------------------------
def test_consent_page_in_french(logged_in, db):
    app = ClientFactory(name="Acme Photos", scopes=["openid", "email", "photos:read"])
    response = logged_in.get(
        AUTHORIZE_URL + "?" + urlencode(_params(app, scope="openid email photos:read")),
        HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9",
    )
    page = Page(response.content.decode())
    assert response["Content-Language"] == "fr"
    assert page.one("html")["attrs"]["lang"] == "fr"
    assert page.text("h1") == "Acme Photos souhaite accéder à votre compte"
    assert [" ".join(b["text"].split()) for b in page.find("button")] == ["Refuser", "Autoriser"]
    # The standard scopes' descriptions (created by a migration) are translated too.
    scopes = {
        e["attrs"]["data-scope"]: " ".join(e["text"].split()) for e in page.find("li", class_="oas-scope")
    }
    assert scopes["openid"] == "Vous connecter avec votre compte"
    assert scopes["email"] == "Voir votre adresse e-mail"


def test_error_and_login_pages_in_french(client, db):
    error = client.get(AUTHORIZE_URL + "?response_type=code&client_id=nope", HTTP_ACCEPT_LANGUAGE="fr")
    assert Page(error.content.decode()).text("h1") == "Application inconnue"
    assert "Cette application n’est pas enregistrée ou a été désactivée." in error.content.decode()

    login = Page(client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="fr").content.decode())
    assert login.text("h1") == "Se connecter"
    assert login.text("button") == "Se connecter"


def test_a_language_we_do_not_ship_falls_back_to_english(logged_in, app):
    response = logged_in.get(
        AUTHORIZE_URL + "?" + urlencode(_params(app, scope="photos:read")), HTTP_ACCEPT_LANGUAGE="de"
    )
    assert Page(response.content.decode()).text("h1") == "Acme Photos wants to access your account"


# --- sign-in page and login_hint -------------------------------------------------------------------
def _login_page(client, next_url: str | None):
    url = "/accounts/login/" + (f"?{urlencode({'next': next_url})}" if next_url is not None else "")
    response = client.get(url)
    assert response.status_code == 200
    return response, Page(response.content.decode())


def test_login_hint_prefills_the_username(client, app):
    response = get_authorize(client, _params(app, scope="photos:read", login_hint="grace@example.com"))
    assert urlsplit(response["Location"]).path == "/accounts/login/"
    page_response = client.get(response["Location"])
    page = Page(page_response.content.decode())

    username = page.one("input", name="username")["attrs"]
    assert username["value"] == "grace@example.com"
    assert username["autocomplete"] == "username"
    assert "autofocus" not in username  # the cursor goes where the user still has to type
    password = page.one("input", name="password")["attrs"]
    assert "autofocus" in password and password["autocomplete"] == "current-password"
    assert page.text("p", class_="oas-lead") == "to continue to Acme Photos"
    assert page.one("label", **{"for": "id_username"})


def test_sign_in_with_a_hint_returns_to_the_authorization_request(client, app):
    user = UserFactory(username="grace")
    params = _params(app, scope="photos:read", login_hint="grace")
    next_url = AUTHORIZE_URL + "?" + urlencode(params)
    _, page = _login_page(client, next_url)
    fields = page.post_form_fields()
    assert fields["next"] == next_url
    response = client.post(
        "/accounts/login/?" + urlencode({"next": next_url}),
        {**fields, "username": "grace", "password": DEFAULT_PASSWORD},
    )
    assert response.status_code == 302 and response["Location"] == next_url
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.parametrize(
    "next_url",
    [
        None,  # no next at all
        "https://evil.example/oauth/authorize/?login_hint=victim",  # another site
        "//evil.example/oauth/authorize/?login_hint=victim",  # scheme-relative: another site
    ],
)
def test_absent_or_unsafe_next_is_ignored(client, db, next_url):
    _, page = _login_page(client, next_url)
    username = page.one("input", name="username")["attrs"]
    assert username.get("value", "") == ""
    assert "autofocus" in username
    assert page.post_form_fields()["next"] == ""
    assert not page.find("p", class_="oas-lead")

    UserFactory(username="ada")
    query_string = f"?{urlencode({'next': next_url})}" if next_url else ""
    response = client.post(
        "/accounts/login/" + query_string,
        {"username": "ada", "password": DEFAULT_PASSWORD, "next": next_url or ""},
    )
    assert response.status_code == 302
    assert response["Location"] == django_settings.LOGIN_REDIRECT_URL  # never to evil.example


@pytest.mark.parametrize("hint", ["x" * 300, "ada\x00admin", "  "])
def test_implausible_hints_are_not_prefilled(client, app, hint):
    next_url = AUTHORIZE_URL + "?" + urlencode(_params(app, login_hint=hint))
    _, page = _login_page(client, next_url)
    assert page.one("input", name="username")["attrs"].get("value", "") == ""


def test_disabled_or_unknown_client_is_not_named_on_the_login_page(client, app):
    app.is_enabled = False
    app.save()
    _, page = _login_page(client, AUTHORIZE_URL + "?" + urlencode(_params(app)))
    assert not page.find("p", class_="oas-lead")
    _, page = _login_page(client, AUTHORIZE_URL + "?client_id=nope")
    assert not page.find("p", class_="oas-lead")


def test_failed_sign_in_is_announced(client, db):
    UserFactory(username="ada")
    response = client.post("/accounts/login/", {"username": "ada", "password": "wrong"})
    assert response.status_code == 200
    alert = Page(response.content.decode()).one("div", role="alert")
    assert "Please enter a correct username and password" in " ".join(alert["text"].split())


def test_login_page_cannot_be_framed(client, db):
    response = client.get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_login_view_falls_back_to_the_apps_template(client, app):
    """A site without registration/login.html gets the app's page (the demo site has its own)."""
    demo = client.get("/accounts/login/")
    assert "Demo accounts" in demo.content.decode()
    templates = [{**django_settings.TEMPLATES[0], "DIRS": []}]
    with override_settings(TEMPLATES=templates):
        response = client.get(
            "/accounts/login/?"
            + urlencode({"next": AUTHORIZE_URL + "?" + urlencode(_params(app, login_hint="ada"))})
        )
    assert [t.name for t in response.templates][:2] == ["oauth_server/login.html", "oauth_server/base.html"]
    assert "Demo accounts" not in response.content.decode()
    assert Page(response.content.decode()).one("input", name="username")["attrs"]["value"] == "ada"


def test_a_site_overrides_a_block_by_extending_the_template_it_replaces(logged_in, app, tmp_path):
    """docs/templates.md: <site>/templates/oauth_server/base.html extends the app's and sets the brand."""
    (tmp_path / "oauth_server").mkdir()
    (tmp_path / "oauth_server" / "base.html").write_text(
        '{% extends "oauth_server/base.html" %}{% block brand %}Example Corp{% endblock %}'
    )
    templates = [{**django_settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    with override_settings(TEMPLATES=templates):
        _, page = consent_page(logged_in, app, scope="photos:read")
    assert page.text("span", class_="oas-brand") == "Example Corp"
    assert page.text("h1") == "Acme Photos wants to access your account"
