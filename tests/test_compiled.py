"""compiled.CompiledLookup: the hot-path lookups run Django's SQL compiled once per connection, and
must give exactly what the ORM gives (fields, select_related rows, annotations, converters)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from oauth_server import compiled
from oauth_server.compiled import CompiledLookup
from oauth_server.lookups import ACCESS_TOKEN_BY_CHECKSUM, CLIENT_BY_ID, REFRESH_TOKEN_BY_CHECKSUM
from oauth_server.models import AccessToken, AuditEvent, Client
from oauth_server.tokens import token_checksum
from tests.factories import AccessTokenFactory, ClientFactory, RefreshTokenFactory, UserFactory

pytestmark = pytest.mark.django_db


def field_values(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_the_client_lookup_gives_what_the_orm_gives_with_its_scopes():
    client = ClientFactory(scopes=["openid", "files:read"])
    ClientFactory()  # another client, not to be found
    expected = Client.objects.with_scopes().get(client_id=client.client_id)
    found = CLIENT_BY_ID.first(client_id=client.client_id)
    assert found is not None and found.pk == client.pk
    assert field_values(found) == field_values(expected)
    assert sorted(found.scope_rows()) == sorted(expected.scope_rows()) != []
    assert found._state.db == "default" and not found._state.adding


def test_each_call_takes_its_own_values_and_an_unknown_one_finds_nothing():
    first, second = ClientFactory(), ClientFactory()
    assert CLIENT_BY_ID.first(client_id=first.client_id).pk == first.pk
    assert CLIENT_BY_ID.first(client_id=second.client_id).pk == second.pk
    assert CLIENT_BY_ID.first(client_id="no-such-client") is None


def test_select_related_rows_come_back_as_the_orm_builds_them():
    token = AccessTokenFactory()
    found = ACCESS_TOKEN_BY_CHECKSUM.first(checksum=token_checksum(token.raw_token))
    expected = AccessToken.objects.select_related("application", "user").get(pk=token.pk)
    assert field_values(found) == field_values(expected)
    # The related rows are already there: no query to reach them, and the datetimes are aware.
    with pytest.MonkeyPatch.context() as patch:
        refuse = lambda *args, **kwargs: pytest.fail("a related row was queried")  # noqa: E731
        patch.setattr(connections["default"], "cursor", refuse)
        assert field_values(found.application) == field_values(expected.application)
        assert found.user.username == expected.user.username
        assert found.expires == expected.expires and found.expires.tzinfo is not None


def test_a_refresh_token_with_its_access_token_and_a_null_relation():
    refresh = RefreshTokenFactory()
    found = REFRESH_TOKEN_BY_CHECKSUM.first(checksum=token_checksum(refresh.raw_token))
    assert found.pk == refresh.pk and found.access_token.pk == refresh.access_token.pk
    machine = AccessTokenFactory(user=None)  # a client_credentials token: no user to join
    found = ACCESS_TOKEN_BY_CHECKSUM.first(checksum=token_checksum(machine.raw_token))
    assert found.pk == machine.pk and found.user is None and found.user_id is None


def test_one_statement_per_call_and_the_sql_is_compiled_once_per_connection(django_assert_num_queries):
    client = ClientFactory()
    CLIENT_BY_ID.first(client_id=client.client_id)
    plans = connections["default"].__dict__["_oauth_server_compiled"]
    plan = plans[CLIENT_BY_ID._key]
    with django_assert_num_queries(1) as context:
        CLIENT_BY_ID.first(client_id=client.client_id)
    assert plans[CLIENT_BY_ID._key] is plan
    assert context.captured_queries[0]["sql"].count("LIMIT 1") == 1


def test_a_shape_that_cannot_be_reused_falls_back_to_the_orm():
    client = ClientFactory()
    # ``iexact`` on SQLite and PostgreSQL, or a transformed value, still answers correctly; a query
    # that cannot compile (``none()``) leaves no plan and the ORM answers every call.
    empty: CompiledLookup[Client] = CompiledLookup(lambda client_id: Client.objects.none(), "client_id")
    assert empty.first(client_id=client.client_id) is None
    assert connections["default"].__dict__["_oauth_server_compiled"][empty._key] is False
    prefix: CompiledLookup[Client] = CompiledLookup(
        lambda client_id: Client.objects.filter(client_id__startswith=client_id)[:1], "client_id"
    )
    # startswith escapes and wraps its value ('abc%'): the marker is transformed, so no plan.
    assert prefix.first(client_id=client.client_id[:5]).pk == client.pk
    assert connections["default"].__dict__["_oauth_server_compiled"][prefix._key] is False


def prepared_statements() -> list[str]:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.skipif(connections["default"].vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_on_postgresql_the_lookup_is_a_prepared_statement_and_the_query_log_shows_its_value(
    django_assert_num_queries,
):
    client = ClientFactory()
    with django_assert_num_queries(2) as context:
        assert CLIENT_BY_ID.first(client_id=client.client_id).pk == client.pk
        assert CLIENT_BY_ID.first(client_id=client.client_id).pk == client.pk
    assert any('"oauth_server_client"."client_id" = $1' in sql for sql in prepared_statements())
    # The log shows the statement with its value, as for any other query.
    assert all(f"= '{client.client_id}'" in q["sql"] for q in context.captured_queries)


@pytest.mark.skipif(connections["default"].vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_prepared_lookups_can_be_turned_off_for_old_pgbouncer(settings):
    by_name: CompiledLookup[Client] = CompiledLookup(
        lambda name: Client.objects.filter(name=name).order_by()[:1], "name"
    )
    client = ClientFactory()
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "PREPARED_LOOKUPS": False}
    assert by_name.first(name=client.name).pk == client.pk
    assert not any('"oauth_server_client"."name" = $1' in sql for sql in prepared_statements())
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "PREPARED_LOOKUPS": True}
    assert by_name.first(name=client.name).pk == client.pk
    assert any('"oauth_server_client"."name" = $1' in sql for sql in prepared_statements())


@pytest.mark.skipif(connections["default"].vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_an_explicit_prepare_threshold_of_none_in_the_database_options_means_no_prepared_lookups(monkeypatch):
    by_uri: CompiledLookup[Client] = CompiledLookup(
        lambda uri: Client.objects.filter(client_uri=uri).order_by()[:1], "uri"
    )
    client = ClientFactory(client_uri="https://client.example/about")
    options = {**connections["default"].settings_dict.get("OPTIONS", {}), "prepare_threshold": None}
    monkeypatch.setitem(connections["default"].settings_dict, "OPTIONS", options)
    assert by_uri.first(uri=client.client_uri).pk == client.pk
    assert not any('"oauth_server_client"."client_uri" = $1' in sql for sql in prepared_statements())


# --- compiled.insert ---------------------------------------------------------------------------------
def saved_row(obj) -> dict:
    return field_values(type(obj).objects.get(pk=obj.pk))


def test_insert_writes_the_row_save_would_write_with_signals_and_auto_fields(django_assert_num_queries):
    from django.db.models.signals import post_save, pre_save

    client, user = ClientFactory(), UserFactory()
    seen = []

    def pre(sender, instance, **kwargs):
        seen.append(("pre", instance.pk, kwargs["using"], kwargs["raw"]))

    def post(sender, instance, created, **kwargs):
        seen.append(("post", instance.pk, created, instance._state.adding))

    pre_save.connect(pre, sender=AccessToken)
    post_save.connect(post, sender=AccessToken)
    try:
        fields = dict(user=user, application=client, scope="files:read", jti="j-1", audience="https://api")
        fields["expires"] = timezone.now() + timedelta(hours=1)
        via_insert, via_save = AccessToken(**fields), AccessToken(**{**fields, "jti": "j-2"})
        via_insert.token_checksum, via_save.token_checksum = "a" * 64, "b" * 64
        compiled.insert(via_insert)  # compiles and runs; the next one only runs
        again = AccessToken(**{**fields, "jti": "j-3", "token_checksum": "c" * 64})
        with django_assert_num_queries(1):
            compiled.insert(again)
        via_save.save()
    finally:
        pre_save.disconnect(pre, sender=AccessToken)
        post_save.disconnect(post, sender=AccessToken)
    assert via_insert.pk and again.pk and not via_insert._state.adding and via_insert._state.db == "default"
    plan = connections["default"].__dict__["_oauth_server_compiled"][("insert", AccessToken._meta.label)]
    assert plan and plan.sql.startswith('INSERT INTO "oauth_server_accesstoken"')  # not save()'s way
    assert seen[0] == ("pre", None, "default", False) and seen[1] == ("post", via_insert.pk, True, False)
    # auto_now_add and the row as read back: the same as save() writes, but for the values chosen.
    assert via_insert.created is not None and via_insert.created == saved_row(via_insert)["created"]
    ignore = {"id", "jti", "token_checksum", "created", "updated"}
    row, expected = saved_row(via_insert), saved_row(via_save)
    assert {k: v for k, v in row.items() if k not in ignore} == {
        k: v for k, v in expected.items() if k not in ignore
    }
    assert row["jti"] == "j-1" and row["token_checksum"] == "a" * 64


def test_insert_keeps_json_and_null_values_and_the_audit_event_reads_back():
    event = AuditEvent(event="token_issued", client_id="c", details={"grant_type": "x", "n": [1, 2]}, ip=None)
    compiled.insert(event)
    back = AuditEvent.objects.get(pk=event.pk)
    assert (
        back.details == {"grant_type": "x", "n": [1, 2]} and back.ip is None and back.created == event.created
    )


def test_insert_leaves_what_it_cannot_reproduce_to_save():
    from django.db.models.functions import Now

    # A model with its own save(): Client hashes a clear secret there.
    client = Client(name="own save", client_type="confidential", client_secret="s" * 40)
    compiled.insert(client)
    assert Client.objects.get(pk=client.pk).client_secret != "s" * 40
    # An expression as a value, and a row that already has its primary key.
    event = AuditEvent(event="login", created=Now())
    compiled.insert(event)
    assert AuditEvent.objects.get(pk=event.pk).created is not None
    event.client_id = "changed"
    compiled.insert(event)  # save(): an UPDATE of the existing row, not a second row
    assert AuditEvent.objects.filter(pk=event.pk, client_id="changed").count() == AuditEvent.objects.count()


@pytest.mark.skipif(connections["default"].vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_on_postgresql_the_insert_is_prepared():
    compiled.insert(AuditEvent(event="login"))
    compiled.insert(AuditEvent(event="logout"))
    assert any(sql.startswith('INSERT INTO "oauth_server_auditevent"') for sql in prepared_statements())


@pytest.mark.skipif(connections["default"].vendor != "postgresql", reason="row locks: PostgreSQL")
def test_the_rotation_read_locks_only_the_refresh_token_row(django_assert_num_queries):
    from oauth_server.lookups import REFRESH_TOKEN_TO_ROTATE

    refresh = RefreshTokenFactory()
    with django_assert_num_queries(1) as context:
        [found] = REFRESH_TOKEN_TO_ROTATE.all(checksum=token_checksum(refresh.raw_token))
    assert found.pk == refresh.pk and found.access_token.pk == refresh.access_token.pk
    assert found.access_token_exchanged is False
    assert context.captured_queries[0]["sql"].endswith('FOR UPDATE OF "oauth_server_refreshtoken"')


def test_an_expression_set_by_a_pre_save_receiver_is_inserted_once_with_its_sql():
    from django.db.models.functions import Now
    from django.db.models.signals import post_save, pre_save

    sent = []

    def set_expression(sender, instance, **kwargs):
        sent.append("pre")
        instance.created = Now()

    def saved(sender, instance, created, **kwargs):
        sent.append(("post", created))

    pre_save.connect(set_expression, sender=AuditEvent)
    post_save.connect(saved, sender=AuditEvent)
    try:
        compiled.insert(AuditEvent(event="login"))  # the plan: compiled here
        event = AuditEvent(event="logout")
        compiled.insert(event)
    finally:
        pre_save.disconnect(set_expression, sender=AuditEvent)
        post_save.disconnect(saved, sender=AuditEvent)
    assert sent == ["pre", ("post", True), "pre", ("post", True)]  # once each, not save() again
    assert AuditEvent.objects.get(pk=event.pk).created is not None
    assert AuditEvent.objects.count() == 2


@pytest.mark.django_db(transaction=True)  # autocommit: no transaction around the read
def test_outside_a_transaction_the_rotation_read_takes_no_lock(django_assert_num_queries):
    from oauth_server.lookups import REFRESH_TOKEN_TO_ROTATE

    refresh = RefreshTokenFactory()
    with django_assert_num_queries(1) as context:
        [found] = REFRESH_TOKEN_TO_ROTATE.all(checksum=token_checksum(refresh.raw_token))
    assert found.pk == refresh.pk
    assert "FOR UPDATE" not in context.captured_queries[0]["sql"]
