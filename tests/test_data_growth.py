"""Flat cost as data grows: the indexes the hot paths and the purges use exist (on both databases),
migration 0022 builds its indexes without blocking writes on PostgreSQL, and cleartokens and
purge_audit_events delete in short batches (benchmarks/data_growth.py measures them at scale)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from oauth_server.models import AccessToken, AuditEvent, Grant, IDToken, RefreshToken
from tests.factories import AccessTokenFactory, ClientFactory, UserFactory

# (table, leading columns of an index, why): each lookup at scale goes through one of these.
HOT_PATH_INDEXES = [
    ("oauth_server_accesstoken", ["token_checksum"], "token lookup: introspection, revocation, userinfo"),
    ("oauth_server_accesstoken", ["jti"], "JWT access tokens: introspection and revocation by jti"),
    ("oauth_server_accesstoken", ["expires"], "cleartokens: expired access tokens"),
    ("oauth_server_accesstoken", ["user_id", "application_id"], "revocation of a user's grant at a client"),
    ("oauth_server_accesstoken", ["exchanged_from_id"], "revocation cascade to exchanged tokens"),
    ("oauth_server_accesstoken", ["grant_id"], "code replay: tokens issued from a code"),
    ("oauth_server_refreshtoken", ["token_checksum"], "refresh token lookup"),
    ("oauth_server_refreshtoken", ["token_family"], "reuse detection revokes the family"),
    ("oauth_server_refreshtoken", ["access_token_id"], "cleartokens: access tokens without refresh token"),
    ("oauth_server_refreshtoken", ["revoked"], "cleartokens: revoked refresh tokens (0022)"),
    ("oauth_server_refreshtoken", ["user_id", "application_id"], "revocation of a user's grant at a client"),
    ("oauth_server_idtoken", ["expires"], "cleartokens: expired ID tokens (0022)"),
    ("oauth_server_grant", ["code"], "code exchange"),
    ("oauth_server_grant", ["expires"], "cleartokens: expired codes and tombstones"),
    ("oauth_server_auditevent", ["created"], "audit purge and the admin's listing"),
    ("oauth_server_consent", ["user_id", "client_id"], "remembered consent"),
    ("oauth_server_client", ["client_id"], "client lookup on every request"),
]


def indexes(table: str) -> list[list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return [c["columns"] for c in constraints.values() if c["index"] or c["unique"] or c["primary_key"]]


@pytest.mark.parametrize(("table", "columns", "why"), HOT_PATH_INDEXES)
def test_each_hot_lookup_has_an_index(db, table, columns, why):
    assert any(found[: len(columns)] == columns for found in indexes(table)), (
        f"{table}({', '.join(columns)}) has no index: {why}"
    )


def test_migration_0022_builds_its_indexes_concurrently_on_postgresql(transactional_db):
    from importlib import import_module

    migration = import_module("oauth_server.migrations.0022_performance_indexes").Migration
    assert migration.atomic is False  # CREATE INDEX CONCURRENTLY cannot run in a transaction
    out = io.StringIO()
    call_command("sqlmigrate", "oauth_server", "0022", stdout=out)
    sql = out.getvalue()
    assert sql.count("CREATE INDEX") == 2
    if connection.vendor == "postgresql":
        assert sql.count("CREATE INDEX CONCURRENTLY") == 2
        assert "BEGIN" not in sql
    else:
        assert "CONCURRENTLY" not in sql


# --- purge_audit_events ---------------------------------------------------------------------------------
def old_events(n: int, days: int = 100) -> None:
    when = timezone.now() - timedelta(days=days)
    AuditEvent.objects.bulk_create(
        AuditEvent(event="token_issued", client_id=f"c{i}", created=when + timedelta(seconds=i))
        for i in range(n)
    )


def test_purge_audit_events_deletes_in_keyset_batches(db, monkeypatch):
    old_events(7)
    old_events(2, days=1)  # within the 90-day retention: kept
    pauses = []
    monkeypatch.setattr("oauth_server.management.commands.purge_audit_events.time.sleep", pauses.append)
    with CaptureQueriesContext(connection) as queries:
        call_command("purge_audit_events", "--batch-size", "3", "--pause", "0.25", stdout=io.StringIO())
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    selects = [q["sql"] for q in queries if q["sql"].startswith("SELECT")]
    assert len(deletes) == 3  # 3 + 3 + 1
    assert len(selects) == 3  # the last, short batch ends it: no empty SELECT
    # Each batch after the first starts after the last id deleted, not at the start of the index.
    assert all('"id" >' in sql for sql in selects[1:]) and '"id" >' not in selects[0]
    assert pauses == [0.25, 0.25]  # between batches, not before the first
    assert AuditEvent.objects.count() == 2


def test_purge_audit_events_with_an_exact_multiple_of_the_batch(db):
    old_events(6)
    with CaptureQueriesContext(connection) as queries:
        call_command("purge_audit_events", "--batch-size", "3", stdout=(out := io.StringIO()))
    assert sum(q["sql"].startswith("DELETE") for q in queries) == 2
    assert "Deleted 6 audit event(s)" in out.getvalue()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("args", [["--batch-size", "0"], ["--pause", "-1"]])
def test_purge_audit_events_refuses_bad_batch_options(db, args):
    old_events(1)
    with pytest.raises(CommandError):
        call_command("purge_audit_events", *args, stdout=io.StringIO())
    assert AuditEvent.objects.count() == 1


# --- cleartokens (DOT's clear_expired) on this app's models --------------------------------------------
@pytest.fixture
def small_batches(settings, monkeypatch):
    """DOT batches by OAUTH2_PROVIDER["CLEAR_EXPIRED_TOKENS_BATCH_SIZE"] and pauses
    CLEAR_EXPIRED_TOKENS_BATCH_INTERVAL seconds between batches."""
    settings.OAUTH2_PROVIDER = {
        **getattr(settings, "OAUTH2_PROVIDER", {}),
        "CLEAR_EXPIRED_TOKENS_BATCH_SIZE": 2,
        "CLEAR_EXPIRED_TOKENS_BATCH_INTERVAL": 0.5,
    }
    pauses: list[float] = []
    monkeypatch.setattr("oauth2_provider.models.time.sleep", pauses.append)
    return pauses


def test_cleartokens_deletes_expired_tokens_in_batches(db, small_batches):
    user, client = UserFactory(), ClientFactory()
    past = timezone.now() - timedelta(hours=2)
    expired = [AccessTokenFactory(user=user, application=client, expires=past) for _ in range(5)]
    live = AccessTokenFactory(user=user, application=client)
    # An exchanged token (CASCADE) and a refresh token (SET_NULL) hanging on expired ones.
    child = AccessTokenFactory(user=user, application=client, exchanged_from=expired[0])
    with CaptureQueriesContext(connection) as queries:
        call_command("cleartokens", stderr=io.StringIO())
    token_deletes = [q for q in queries if q["sql"].startswith('DELETE FROM "oauth_server_accesstoken"')]
    assert len(token_deletes) == 3  # 2 + 2 + 1: one statement per batch, each its own transaction
    assert list(AccessToken.objects.all()) == [live]
    assert not AccessToken.objects.filter(pk=child.pk).exists()
    assert small_batches.count(0.5) >= 3


def test_cleartokens_keeps_what_refresh_tokens_still_need_and_clears_id_tokens_and_codes(db, small_batches):
    from tests.factories import RefreshTokenFactory

    past = timezone.now() - timedelta(hours=2)
    refresh = RefreshTokenFactory(access_token__expires=past)
    id_tokens = [
        IDToken.objects.create(user=refresh.user, application=refresh.application, expires=past)
        for _ in range(3)
    ]
    Grant.objects.create(
        user=refresh.user,
        application=refresh.application,
        code="c" * 64,
        expires=past,
        redirect_uri="https://example.com/cb",
        code_challenge="x" * 43,
        code_challenge_method="S256",
    )
    call_command("cleartokens", stderr=io.StringIO())
    assert RefreshToken.objects.filter(pk=refresh.pk).exists()
    assert AccessToken.objects.filter(pk=refresh.access_token_id).exists()  # bound to a refresh token
    assert not IDToken.objects.filter(pk__in=[t.pk for t in id_tokens]).exists()
    assert not Grant.objects.exists()
