"""Token exchange (RFC 8693): delegation, chains, downscoping, targets, lifetime, revocation cascades,
hostile subject tokens, client confusion, impersonation, the audit trail and the statement count."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.test import Client as BrowserClient
from django.utils import timezone
from freezegun import freeze_time
from jwcrypto import jwk, jwt

from oauth_server import keys
from oauth_server.grants import registry
from oauth_server.grants.token_exchange import ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, NAME, REFRESH_TOKEN_TYPE
from oauth_server.models import AccessToken, AuditEvent, Consent, GrantType
from oauth_server.resource import validate_access_token
from oauth_server.resource.claims import AccessTokenClaims
from tests.factories import (
    AccessTokenFactory,
    ClientFactory,
    MachineClientFactory,
    PublicClientFactory,
    UserFactory,
)
from tests.helpers import REVOKE_URL, basic_auth, exchange_code, get_code, token_request

Event = AuditEvent.Event
REPORTS_API = "https://reports.example.com/"
FILES_API = "https://files.example.com/"
BILLING_API = "https://billing.example.com/"
INTROSPECT_URL = "/oauth/introspect/"
CONNECTED_APPS_URL = "/oauth/connected-apps/"


# --- fixtures and helpers ------------------------------------------------------------------------------
@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run on-commit callbacks (success audit events are saved then) at the end of the block."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def web(db):
    """The user's app: its tokens are for the reports API."""
    return ClientFactory(name="Web", scopes=["files:read", "files:write", "openid"], audiences=[REPORTS_API])


@pytest.fixture
def reports(db):
    """The reports service: serves the reports API, may exchange for the files API."""
    return ClientFactory(
        name="Reports",
        grant_types=[GrantType.TOKEN_EXCHANGE],
        redirect_uris="",
        scopes=["files:read", "files:write"],
        audiences=[FILES_API],
        resource_identifiers=[REPORTS_API],
    )


@pytest.fixture
def files(db):
    """The files service: serves the files API, may exchange onwards for the billing API."""
    return ClientFactory(
        name="Files",
        grant_types=[GrantType.TOKEN_EXCHANGE],
        redirect_uris="",
        scopes=["files:read"],
        audiences=[BILLING_API],
        resource_identifiers=[FILES_API],
    )


def user_tokens(browser, client, scope: str = "files:read files:write") -> dict:
    code, verifier = get_code(browser, client, scope=scope)
    response = exchange_code(browser, client, code, verifier)
    assert response.status_code == 200, response.content
    return response.json()


def exchange(browser, actor, subject_token: str | None, *, secret: str | None = None, **extra):
    data = {"grant_type": NAME, "subject_token_type": ACCESS_TOKEN_TYPE, **extra}
    if subject_token is not None:
        data["subject_token"] = subject_token
    return token_request(
        browser, data, client=actor, secret=secret if secret is not None else actor.raw_secret
    )


def claims_of(token: str) -> dict:
    return keys.verify(token, typ="at+jwt")


def error_of(response, status: int = 400) -> str:
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) >= {"error", "error_description"}, body
    return body["error"]


def introspect(browser, caller, token: str) -> dict:
    auth = basic_auth(caller.client_id, caller.raw_secret)
    return browser.post(INTROSPECT_URL, {"token": token}, HTTP_AUTHORIZATION=auth).json()


def only(event: str, outcome: str = "success") -> AuditEvent:
    [found] = AuditEvent.objects.filter(event=event, outcome=outcome)
    return found


# --- the grant is registered ---------------------------------------------------------------------------
def test_registered_advertised_and_for_confidential_clients_only(client, db):
    assert NAME in registry.token_grant_types()
    metadata = client.get("/oauth/.well-known/oauth-authorization-server").json()
    assert NAME in metadata["grant_types_supported"]
    with pytest.raises(Exception, match="confidential"):
        PublicClientFactory(grant_types=[GrantType.TOKEN_EXCHANGE], redirect_uris="").full_clean()


