"""Step-up (incremental) consent through the real authorization and token endpoints: a client that
holds some scopes asks for more; the page asks for the new ones only and lists the old ones as
secondary; approving remembers the union; tokens carry what was requested, within that union."""

from __future__ import annotations

import pytest

from oauth_server.models import Consent
from tests.factories import ClientFactory, ConsentFactory, pkce_pair
from tests.helpers import (
    AUTHORIZE_URL,
    authorize_params,
    consent_form_data,
    exchange_code,
    get_authorize,
    query,
)


@pytest.fixture
def app(db):
    return ClientFactory(scopes=["files:read", "files:write", "reports:read"])


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


def request_scopes(browser, app, scope, *, allow=True, prompt=None):
    """GET the authorization endpoint; approve the page if shown. Returns (page or None, token body)."""
    verifier, challenge = pkce_pair()
    params = authorize_params(app, challenge=challenge, scope=scope, prompt=prompt)
    page = get_authorize(browser, params)
    response = page
    if page.status_code == 200:
        data = consent_form_data(page)
        if allow:
            data["allow"] = "true"
        response = browser.post(AUTHORIZE_URL, data)
    else:
        page = None
    assert response.status_code == 302, response
    back = query(response["Location"])
    if "code" not in back:
        return page, back
    tokens = exchange_code(browser, app, back["code"], verifier)
    assert tokens.status_code == 200, tokens.content
    return page, tokens.json()


def names(pairs):
    return [name for name, _description in pairs]


def test_step_up_asks_only_for_the_new_scope_and_tokens_carry_the_request(browser, user, app):
    page, tokens = request_scopes(browser, app, "files:read")
    assert names(page.context["new_scopes"]) == ["files:read"]
    assert tokens["scope"] == "files:read"

    page, tokens = request_scopes(browser, app, "files:read files:write")
    assert names(page.context["new_scopes"]) == ["files:write"]
    assert names(page.context["granted_scopes"]) == ["files:read"]
    html = page.content.decode()
    assert html.index('data-scope="files:write"') < html.index('data-scope="files:read"')
    assert 'class="oas-scopes oas-scopes-granted"' in html
    assert sorted(tokens["scope"].split()) == ["files:read", "files:write"]
    assert Consent.objects.get(user=user, client=app).scopes == ["files:read", "files:write"]


def test_asking_for_the_new_scope_alone_lists_what_it_already_has(browser, user, app):
    request_scopes(browser, app, "files:read")
    page, tokens = request_scopes(browser, app, "files:write")
    assert names(page.context["new_scopes"]) == ["files:write"]
    # Not requested this time, but approved before: shown as secondary, not in the token.
    assert names(page.context["granted_scopes"]) == ["files:read"]
    assert tokens["scope"] == "files:write"
    assert sorted(Consent.objects.get(user=user, client=app).scopes) == ["files:read", "files:write"]


def test_after_step_up_any_part_of_the_union_is_silent(browser, app):
    request_scopes(browser, app, "files:read")
    request_scopes(browser, app, "files:write")
    for scope in ("files:read", "files:write", "files:read files:write"):
        page, tokens = request_scopes(browser, app, scope)
        assert page is None
        assert sorted(tokens["scope"].split()) == sorted(scope.split())


def test_a_scope_outside_the_union_still_asks(browser, app):
    request_scopes(browser, app, "files:read files:write")
    page, tokens = request_scopes(browser, app, "files:read reports:read")
    assert names(page.context["new_scopes"]) == ["reports:read"]
    assert sorted(tokens["scope"].split()) == ["files:read", "reports:read"]


def test_denying_a_step_up_keeps_the_earlier_consent(browser, user, app):
    request_scopes(browser, app, "files:read")
    page, back = request_scopes(browser, app, "files:read files:write", allow=False)
    assert back["error"] == "access_denied"
    assert Consent.objects.get(user=user, client=app).scopes == ["files:read"]
    page, tokens = request_scopes(browser, app, "files:read")
    assert page is None and tokens["scope"] == "files:read"


def test_step_up_with_prompt_none_is_consent_required(browser, user, app):
    ConsentFactory(user=user, client=app, scope="files:read")
    page, back = request_scopes(browser, app, "files:read files:write", prompt="none")
    assert back["error"] == "consent_required"
    assert Consent.objects.get(user=user, client=app).scopes == ["files:read"]


def test_a_tampered_form_cannot_widen_the_step_up(browser, user, app):
    """The posted scope is validated again: a scope the client may not have is refused."""
    ConsentFactory(user=user, client=app, scope="files:read")
    verifier, challenge = pkce_pair()
    page = get_authorize(browser, authorize_params(app, challenge=challenge, scope="files:read files:write"))
    data = {**consent_form_data(page), "allow": "true", "scope": "files:read files:write openid oauth:admin"}
    response = browser.post(AUTHORIZE_URL, data)
    assert "code" not in query(response.get("Location", ""))
    assert Consent.objects.get(user=user, client=app).scopes == ["files:read"]
