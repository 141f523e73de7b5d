"""Discovery and JWKS from the cache (oauth_server/published.py): no SQL once warm, invalidated by
what changes them (keys, scopes, settings), at once and on commit; ETag, 304 and Cache-Control."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.utils import timezone

from oauth_server import keys, published
from oauth_server.models import Scope, SigningKey
from tests.factories import ScopeFactory

OIDC = "/oauth/.well-known/openid-configuration"
RFC8414 = "/oauth/.well-known/oauth-authorization-server"
ROOT_RFC8414 = "/.well-known/oauth-authorization-server/oauth"
ROOT_OIDC = "/.well-known/openid-configuration/oauth"
JWKS = "/oauth/.well-known/jwks.json"
DOCUMENTS = [OIDC, RFC8414, ROOT_RFC8414, ROOT_OIDC, JWKS]


def kids(client) -> list[str]:
    return [k["kid"] for k in client.get(JWKS).json()["keys"]]


@pytest.mark.parametrize("url", DOCUMENTS)
def test_a_warm_document_costs_no_query(client, db, django_assert_num_queries, url):
    keys.ensure_keys()  # the first keys (their creation invalidates what was being built)
    first = client.get(url)
    assert first.status_code == 200
    with django_assert_num_queries(0):
        again = client.get(url)
    assert again.status_code == 200
    assert again.content == first.content


def test_the_cold_documents_do_query(client, db, django_assert_max_num_queries, settings):
    """The zero above is the cache's doing: with caching off, every request reads the database."""
    client.get(JWKS)  # creates the first keys
    settings.OAUTH_SERVER = {"DISCOVERY_CACHE_SECONDS": 0}
    for url in (OIDC, JWKS):
        client.get(url)
        with django_assert_max_num_queries(5) as captured:
            client.get(url)
        assert len(captured) >= 1, url


def test_a_rotation_is_served_at_once_and_cached_again(client, db, django_assert_num_queries):
    before = kids(client)
    assert len(before) == 2  # active, next
    rotation = keys.rotate()
    after = kids(client)
    assert after[0] == rotation.activated.kid == before[1]
    assert rotation.next.kid in after and before[0] in after  # the retired key stays published
    with django_assert_num_queries(0):
        assert kids(client) == after


def test_a_new_signing_algorithm_reaches_the_metadata(client, db):
    keys.new_key("ES256", state="active")
    assert client.get(OIDC).json()["id_token_signing_alg_values_supported"] == ["ES256"]
    keys.new_key("EdDSA", state="next")
    assert client.get(OIDC).json()["id_token_signing_alg_values_supported"] == ["ES256", "EdDSA"]


def test_purged_keys_leave_the_cached_jwks(client, db):
    keys.ensure_keys()
    keys.rotate()
    keys.rotate()
    published_kids = kids(client)
    assert len(published_kids) == 4
    SigningKey.objects.filter(state=SigningKey.State.RETIRED).update(retire_after=timezone.now())
    # update() sends no signal, but purge_expired() deletes through the ORM, which does.
    assert keys.purge_expired() == 2
    assert kids(client) == published_kids[:2]


def test_a_retired_key_leaves_when_its_publication_ends_without_any_signal(client, db):
    """The cached JWKS never outlives the first retire_after it contains."""
    keys.ensure_keys()
    keys.rotate()
    retired = SigningKey.objects.get(state=SigningKey.State.RETIRED)
    # Written with update(): no signal, so only the document's own lifetime can drop the key.
    SigningKey.objects.filter(pk=retired.pk).update(retire_after=timezone.now() + timedelta(seconds=1.5))
    caches["default"].clear()
    assert retired.kid in kids(client)
    time.sleep(2)
    assert retired.kid not in kids(client)


def test_scopes_added_or_deleted_reach_the_metadata(client, db):
    assert "files:archive" not in client.get(OIDC).json()["scopes_supported"]
    scope = ScopeFactory(name="files:archive")
    assert "files:archive" in client.get(OIDC).json()["scopes_supported"]
    scope.delete()
    assert "files:archive" not in client.get(OIDC).json()["scopes_supported"]