# --- delegation ----------------------------------------------------------------------------------------
def test_delegation_keeps_the_user_and_names_the_actor(logged_in, user, web, reports, commit):
    subject = user_tokens(logged_in, web)
    with commit():
        response = exchange(
            logged_in, reports, subject["access_token"], resource=FILES_API, scope="files:read"
        )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "files:read"
    assert "refresh_token" not in body and "id_token" not in body
    assert response["Cache-Control"] == "no-store"
    new, old = claims_of(body["access_token"]), claims_of(subject["access_token"])
    assert new["sub"] == old["sub"]
    assert new["client_id"] == reports.client_id
    assert new["aud"] == FILES_API
    assert new["act"] == {"sub": reports.client_id}
    row = AccessToken.objects.get(jti=new["jti"])
    assert row.user == user and row.application == reports and row.act == {"sub": reports.client_id}
    assert row.exchanged_from.jti == old["jti"]

    event = only(Event.TOKEN_EXCHANGED)
    assert event.user == user and event.client_id == reports.client_id
    assert event.details["subject_client_id"] == web.client_id
    assert event.details["actor"] == reports.client_id
    assert event.details["audience"] == [FILES_API]
    assert event.details["scopes"] == ["files:read"]
    assert event.details["jti"] == new["jti"] and event.details["impersonation"] is False
    assert not AuditEvent.objects.filter(event=Event.TOKEN_ISSUED, client_id=reports.client_id).exists()

    # Introspection tells the files API who acts for whom.
    api = MachineClientFactory(resource_identifiers=[FILES_API])
    assert introspect(logged_in, api, body["access_token"])["act"] == {"sub": reports.client_id}


def test_the_resource_kit_exposes_the_actor(logged_in, web, reports, settings):
    subject = user_tokens(logged_in, web)
    token = exchange(logged_in, reports, subject["access_token"], audience=FILES_API).json()["access_token"]
    settings.OAUTH_RESOURCE_SERVER = {
        "ISSUER": "http://testserver/oauth",
        "AUDIENCE": FILES_API,
        "JWKS_SOURCE": "local",
    }
    claims = validate_access_token(token)
    assert claims.actor == reports.client_id
    assert claims.actor_chain == (reports.client_id,)
    assert claims.is_delegated and claims.act == {"sub": reports.client_id}
    assert claims.sub == claims_of(subject["access_token"])["sub"]


def test_claims_without_act_or_with_a_malformed_one():
    def make(**extra):
        return AccessTokenClaims(
            sub="u", client_id="c", scopes=frozenset(), aud=(), exp=0, iss="i", jti=None, claims=extra
        )

    assert make().actor is None and make().actor_chain == () and not make().is_delegated
    assert make(act="x").act is None
    assert make(act={"sub": 3}).actor is None
    chain = make(act={"sub": "b", "act": {"sub": "a", "act": {"nope": 1}}})
    assert chain.actor == "b" and chain.actor_chain == ("b", "a")


def test_a_chain_of_two_exchanges_nests_act(logged_in, web, reports, files):
    subject = user_tokens(logged_in, web)
    first = exchange(logged_in, reports, subject["access_token"], resource=FILES_API).json()
    second = exchange(logged_in, files, first["access_token"], resource=BILLING_API)

    assert second.status_code == 200, second.content
    claims = claims_of(second.json()["access_token"])
    assert claims["act"] == {"sub": files.client_id, "act": {"sub": reports.client_id}}
    assert claims["sub"] == claims_of(subject["access_token"])["sub"]
    assert claims["aud"] == BILLING_API and claims["scope"] == "files:read"  # files may only read
    assert AccessToken.objects.get(jti=claims["jti"]).act == claims["act"]


def test_the_delegation_chain_is_bounded(logged_in, web):
    """A client exchanging its own exchanged tokens in a loop cannot nest act without end."""
    from oauth_server.grants.token_exchange import MAX_ACT_DEPTH

    web.grant_types = [*web.grant_types, GrantType.TOKEN_EXCHANGE]
    web.save()
    token = user_tokens(logged_in, web)["access_token"]
    for depth in range(1, MAX_ACT_DEPTH + 1):
        response = exchange(logged_in, web, token)
        assert response.status_code == 200, (depth, response.content)
        token = response.json()["access_token"]
    assert error_of(exchange(logged_in, web, token)) == "invalid_request"
    assert AuditEvent.objects.filter(details__reason="delegation_chain_too_long").exists()


