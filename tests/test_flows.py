"""The flows (oauth_server/flows/): each operation does its work, sends its signal and records its
audit event, and a failure part-way leaves nothing behind (no row changed, no signal, no event).

The admin, the management API, the connected-apps page and the revocation endpoint call these
(their own tests drive them through HTTP); here each flow is called directly.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction
from django.test import RequestFactory, TestCase

from oauth_server import signals
from oauth_server.flows import clients as client_flows
from oauth_server.flows import consents as consent_flows
from oauth_server.flows import tokens as token_flows
from oauth_server.models import AccessToken, AuditEvent, Client, Consent, Grant, IDToken, RefreshToken
from tests.factories import (
    AccessTokenFactory,
    ClientFactory,
    ConsentFactory,
    RefreshTokenFactory,
    UserFactory,
)
from tests.helpers import signal_sent

Event = AuditEvent.Event


# A flow's own transaction is the outermost one here, as when a view or a command calls it outside
# any transaction: a failure must roll back what the flow already wrote.
ROLLBACK = pytest.mark.django_db(transaction=True)


class Boom(Exception):
    pass


def commit():
    """Run the on-commit callbacks (signals, audit events) at the end of the block."""
    return TestCase.captureOnCommitCallbacks(execute=True)


def events(name: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event=name).order_by("pk"))


def fail_after(monkeypatch, module, name: str) -> None:
    """Make ``module.name`` do its work and then raise, as a failure late in the flow would."""
    real = getattr(module, name)

    def failing(*args, **kwargs):
        real(*args, **kwargs)
        raise Boom

    monkeypatch.setattr(module, name, failing)


def live(*tokens) -> list[bool]:
    """For each token: is its row still there and, for a refresh token, unrevoked?"""
    states = []
    for token in tokens:
        row = type(token).objects.filter(pk=token.pk).first()
        states.append(row is not None and getattr(row, "revoked", None) is None)
    return states


@pytest.fixture
def grant(db):
    """A user's grant at a client: a rotated family (an old revoked refresh token, the live one) and
    the access tokens minted from it, plus a pending code; and the same user's token elsewhere."""
    user = UserFactory()
    client = ClientFactory(scopes=["files:read"])
    family = uuid.uuid4()
    old = RefreshTokenFactory(user=user, application=client, token_family=family)
    current = RefreshTokenFactory(user=user, application=client, token_family=family)
    from_old = AccessTokenFactory(user=user, application=client, source_refresh_token=old)
    RefreshToken.objects.filter(pk=old.pk).update(revoked=old.created)
    code = Grant.objects.create(
        user=user,
        application=client,
        code="x" * 64,
        expires=current.access_token.expires,
        redirect_uri="https://app.example.com/cb",
    )
    elsewhere = RefreshTokenFactory(user=user)
    return {
        "user": user,
        "client": client,
        "family": family,
        "current": current,
        "from_old": from_old,
        "code": code,
        "elsewhere": elsewhere,
    }


# --- clients ------------------------------------------------------------------------------------------------
def test_rotate_secret_replaces_the_secret_sends_the_signal_and_audits(db):
    client = ClientFactory()
    old = client.raw_secret
    with signal_sent(signals.client_secret_rotated) as sent:
        new = client_flows.rotate_secret(client)
    stored = Client.objects.get(pk=client.pk)
    assert stored.check_secret(new) and not stored.check_secret(old)
    assert new not in stored.client_secret
    assert [s["client"] for s in sent] == [client]
    [event] = events(Event.CLIENT_SECRET_ROTATED)
    assert event.application == client and event.details == {}
    assert not events(Event.CLIENT_UPDATED)  # a rotation is its own event


def test_a_rotation_rolled_back_keeps_the_old_secret_and_sends_nothing(db):
    client = ClientFactory()
    with signal_sent(signals.client_secret_rotated) as sent, pytest.raises(Boom), transaction.atomic():
        client_flows.rotate_secret(client)
        raise Boom
    assert Client.objects.get(pk=client.pk).check_secret(client.raw_secret)
    assert sent == [] and not events(Event.CLIENT_SECRET_ROTATED)