def test_a_setting_change_reaches_the_metadata(client, db, settings):
    assert client.get(OIDC).json()["require_pushed_authorization_requests"] is False
    settings.OAUTH_SERVER = {"REQUIRE_PUSHED_AUTHORIZATION_REQUESTS": True}
    assert client.get(OIDC).json()["require_pushed_authorization_requests"] is True


def test_the_version_changes_again_when_the_rotation_commits(client, db, django_capture_on_commit_callbacks):
    """Another node may read the database between the rotation's writes and its commit, and cache
    the old keys under the version the writes set: the commit replaces that version too."""
    old = kids(client)
    with django_capture_on_commit_callbacks(execute=True):
        keys.rotate()
        # What another node does meanwhile: it still sees the committed (old) state and caches it.
        stale = published._serialize({"keys": [{"kid": kid} for kid in old]}, published.version())
        caches["default"].set(f"{published.KEY_PREFIX}:jwks:", stale, 60)
        assert kids(client) == old
    assert kids(client) != old


def test_each_host_gets_its_own_document_when_the_issuer_is_not_pinned(client, db):
    """Unpinned, the URLs follow the request's Host: a copy cached for one host is never served to
    another (the issuer would be wrong, or an attacker's)."""
    one = client.get(OIDC, HTTP_HOST="a.example").json()
    other = client.get(OIDC, HTTP_HOST="b.example").json()
    assert one["issuer"] == "http://a.example/oauth"
    assert other["issuer"] == "http://b.example/oauth"
    assert client.get(OIDC, HTTP_HOST="a.example", secure=True).json()["issuer"] == "https://a.example/oauth"


@pytest.mark.parametrize("url", DOCUMENTS)
def test_etag_and_not_modified(client, db, url):
    first = client.get(url)
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10
    again = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert again["Cache-Control"] == first["Cache-Control"]
    assert again["Access-Control-Allow-Origin"] == "*"
    assert client.get(url, HTTP_IF_NONE_MATCH='"something-else"').status_code == 200


def test_the_etag_changes_with_the_keys(client, db):
    etag = client.get(JWKS)["ETag"]
    keys.rotate()
    response = client.get(JWKS, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200
    assert response["ETag"] != etag


def test_cache_control_of_each_document(client, db, settings):
    settings.OAUTH_SERVER = {"JWKS_MAX_AGE": 120, "DISCOVERY_MAX_AGE": 900}
    assert client.get(JWKS)["Cache-Control"] == "public, max-age=120"
    for url in (OIDC, RFC8414, ROOT_RFC8414):
        assert client.get(url)["Cache-Control"] == "public, max-age=900"
    assert client.get(JWKS)["Content-Type"] == "application/json"


def test_the_jwks_cache_time_is_shorter_than_a_next_keys_head_start(db, settings):
    """The relation docs/key-rotation.md states: a next key is published for at least
    publication_delay() before a rotation should make it sign; the defaults give 6 minutes."""
    assert keys.publication_delay() == 60 + 300
    settings.OAUTH_SERVER = {"JWKS_MAX_AGE": 30, "DISCOVERY_CACHE_SECONDS": 10}
    assert keys.publication_delay() == 40


def test_scope_rows_written_by_the_orm_invalidate(db):
    version = published.version()
    Scope.objects.create(name="x:y", description="x")
    assert published.version() != version


class BrokenCache:
    """A cache whose server is down: every call raises, as RedisCache does without Redis."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ConnectionError("cache server down")

        return fail


@pytest.mark.parametrize("url", [OIDC, JWKS])
def test_a_broken_cache_serves_from_the_database(client, db, monkeypatch, caplog, url):
    monkeypatch.setattr(published, "_cache", BrokenCache)
    response = client.get(url)
    assert response.status_code == 200
    assert response.json()
    assert "failed" in caplog.text


def test_a_broken_cache_does_not_undo_a_rotation(db, monkeypatch, caplog, django_capture_on_commit_callbacks):
    keys.ensure_keys()
    monkeypatch.setattr(published, "_cache", BrokenCache)
    with django_capture_on_commit_callbacks(execute=True):
        rotation = keys.rotate()
    assert SigningKey.objects.get(state=SigningKey.State.ACTIVE).kid == rotation.activated.kid
    assert "Could not invalidate" in caplog.text