def test_an_opaque_subject_token_and_an_opaque_issued_token(logged_in, web, reports, files):
    web.access_token_format = reports.access_token_format = "opaque"
    web.save()
    reports.save()
    subject = user_tokens(logged_in, web)
    first = exchange(logged_in, reports, subject["access_token"], resource=FILES_API)
    assert first.status_code == 200, first.content
    assert first.json()["access_token"].count(".") == 0
    # The act of the opaque token is kept on its row: the next exchange nests it.
    second = exchange(logged_in, files, first.json()["access_token"], resource=BILLING_API)
    assert claims_of(second.json()["access_token"])["act"]["act"] == {"sub": reports.client_id}


def test_an_actor_token_names_its_subject_as_the_actor(logged_in, web, reports):
    reports.grant_types = [GrantType.TOKEN_EXCHANGE, GrantType.CLIENT_CREDENTIALS]
    reports.save()
    service = token_request(
        logged_in, {"grant_type": "client_credentials"}, client=reports, secret=reports.raw_secret
    ).json()
    subject = user_tokens(logged_in, web)
    response = exchange(
        logged_in,
        reports,
        subject["access_token"],
        actor_token=service["access_token"],
        actor_token_type=ACCESS_TOKEN_TYPE,
    )
    assert response.status_code == 200, response.content
    assert claims_of(response.json()["access_token"])["act"] == {"sub": reports.client_id}

    # Another client's token cannot be presented as the actor.
    stranger = MachineClientFactory(scopes=["files:read"])
    foreign = token_request(
        logged_in, {"grant_type": "client_credentials"}, client=stranger, secret=stranger.raw_secret
    ).json()
    refused = exchange(
        logged_in,
        reports,
        subject["access_token"],
        actor_token=foreign["access_token"],
        actor_token_type=ACCESS_TOKEN_TYPE,
    )
    assert error_of(refused) == "invalid_request"


@pytest.mark.parametrize(
    "extra",
    [
        {"actor_token": "abc"},  # no actor_token_type
        {"actor_token_type": ACCESS_TOKEN_TYPE},  # no actor_token
        {"actor_token": "abc", "actor_token_type": ID_TOKEN_TYPE},
        {"requested_token_type": REFRESH_TOKEN_TYPE},
        {"requested_token_type": "urn:ietf:params:oauth:token-type:saml2"},
    ],
)
def test_malformed_actor_and_requested_types_are_invalid_request(logged_in, web, reports, extra):
    subject = user_tokens(logged_in, web)
    assert error_of(exchange(logged_in, reports, subject["access_token"], **extra)) == "invalid_request"
    assert not AccessToken.objects.filter(application=reports).exists()


def test_missing_parameters_are_invalid_request(logged_in, web, reports):
    subject = user_tokens(logged_in, web)
    assert error_of(exchange(logged_in, reports, None)) == "invalid_request"
    data = {"grant_type": NAME, "subject_token": subject["access_token"]}  # no subject_token_type
    response = token_request(logged_in, data, client=reports, secret=reports.raw_secret)
    assert error_of(response) == "invalid_request"
    body = f"grant_type={NAME}&subject_token=a&subject_token=b&subject_token_type={ACCESS_TOKEN_TYPE}"
    duplicated = logged_in.post(
        "/oauth/token/",
        body,
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=basic_auth(reports.client_id, reports.raw_secret),
    )
    assert error_of(duplicated) == "invalid_request"


# --- scopes and targets --------------------------------------------------------------------------------
def test_scopes_can_only_shrink(logged_in, web, reports):
    subject = user_tokens(logged_in, web, scope="files:read")
    ok = exchange(logged_in, reports, subject["access_token"], scope="files:read")
    assert ok.json()["scope"] == "files:read"
    widened = exchange(logged_in, reports, subject["access_token"], scope="files:read files:write")
    assert error_of(widened) == "invalid_scope"
    assert "files:write" in widened.json()["error_description"]