def test_secret_rotated_announces_only_on_commit(db):
    client = ClientFactory()
    with signal_sent(signals.client_secret_rotated) as sent, pytest.raises(Boom), transaction.atomic():
        client_flows.secret_rotated(client)
        raise Boom
    assert sent == []
    with signal_sent(signals.client_secret_rotated) as sent:
        client_flows.secret_rotated(client)
    assert [s["client"] for s in sent] == [client]


def test_disabling_clients_revokes_their_tokens_and_audits_each_change(grant):
    client, other = grant["client"], ClientFactory()
    already = ClientFactory(is_enabled=False)
    untouched = RefreshTokenFactory(application=ClientFactory())
    with commit():
        changed = client_flows.set_enabled(
            Client.objects.filter(pk__in=[client.pk, other.pk, already.pk]), False
        )
    assert sorted(c.pk for c in changed) == sorted([client.pk, other.pk])
    assert not Client.objects.filter(pk__in=[client.pk, other.pk], is_enabled=True).exists()
    assert live(grant["current"], grant["from_old"]) == [False, False]
    assert not Grant.objects.filter(pk=grant["code"].pk).exists()
    assert live(untouched, grant["elsewhere"]) == [True, True]
    updated = events(Event.CLIENT_UPDATED)
    assert sorted(e.application_id for e in updated) == sorted([client.pk, other.pk])
    assert all(e.details == {"changed": ["is_enabled"]} for e in updated)


def test_enabling_clients_revokes_nothing(grant):
    client = grant["client"]
    Client.objects.filter(pk=client.pk).update(is_enabled=False)
    with commit():
        changed = client_flows.set_enabled(Client.objects.filter(pk=client.pk), True)
    assert [c.pk for c in changed] == [client.pk]
    assert Client.objects.get(pk=client.pk).is_enabled
    assert live(grant["current"]) == [True]
    assert [e.details for e in events(Event.CLIENT_UPDATED)] == [{"changed": ["is_enabled"]}]
    with commit():
        assert client_flows.set_enabled(Client.objects.filter(pk=client.pk), True) == []
    assert len(events(Event.CLIENT_UPDATED)) == 1


@ROLLBACK
def test_a_failed_disable_leaves_the_client_enabled_and_its_tokens(grant, monkeypatch):
    fail_after(monkeypatch, client_flows, "revoke_tokens")
    client = grant["client"]
    with commit(), pytest.raises(Boom):
        client_flows.set_enabled(Client.objects.filter(pk=client.pk), False)
    assert Client.objects.get(pk=client.pk).is_enabled
    assert live(grant["current"], grant["from_old"]) == [True, True]
    assert Grant.objects.filter(pk=grant["code"].pk).exists()
    assert not events(Event.CLIENT_UPDATED)


def test_revoke_client_tokens_revokes_and_audits_each_client(grant):
    client, other = grant["client"], ClientFactory()
    other_token = AccessTokenFactory(application=other)
    with commit():
        count = client_flows.revoke_client_tokens([client, other], via="admin")
    # 1 live refresh token marked revoked; 4 access tokens (the family's 3, other's) and 1 code deleted
    assert count == 6
    assert live(grant["current"], grant["from_old"], other_token) == [False, False, False]
    assert live(grant["elsewhere"]) == [True]
    assert Client.objects.filter(pk=client.pk, is_enabled=True).exists()
    revoked = events(Event.TOKEN_REVOKED)
    assert [(e.application_id, e.user_id, e.details) for e in revoked] == [
        (client.pk, None, {"via": "admin", "scope": "client"}),
        (other.pk, None, {"via": "admin", "scope": "client"}),
    ]


@ROLLBACK
def test_a_failed_revoke_client_tokens_revokes_nothing(grant, monkeypatch):
    fail_after(monkeypatch, client_flows, "revoke_tokens")
    with commit(), pytest.raises(Boom):
        client_flows.revoke_client_tokens([grant["client"]], via="admin")
    assert live(grant["current"], grant["from_old"]) == [True, True]
    assert not events(Event.TOKEN_REVOKED)


