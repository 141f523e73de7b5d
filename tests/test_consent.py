"""Remembered consent, prompt handling and revocation (issue: "Consent")."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from oauth_server import consent, signals
from oauth_server.flows.consents import revoke_consent
from oauth_server.models import AccessToken, Consent, RefreshToken
from tests.factories import ClientFactory, ConsentFactory, UserFactory, pkce_pair
from tests.helpers import approve, authorize_params, basic_auth, exchange_code, get_authorize, get_code, query


def _params(client, **extra):
    return authorize_params(client, challenge=pkce_pair()[1], **extra)


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def test_approval_is_remembered_and_next_request_skips_the_page(logged_in, user, web_client):
    approve(logged_in, _params(web_client, scope="files:read"))
    stored = Consent.objects.get(user=user, client=web_client)
    assert stored.scopes == ["files:read"] and stored.is_active

    response = get_authorize(logged_in, _params(web_client, scope="files:read"))
    assert response.status_code == 302
    assert "code" in query(response["Location"])


def test_only_new_scopes_are_asked_for(logged_in, user, web_client):
    ConsentFactory(user=user, client=web_client, scope="files:read")
    response = get_authorize(logged_in, _params(web_client, scope="files:read files:write"))
    assert response.status_code == 200
    assert [n for n, _ in response.context["new_scopes"]] == ["files:write"]
    assert [n for n, _ in response.context["granted_scopes"]] == ["files:read"]


def test_consent_accumulates_as_a_union(logged_in, user, web_client):
    approve(logged_in, _params(web_client, scope="files:read"))
    approve(logged_in, _params(web_client, scope="files:write"))
    assert sorted(Consent.objects.get(user=user, client=web_client).scopes) == ["files:read", "files:write"]
    response = get_authorize(logged_in, _params(web_client, scope="files:write files:read"))
    assert response.status_code == 302


def test_denying_remembers_nothing(logged_in, user, web_client):
    approve(logged_in, _params(web_client, scope="files:read"), allow=False)
    assert not Consent.objects.filter(user=user).exists()


def test_consent_is_per_user(client, web_client):
    alice, bob = UserFactory(), UserFactory()
    ConsentFactory(user=alice, client=web_client, scope="files:read")
    client.force_login(bob)
    assert get_authorize(client, _params(web_client, scope="files:read")).status_code == 200


def test_consent_is_per_client(logged_in, user, web_client):
    other = ClientFactory(scopes=["files:read"])
    ConsentFactory(user=user, client=web_client, scope="files:read")
    assert get_authorize(logged_in, _params(other, scope="files:read")).status_code == 200


def test_prompt_consent_asks_again(logged_in, user, web_client):
    ConsentFactory(user=user, client=web_client, scope="files:read")
    response = get_authorize(logged_in, _params(web_client, scope="files:read", prompt="consent"))
    assert response.status_code == 200


def test_prompt_none_with_consent_returns_a_code(logged_in, user, web_client):
    ConsentFactory(user=user, client=web_client, scope="files:read")
    response = get_authorize(logged_in, _params(web_client, scope="files:read", prompt="none"))
    assert response.status_code == 302
    assert "code" in query(response["Location"])


def test_prompt_none_without_consent_is_consent_required(logged_in, web_client):
    response = get_authorize(logged_in, _params(web_client, scope="files:read", prompt="none"))
    back = query(response["Location"])
    assert back["error"] == "consent_required"
    assert back["state"] == "xyz-state" and back["iss"]
    assert response["Location"].startswith(web_client.redirect_uri_list[0])


def test_prompt_none_with_partial_consent_is_consent_required(logged_in, user, web_client):
    ConsentFactory(user=user, client=web_client, scope="files:read")
    response = get_authorize(logged_in, _params(web_client, scope="files:read files:write", prompt="none"))
    assert query(response["Location"])["error"] == "consent_required"


def test_prompt_none_combined_with_another_value_is_invalid_request(logged_in, user, web_client):
    ConsentFactory(user=user, client=web_client, scope="files:read")
    response = get_authorize(logged_in, _params(web_client, scope="files:read", prompt="none consent"))
    assert query(response["Location"])["error"] == "invalid_request"


def test_prompt_none_anonymous_is_login_required(client, web_client):
    response = get_authorize(client, _params(web_client, scope="files:read", prompt="none"))
    assert query(response["Location"])["error"] == "login_required"


def test_prompt_login_sends_the_user_to_login_without_looping(logged_in, user, web_client):
    ConsentFactory(user=user, client=web_client, scope="files:read")
    response = get_authorize(logged_in, _params(web_client, scope="files:read", prompt="login"))
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/accounts/login/"
    assert "prompt" not in query(query(response["Location"])["next"])


def test_skip_consent_client_never_shows_the_page(logged_in, user, db):
    trusted = ClientFactory(skip_consent=True, scopes=["files:read"])
    response = get_authorize(logged_in, _params(trusted, scope="files:read"))
    assert response.status_code == 302 and "code" in query(response["Location"])
    response = get_authorize(logged_in, _params(trusted, scope="files:read", prompt="none"))
    assert "code" in query(response["Location"])


def test_skip_consent_client_still_asks_on_prompt_consent(logged_in, db):
    trusted = ClientFactory(skip_consent=True, scopes=["files:read"])
    assert get_authorize(logged_in, _params(trusted, scope="files:read", prompt="consent")).status_code == 200


def test_revoked_consent_is_asked_again(logged_in, user, web_client):
    ConsentFactory(user=user, client=web_client, scope="files:read", revoked_at=timezone.now())
    assert get_authorize(logged_in, _params(web_client, scope="files:read")).status_code == 200


def test_regranting_after_revocation_starts_from_the_new_approval(logged_in, user, web_client):
    ConsentFactory(user=user, client=web_client, scope="files:read files:write", revoked_at=timezone.now())
    approve(logged_in, _params(web_client, scope="files:read"))
    stored = Consent.objects.get(user=user, client=web_client)
    assert stored.is_active and stored.scopes == ["files:read"]


def test_revoke_consent_revokes_the_clients_tokens_for_that_user(logged_in, user, web_client):
    code, verifier = get_code(logged_in, web_client, scope="files:read")
    body = exchange_code(logged_in, web_client, code, verifier).json()
    other_user_token = AccessToken.objects.create(
        user=UserFactory(), application=web_client, token="other", expires=timezone.now() + timedelta(hours=1)
    )
    stored = Consent.objects.get(user=user, client=web_client)

    revoke_consent(stored)

    stored.refresh_from_db()
    assert stored.revoked_at is not None
    assert not AccessToken.objects.filter(user=user, application=web_client).exists()
    assert RefreshToken.objects.get(user=user, application=web_client).revoked is not None
    assert AccessToken.objects.filter(pk=other_user_token.pk).exists()
    refresh = logged_in.post(
        "/oauth/token/",
        {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.raw_secret),
    )
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


def test_signals_fire_on_grant_and_revoke(logged_in, user, web_client, django_capture_on_commit_callbacks):
    seen: list[str] = []

    def on_granted(sender, user, client, scopes, **kwargs):
        seen.append(f"granted:{client.pk}:{' '.join(scopes)}")

    def on_revoked(sender, consent, **kwargs):
        seen.append(f"revoked:{consent.client_id}")

    signals.consent_granted.connect(on_granted)
    signals.consent_revoked.connect(on_revoked)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            approve(logged_in, _params(web_client, scope="files:read"))
        with django_capture_on_commit_callbacks(execute=True):
            revoke_consent(Consent.objects.get(user=user))
    finally:
        signals.consent_granted.disconnect(on_granted)
        signals.consent_revoked.disconnect(on_revoked)
    assert seen == [f"granted:{web_client.pk}:files:read", f"revoked:{web_client.pk}"]


def test_decide_is_pure_policy(user, web_client):
    ConsentFactory(user=user, client=web_client, scope="files:read")
    decision = consent.decide(user, web_client, ["files:read", "files:write", "files:read"])
    assert decision.outcome is consent.Outcome.ASK
    assert decision.granted == ("files:read",) and decision.new == ("files:write",)
    assert consent.decide(user, web_client, ["files:read"]).outcome is consent.Outcome.APPROVE
    assert (
        consent.decide(user, web_client, ["files:write"], ["none"]).outcome
        is consent.Outcome.CONSENT_REQUIRED
    )


def test_revoking_consent_kills_codes_not_yet_exchanged(logged_in, user, web_client):
    code, verifier = get_code(logged_in, web_client, scope="files:read")
    revoke_consent(Consent.objects.get(user=user, client=web_client))
    response = exchange_code(logged_in, web_client, code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