def test_default_scopes_are_the_subjects_within_the_actors(logged_in, web, reports):
    subject = user_tokens(logged_in, web, scope="openid files:read files:write")
    body = exchange(logged_in, reports, subject["access_token"]).json()
    assert body["scope"] == "files:read files:write"  # openid: not allowed for reports


def test_scope_not_allowed_for_the_actor_is_refused(logged_in, web, files, reports):
    subject = user_tokens(logged_in, web, scope="files:read files:write")
    first = exchange(logged_in, reports, subject["access_token"]).json()
    assert error_of(exchange(logged_in, files, first["access_token"], scope="files:write")) == "invalid_scope"
    assert error_of(exchange(logged_in, reports, subject["access_token"], scope="")) == "invalid_scope"


@pytest.mark.parametrize("parameter", ["resource", "audience"])
def test_a_target_not_registered_for_the_actor_is_invalid_target(logged_in, web, reports, parameter):
    subject = user_tokens(logged_in, web)
    response = exchange(logged_in, reports, subject["access_token"], **{parameter: BILLING_API})
    assert error_of(response) == "invalid_target"
    assert not AccessToken.objects.filter(application=reports).exists()


def test_a_target_registered_only_for_another_client_is_refused(logged_in, web, reports, files):
    subject = user_tokens(logged_in, web)
    # BILLING_API is registered for files, not for reports.
    assert error_of(exchange(logged_in, reports, subject["access_token"], resource=BILLING_API)) == (
        "invalid_target"
    )
    assert (
        error_of(exchange(logged_in, reports, subject["access_token"], audience="files")) == "invalid_target"
    )


def test_an_actor_without_audiences_is_invalid_target(logged_in, web, reports):
    reports.audiences = []
    reports.save()
    subject = user_tokens(logged_in, web)
    assert error_of(exchange(logged_in, reports, subject["access_token"])) == "invalid_target"


# --- lifetime ------------------------------------------------------------------------------------------
def test_lifetime_never_exceeds_the_subject_tokens(logged_in, web, reports):
    reports.access_token_lifetime = 36000
    reports.save()
    start = timezone.now().replace(microsecond=0)
    with freeze_time(start):
        subject = user_tokens(logged_in, web)  # the site default: 3600 s
    with freeze_time(start + timedelta(seconds=3000)):
        body = exchange(logged_in, reports, subject["access_token"]).json()
    assert body["expires_in"] == 600
    new, old = claims_of(body["access_token"]), claims_of(subject["access_token"])
    assert new["exp"] <= old["exp"]
    row = AccessToken.objects.get(jti=new["jti"])
    assert row.expires <= AccessToken.objects.get(jti=old["jti"]).expires


def test_a_shorter_actor_lifetime_wins(logged_in, web, reports):
    reports.access_token_lifetime = 60
    reports.save()
    subject = user_tokens(logged_in, web)
    assert exchange(logged_in, reports, subject["access_token"]).json()["expires_in"] == 60


# --- revocation cascades -------------------------------------------------------------------------------
def _exchanged(browser, web, reports, files):
    subject = user_tokens(browser, web)
    first = exchange(browser, reports, subject["access_token"]).json()
    second = exchange(browser, files, first["access_token"], resource=BILLING_API).json()
    api = MachineClientFactory(resource_identifiers=[FILES_API, BILLING_API])
    assert introspect(browser, api, first["access_token"])["active"]
    assert introspect(browser, api, second["access_token"])["active"]
    return subject, first, second, api


def _all_inactive(browser, api, *tokens) -> bool:
    return not any(introspect(browser, api, t["access_token"])["active"] for t in tokens)