# --- consents ---------------------------------------------------------------------------------------------
def test_record_consent_adds_scopes_sends_the_signal_and_audits(db):
    user, client = UserFactory(), ClientFactory(scopes=["files:read", "files:write"])
    ConsentFactory(user=user, client=client, scope="files:read")
    with signal_sent(signals.consent_granted) as sent:
        consent = consent_flows.record_consent(user, client, ["files:write"])
    assert Consent.objects.get(pk=consent.pk).scopes == ["files:read", "files:write"]
    assert [(s["user"], s["client"], s["scopes"]) for s in sent] == [(user, client, ["files:write"])]
    [event] = events(Event.CONSENT_GRANTED)
    assert (event.user, event.application, event.details) == (user, client, {"scopes": ["files:write"]})


def test_revoke_consent_revokes_the_clients_tokens_for_that_user_once(grant):
    user, client = grant["user"], grant["client"]
    consent = ConsentFactory(user=user, client=client, scope="files:read")
    someone_else = RefreshTokenFactory(application=client)
    with signal_sent(signals.consent_revoked) as sent:
        assert consent_flows.revoke_consent(consent) is True
    consent.refresh_from_db()
    assert not consent.is_active
    assert live(grant["current"], grant["from_old"]) == [False, False]
    assert not Grant.objects.filter(pk=grant["code"].pk).exists()
    assert live(grant["elsewhere"], someone_else) == [True, True]
    assert [s["consent"] for s in sent] == [consent]
    [event] = events(Event.CONSENT_REVOKED)
    assert (event.user, event.application, event.details) == (user, client, {"scopes": ["files:read"]})

    with signal_sent(signals.consent_revoked) as sent:
        assert consent_flows.revoke_consent(consent) is False
    assert sent == [] and len(events(Event.CONSENT_REVOKED)) == 1


@ROLLBACK
def test_a_failed_consent_revocation_keeps_the_consent_and_the_tokens(grant, monkeypatch):
    fail_after(monkeypatch, consent_flows, "revoke_tokens")
    consent = ConsentFactory(user=grant["user"], client=grant["client"], scope="files:read")
    with signal_sent(signals.consent_revoked) as sent, pytest.raises(Boom):
        consent_flows.revoke_consent(consent)
    assert Consent.objects.get(pk=consent.pk).is_active
    assert live(grant["current"], grant["from_old"]) == [True, True]
    assert sent == [] and not events(Event.CONSENT_REVOKED)


# --- tokens -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
def test_revoke_token_ends_the_whole_grant(grant, kind):
    current = grant["current"]
    token = current.access_token if kind == "access_token" else current
    with commit():
        token_flows.revoke_token(token, via="api")
    assert live(current, current.access_token, grant["from_old"]) == [False, False, False]
    assert live(grant["elsewhere"]) == [True]
    [event] = events(Event.TOKEN_REVOKED)
    assert (event.user, event.application) == (grant["user"], grant["client"])
    assert event.details == {"via": "api", "token_type": kind}


def test_revoke_token_names_the_family_when_asked(grant):
    with commit():
        token_flows.revoke_token(grant["current"], via="revocation_endpoint", name_family=True)
    [event] = events(Event.TOKEN_REVOKED)
    assert event.details == {
        "via": "revocation_endpoint",
        "token_type": "refresh_token",
        "token_family": str(grant["family"]),
    }


def test_revoke_token_of_an_access_token_without_refresh_token_revokes_only_it(db):
    token, other = AccessTokenFactory(), AccessTokenFactory()
    with commit():
        token_flows.revoke_token(token, via="api", name_family=True)
    assert live(token, other) == [False, True]
    [event] = events(Event.TOKEN_REVOKED)
    assert event.details == {"via": "api", "token_type": "access_token"}  # no family: none was revoked


@ROLLBACK
def test_a_failed_token_revocation_revokes_nothing(grant, monkeypatch):
    fail_after(monkeypatch, token_flows, "revoke_token_grant")
    with commit(), pytest.raises(Boom):
        token_flows.revoke_token(grant["current"], via="api")
    assert live(grant["current"], grant["current"].access_token, grant["from_old"]) == [True, True, True]
    assert not events(Event.TOKEN_REVOKED)