def test_revoking_the_original_refresh_token_revokes_the_exchanged_tokens(logged_in, web, reports, files):
    subject, first, second, api = _exchanged(logged_in, web, reports, files)
    response = logged_in.post(
        REVOKE_URL,
        {"token": subject["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(web.client_id, web.raw_secret),
    )
    assert response.status_code == 200
    assert _all_inactive(logged_in, api, first, second)
    assert not AccessToken.objects.filter(application__in=[reports, files]).exists()


def test_connected_apps_revoke_revokes_the_exchanged_tokens(logged_in, web, reports, files):
    subject, first, second, api = _exchanged(logged_in, web, reports, files)
    response = logged_in.post(f"{CONNECTED_APPS_URL}{web.client_id}/revoke/")
    assert response.status_code == 303
    assert _all_inactive(logged_in, api, first, second)


def test_consent_revocation_revokes_the_exchanged_tokens(logged_in, user, web, reports, files):
    from oauth_server.flows.consents import revoke_consent

    subject, first, second, api = _exchanged(logged_in, web, reports, files)
    assert revoke_consent(Consent.objects.get(user=user, client=web))
    assert _all_inactive(logged_in, api, first, second)


def test_revoking_the_exchanged_token_leaves_the_subject_token(logged_in, web, reports, files):
    subject, first, second, api = _exchanged(logged_in, web, reports, files)
    auth = basic_auth(reports.client_id, reports.raw_secret)
    assert (
        logged_in.post(REVOKE_URL, {"token": first["access_token"]}, HTTP_AUTHORIZATION=auth).status_code
        == 200
    )
    assert _all_inactive(logged_in, api, first, second)  # the chain below it goes too
    assert introspect(logged_in, web, subject["access_token"])["active"]


def test_refreshing_retires_the_subject_token_and_what_was_exchanged_from_it(logged_in, web, reports, files):
    subject, first, second, api = _exchanged(logged_in, web, reports, files)
    data = {"grant_type": "refresh_token", "refresh_token": subject["refresh_token"]}
    assert token_request(logged_in, data, client=web, secret=web.raw_secret).status_code == 200
    assert _all_inactive(logged_in, api, first, second)


# --- hostile subject tokens ----------------------------------------------------------------------------
def _refused(browser, reports, token: str, reason: str) -> None:
    assert error_of(exchange(browser, reports, token)) == "invalid_request"
    assert AuditEvent.objects.filter(
        event=Event.TOKEN_EXCHANGED, outcome="failure", details__reason=reason
    ).exists()
    assert not AccessToken.objects.filter(application=reports).exists()


def test_an_expired_subject_token_is_refused(logged_in, web, reports):
    start = timezone.now()
    with freeze_time(start):
        subject = user_tokens(logged_in, web)
    with freeze_time(start + timedelta(seconds=3601)):
        _refused(logged_in, reports, subject["access_token"], "invalid_subject_token")


def test_a_revoked_subject_token_is_refused(logged_in, web, reports):
    subject = user_tokens(logged_in, web)
    auth = basic_auth(web.client_id, web.raw_secret)
    logged_in.post(REVOKE_URL, {"token": subject["access_token"]}, HTTP_AUTHORIZATION=auth)
    _refused(logged_in, reports, subject["access_token"], "invalid_subject_token")


def test_a_foreign_jwt_is_refused(logged_in, user, web, reports):
    genuine = claims_of(user_tokens(logged_in, web)["access_token"])
    key = jwk.JWK.generate(kty="RSA", size=2048, kid=keys.published_keys().popitem()[0])
    forged = jwt.JWT(header={"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, claims=genuine)
    forged.make_signed_token(key)
    _refused(logged_in, reports, forged.serialize(), "invalid_subject_token")


def test_an_id_token_is_refused_as_an_access_token_and_as_its_own_type(logged_in, web, reports):
    body = user_tokens(logged_in, web, scope="openid files:read")
    _refused(logged_in, reports, body["id_token"], "invalid_subject_token")
    response = exchange(logged_in, reports, body["id_token"], subject_token_type=ID_TOKEN_TYPE)
    assert error_of(response) == "invalid_request"
    assert "subject_token_type" in response.json()["error_description"]


@pytest.mark.parametrize("garbage", ["x", "a.b.c", "\x00", "é" * 50, "x" * 10000, " "])
def test_garbage_is_refused(logged_in, reports, garbage):
    assert error_of(exchange(logged_in, reports, garbage)) == "invalid_request"


def test_a_refresh_token_is_refused(logged_in, web, reports):
    subject = user_tokens(logged_in, web)
    _refused(logged_in, reports, subject["refresh_token"], "invalid_subject_token")
    response = exchange(logged_in, reports, subject["refresh_token"], subject_token_type=REFRESH_TOKEN_TYPE)
    assert error_of(response) == "invalid_request"


def test_a_token_of_a_disabled_client_is_refused(logged_in, web, reports):
    subject = user_tokens(logged_in, web)
    web.is_enabled = False
    web.save()
    assert error_of(exchange(logged_in, reports, subject["access_token"])) == "invalid_request"


def test_a_token_of_an_inactive_user_is_refused(db, web, reports):
    user = UserFactory()
    token = AccessTokenFactory(user=user, application=web, audience=REPORTS_API)
    # An update without signals: the deactivation receiver would revoke the token; the exchange
    # must refuse it on its own.
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert AccessToken.objects.filter(pk=token.pk).exists()
    _refused(BrowserClient(), reports, token.raw_token, "invalid_subject_token")


def test_a_client_credentials_token_is_not_a_subject(db, reports):
    token = AccessTokenFactory(user=None, application=MachineClientFactory(), audience=REPORTS_API)
    _refused(BrowserClient(), reports, token.raw_token, "subject_not_a_user")


# --- confusion -----------------------------------------------------------------------------------------
def test_a_token_not_meant_for_the_actor_is_refused(logged_in, web, reports):
    """The user's token is for the reports API: a client that neither holds it nor serves that API
    (say, one that stole it) cannot trade it for a token of its own."""
    thief = ClientFactory(
        grant_types=[GrantType.TOKEN_EXCHANGE], redirect_uris="", scopes=["files:read"], audiences=[FILES_API]
    )
    subject = user_tokens(logged_in, web)
    _refused(logged_in, thief, subject["access_token"], "subject_token_not_for_client")


def test_the_client_holding_the_token_may_exchange_it(logged_in, web):
    web.grant_types = [*web.grant_types, GrantType.TOKEN_EXCHANGE]
    web.audiences = [REPORTS_API, FILES_API]
    web.save()
    subject = user_tokens(logged_in, web)
    response = exchange(logged_in, web, subject["access_token"], resource=FILES_API, scope="files:read")
    assert response.status_code == 200, response.content
    assert claims_of(response.json()["access_token"])["act"] == {"sub": web.client_id}


def test_a_client_without_the_grant_is_unauthorized_client(logged_in, web, reports):
    reports.grant_types = [GrantType.CLIENT_CREDENTIALS]
    reports.save()
    subject = user_tokens(logged_in, web)
    assert error_of(exchange(logged_in, reports, subject["access_token"])) == "unauthorized_client"


def test_a_public_client_cannot_exchange(logged_in, web):
    public = PublicClientFactory(scopes=["files:read"], audiences=[FILES_API])
    subject = user_tokens(logged_in, web)
    data = {
        "grant_type": NAME,
        "client_id": public.client_id,
        "subject_token": subject["access_token"],
        "subject_token_type": ACCESS_TOKEN_TYPE,
    }
    response = logged_in.post("/oauth/token/", data)
    assert error_of(response, 401) == "invalid_client"


def test_a_wrong_secret_is_invalid_client(logged_in, web, reports):
    subject = user_tokens(logged_in, web)
    assert error_of(exchange(logged_in, reports, subject["access_token"], secret="wrong" * 10), 401) == (
        "invalid_client"
    )


# --- impersonation -------------------------------------------------------------------------------------
def test_impersonation_only_for_an_allowed_client(logged_in, user, web, reports, commit):
    subject = user_tokens(logged_in, web)
    assert "act" in claims_of(exchange(logged_in, reports, subject["access_token"]).json()["access_token"])

    reports.token_exchange_impersonation = True
    reports.save()
    with commit():
        body = exchange(logged_in, reports, subject["access_token"]).json()
    claims = claims_of(body["access_token"])
    assert "act" not in claims
    assert claims["sub"] == claims_of(subject["access_token"])["sub"]
    row = AccessToken.objects.get(jti=claims["jti"])
    assert row.act is None and row.exchanged_from is not None  # still revoked with the subject
    event = AuditEvent.objects.get(event=Event.TOKEN_EXCHANGED, details__jti=claims["jti"])
    assert event.details["impersonation"] is True and "actor" not in event.details


def test_the_impersonation_flag_defaults_off(db):
    assert ClientFactory().token_exchange_impersonation is False


# --- statements ----------------------------------------------------------------------------------------
# An exchange in TokenView's transaction: BEGIN, the acting client with its scopes (one SELECT), the
# subject token (with its user, client and subject identifier, one join), the AccessToken INSERT and
# the audit INSERT (no savepoint), COMMIT. Pinned so added statements are seen.
EXCHANGE_QUERIES = 6


@pytest.mark.django_db(transaction=True)
def test_exchange_statement_count(web, reports, user, django_assert_num_queries):
    browser = BrowserClient()
    browser.force_login(user)
    subject = user_tokens(browser, web)
    exchange(browser, reports, subject["access_token"])  # warm: nothing is created on first use
    with django_assert_num_queries(EXCHANGE_QUERIES) as context:
        response = exchange(browser, reports, subject["access_token"])
    assert response.status_code == 200, response.content
    inserts = [q["sql"].split()[2] for q in context.captured_queries if q["sql"].startswith("INSERT")]
    assert inserts == ['"oauth_server_accesstoken"', '"oauth_server_auditevent"']


# --- the command, the API and the admin expose the flag ------------------------------------------------
def test_create_oauth_client_command(db, capsys):
    from django.core.management import call_command

    from oauth_server.models import Client, Scope

    Scope.objects.create(name="files:read", description="Read")
    call_command(
        "create_oauth_client",
        "--name",
        "Reports",
        "--type",
        "confidential",
        "--grant-type",
        NAME,
        "--audience",
        FILES_API,
        "--scope",
        "files:read",
        "--token-exchange-impersonation",
    )
    client = Client.objects.get(name="Reports")
    assert client.grant_types == [NAME] and client.audiences == [FILES_API]
    assert client.token_exchange_impersonation is True


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_an_unsigned_jwt_with_a_real_jti_is_refused(logged_in, web, reports):
    genuine = claims_of(user_tokens(logged_in, web)["access_token"])
    unsigned = f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{_b64(genuine)}."
    _refused(logged_in, reports, unsigned, "invalid_subject_token")


def test_nothing_is_written_for_a_refused_exchange(logged_in, web, reports):
    subject = user_tokens(logged_in, web)
    before = AccessToken.objects.count()
    exchange(logged_in, reports, subject["access_token"], scope="files:read admin")
    assert AccessToken.objects.count() == before


# --- rate limits: the token endpoint's ---------------------------------------------------------------
def test_exchanges_count_against_the_token_endpoints_rate_limit(logged_in, web, reports, settings):
    subject = user_tokens(logged_in, web)
    settings.OAUTH_SERVER = {"RATE_LIMITS": {"token": {"client": "2/m", "ip": None}}}
    for _ in range(2):
        assert exchange(logged_in, reports, subject["access_token"]).status_code == 200
    limited = exchange(logged_in, reports, subject["access_token"])
    assert limited.status_code == 429, limited.content
    assert limited.json()["error"] and "Retry-After" in limited


def test_refusals_do_not_tell_a_live_token_from_garbage(logged_in, web):
    """A client holding someone's live token must not learn from the exchange that it is live."""
    thief = ClientFactory(
        grant_types=[GrantType.TOKEN_EXCHANGE], redirect_uris="", scopes=["files:read"], audiences=[FILES_API]
    )
    live = user_tokens(logged_in, web)["access_token"]
    answers = {exchange(logged_in, thief, token).json()["error_description"] for token in (live, "garbage")}
    assert len(answers) == 1