def test_revoke_presented_token_revokes_only_the_callers_own_token(grant):
    current, stranger = grant["current"], ClientFactory()
    request = RequestFactory().post("/oauth/revoke/")
    request.client = stranger
    with commit():
        token_flows.revoke_presented_token(current.raw_token, "refresh_token", request)
    assert live(current) == [True] and not events(Event.TOKEN_REVOKED)

    request.client = grant["client"]
    with commit():
        token_flows.revoke_presented_token(current.raw_token, "access_token", request)  # a wrong hint
    assert live(current, grant["from_old"]) == [False, False]
    [event] = events(Event.TOKEN_REVOKED)
    assert event.details["via"] == "revocation_endpoint" and event.details["token_family"] == str(
        grant["family"]
    )


def test_revoke_user_tokens_everywhere_or_at_one_client(grant):
    user, client = grant["user"], grant["client"]
    with commit():
        count = token_flows.revoke_user_tokens(user, client=client, via="connected_apps")
    assert count == 5  # the live refresh token, the family's 3 access tokens, the code
    assert live(grant["current"], grant["elsewhere"]) == [False, True]
    [event] = events(Event.TOKEN_REVOKED)
    assert (event.user, event.application, event.details) == (user, client, {"via": "connected_apps"})

    with commit():
        count = token_flows.revoke_user_tokens(user, via="api")
    assert count == 2 and live(grant["elsewhere"]) == [False]
    event = events(Event.TOKEN_REVOKED)[-1]
    assert (event.user, event.application) == (user, None)
    assert event.details == {"via": "api", "scope": "all", "count": 2}


@ROLLBACK
def test_a_failed_user_token_revocation_revokes_nothing(grant, monkeypatch):
    fail_after(monkeypatch, token_flows, "revoke_tokens")
    with commit(), pytest.raises(Boom):
        token_flows.revoke_user_tokens(grant["user"], via="api")
    assert live(grant["current"], grant["elsewhere"]) == [True, True]
    assert not events(Event.TOKEN_REVOKED)


def test_admin_revocations_of_single_credentials(grant):
    current = grant["current"]
    id_token = IDToken.objects.create(
        user=grant["user"],
        application=grant["client"],
        jti=uuid.uuid4(),
        expires=current.access_token.expires,
    )
    with_id = AccessTokenFactory(user=grant["user"], application=grant["client"], id_token=id_token)
    with commit():
        token_flows.revoke_access_token(current.access_token, via="admin")
    # The token and its bound refresh token; the family's other access token is left alone.
    assert live(current, current.access_token, grant["from_old"]) == [False, False, True]
    with commit():
        token_flows.revoke_refresh_token(grant["elsewhere"], via="admin")
        token_flows.revoke_id_token(id_token, via="admin")
    assert live(grant["elsewhere"], grant["elsewhere"].access_token, with_id) == [False, False, False]
    assert not IDToken.objects.filter(pk=id_token.pk).exists()
    assert [e.details for e in events(Event.TOKEN_REVOKED)] == [
        {"via": "admin", "token_type": "access_token"},
        {"via": "admin", "token_type": "refresh_token"},
        {"via": "admin", "token_type": "id_token"},
    ]


@ROLLBACK
def test_a_failed_admin_revocation_revokes_nothing(grant, monkeypatch):
    monkeypatch.setattr(RefreshToken, "revoke", lambda self: (AccessToken.objects.all().delete(), 1 / 0))
    with commit(), pytest.raises(ZeroDivisionError):
        token_flows.revoke_refresh_token(grant["current"], via="admin")
    assert AccessToken.objects.filter(pk=grant["current"].access_token_id).exists()
    assert not events(Event.TOKEN_REVOKED)


def test_names_consent_py_documented_still_resolve():
    """Sites written against docs/consent.md before the flows layer keep working."""
    from oauth_server import consent, revocation
    from oauth_server.flows import consents

    assert consent.revoke_consent is consents.revoke_consent
    assert consent.record_consent is consents.record_consent
    assert callable(consent.revoke_tokens) and callable(consent.revoke_all_tokens)
    assert revocation.revoke_tokens is not None
