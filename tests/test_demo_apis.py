"""The demo's resource servers (example_project/demo/api.py): the files API (each user's own files,
files:read / files:write) and the reports API (client credentials, its own audience). Tokens come
from the real token endpoint; the site is the demo's URLconf with base URL http://testserver."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client as BrowserClient
from django.test.utils import CaptureQueriesContext

from example_project.demo import site
from example_project.demo.models import File
from oauth_server.models import AccessToken
from oauth_server.resource import jwks
from oauth_server.revocation import revoke_tokens
from tests.factories import ClientFactory, DemoFileFactory, MachineClientFactory, UserFactory
from tests.helpers import basic_auth, exchange_code, get_code, token_request
from tests.resource_urls import token_parts

BASE = "http://testserver"
FILES = site.files_api_url(BASE)
REPORTS = site.reports_api_url(BASE)
MY_REPORT = site.my_report_url(BASE)
# The token check must touch none of these: keys and revocation answers come from caches.
PROVIDER_TABLES = ("oauth_server_", "oauth2_provider_")


@pytest.fixture(autouse=True)
def demo_site(settings):
    derived = site.settings_for(BASE)
    settings.DEMO_BASE_URL = BASE
    settings.OAUTH_RESOURCE_SERVER = derived["OAUTH_RESOURCE_SERVER"]
    cache.clear()
    yield settings
    jwks.reset()
    cache.clear()


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")


@pytest.fixture
def web_app(db):
    return ClientFactory(
        scopes=["openid", "files:read", "files:write"], audiences=[FILES], name="Demo Web App"
    )


@pytest.fixture
def token_for(web_app, django_capture_on_commit_callbacks):
    """An access token of the web app for ``user`` with ``scope``, from the code flow."""

    def issue(user, scope: str = "files:read files:write", client=None) -> str:
        client = client or web_app
        browser = BrowserClient()
        browser.force_login(user)
        # on_commit callbacks run as in production: the demo primes the revocation cache then.
        with django_capture_on_commit_callbacks(execute=True):
            code, verifier = get_code(browser, client, scope=scope)
            response = exchange_code(browser, client, code, verifier)
        assert response.status_code == 200, response.content
        return response.json()["access_token"]

    return issue


@pytest.fixture
def machine_token(django_capture_on_commit_callbacks):
    def issue(scope: str = "reports:read", audience: str = REPORTS) -> str:
        machine = MachineClientFactory(scopes=scope.split(), audiences=[audience])
        with django_capture_on_commit_callbacks(execute=True):
            response = token_request(
                BrowserClient(),
                {"grant_type": "client_credentials", "scope": scope},
                client=machine,
                secret=machine.raw_secret,
            )
        assert response.status_code == 200, response.content
        return response.json()["access_token"]

    return issue


def api(method: str, url: str, token: str | None = None, **kwargs):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return getattr(BrowserClient(), method)(url, **headers, **kwargs)


def post_json(url: str, token: str, data) -> object:
    return api("post", url, token, data=json.dumps(data), content_type="application/json")


def names(response) -> list[str]:
    return [f["name"] for f in response.json()["files"]]


def assert_bearer_error(response, status: int, error: str):
    assert response.status_code == status, response.content
    assert response.json()["error"] == error
    assert f'error="{error}"' in response["WWW-Authenticate"]


# --- files API: each user sees only their own ---------------------------------------------------------
def test_each_user_lists_only_their_own_files(alice, bob, token_for):
    DemoFileFactory(owner=alice, name="alice-1.txt")
    DemoFileFactory(owner=alice, name="alice-2.txt")
    DemoFileFactory(owner=bob, name="bob-1.txt")

    response = api("get", "/api/files/", token_for(alice, "files:read"))
    assert response.status_code == 200
    assert sorted(names(response)) == ["alice-1.txt", "alice-2.txt"]
    first = response.json()["files"][0]
    assert set(first) == {"id", "name", "content", "created", "url"}
    assert first["url"] == f"{BASE}/api/files/{first['id']}/"

    assert names(api("get", "/api/files/", token_for(bob, "files:read"))) == ["bob-1.txt"]


def test_create_needs_files_write_and_belongs_to_the_token_user(alice, bob, token_for):
    read_only = token_for(alice, "files:read")
    refused = post_json("/api/files/", read_only, {"name": "x.txt"})
    assert_bearer_error(refused, 403, "insufficient_scope")
    assert 'scope="files:write"' in refused["WWW-Authenticate"]
    assert not File.objects.exists()

    response = post_json("/api/files/", token_for(alice), {"name": " notes.txt ", "content": "hi\n"})
    assert response.status_code == 201, response.content
    created = File.objects.get()
    assert (created.owner, created.name, created.content) == (alice, "notes.txt", "hi\n")
    assert response["Location"] == f"{BASE}/api/files/{created.pk}/" == response.json()["url"]
    assert names(api("get", "/api/files/", token_for(bob, "files:read"))) == []


def test_reading_needs_files_read(alice, token_for):
    file = DemoFileFactory(owner=alice)
    write_only = token_for(alice, "files:write")
    for url in ("/api/files/", f"/api/files/{file.pk}/"):
        response = api("get", url, write_only)
        assert_bearer_error(response, 403, "insufficient_scope")
        assert 'scope="files:read"' in response["WWW-Authenticate"]


def test_detail_and_delete_of_own_file(alice, token_for):
    file = DemoFileFactory(owner=alice, name="mine.txt", content="secret")
    token = token_for(alice)
    detail = api("get", f"/api/files/{file.pk}/", token)
    assert detail.status_code == 200 and detail.json()["content"] == "secret"

    assert_bearer_error(
        api("delete", f"/api/files/{file.pk}/", token_for(alice, "files:read")), 403, "insufficient_scope"
    )
    assert File.objects.filter(pk=file.pk).exists()

    deleted = api("delete", f"/api/files/{file.pk}/", token)
    assert deleted.status_code == 204 and not deleted.content
    assert not File.objects.filter(pk=file.pk).exists()
    assert api("get", f"/api/files/{file.pk}/", token).status_code == 404


def test_another_users_file_is_a_404_for_read_and_delete(alice, bob, token_for):
    bobs = DemoFileFactory(owner=bob, name="bob-secret.txt")
    token = token_for(alice)
    for method in ("get", "delete"):
        response = api(method, f"/api/files/{bobs.pk}/", token)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found" and "bob" not in response.content.decode()
    assert File.objects.filter(pk=bobs.pk).exists()
    # Same answer as for a file that never existed: nothing tells the two apart.
    missing = api("get", f"/api/files/{bobs.pk + 1000}/", token)
    assert missing.status_code == 404 and missing.json() == response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "a", "content": "x" * 10_001}, "content"),
    ],
)
def test_invalid_files_are_refused_with_the_fields(alice, token_for, body, field):
    response = post_json("/api/files/", token_for(alice), body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request" and field in response.json()["fields"]
    assert not File.objects.exists()


def test_unreadable_bodies_and_wrong_methods_answer_json_errors(alice, token_for):
    token = token_for(alice)
    broken = api("post", "/api/files/", token, data="{not json", content_type="application/json")
    assert broken.status_code == 400 and broken.json()["error"] == "invalid_request"
    media = api("post", "/api/files/", token, data="<x/>", content_type="application/xml")
    assert media.status_code == 415 and media.json()["error"] == "unsupported_media_type"
    wrong = api("put", "/api/files/", token, data="{}", content_type="application/json")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"
    assert not File.objects.exists()


def test_no_token_gets_the_bare_bearer_challenge_naming_the_apis_metadata(db):
    """No error code (RFC 6750 3.1), and each API's own RFC 9728 document (5.1)."""
    for url in ("/api/files/", "/api/reports/"):
        response = api("get", url)
        assert response.status_code == 401
        metadata = f"{BASE}/.well-known/oauth-protected-resource{url}"
        assert response["WWW-Authenticate"] == (
            f'Bearer realm="api", resource_metadata="{metadata}", '
            f'DPoP realm="api", algs="ES256 RS256 PS256 EdDSA", resource_metadata="{metadata}"'
        )
        assert response["Content-Type"] == "application/json"  # no browsable API page
        document = api("get", metadata.removeprefix(BASE)).json()
        assert document["resource"] == BASE + url
        assert document["authorization_servers"] == [f"{BASE}/oauth"]


def test_insufficient_scope_names_the_scope_and_the_metadata(alice, token_for):
    response = api("get", "/api/reports/", token_for(alice, "files:read"))
    assert_bearer_error(response, 401, "invalid_token")  # a files token is not for the reports API
    response = api("get", "/api/files/", token_for(alice, "files:write"))
    assert_bearer_error(response, 403, "insufficient_scope")
    header = response["WWW-Authenticate"]
    assert 'scope="files:read"' in header
    assert header.endswith(f'resource_metadata="{BASE}/.well-known/oauth-protected-resource/api/files/"')


def test_a_token_for_another_audience_is_refused(alice, token_for, machine_token):
    other_app = ClientFactory(scopes=["files:read"], audiences=["https://elsewhere.example/api/"])
    response = api("get", "/api/files/", token_for(alice, "files:read", client=other_app))
    assert_bearer_error(response, 401, "invalid_token")
    assert "(aud)" in response.json()["error_description"]
    # The reports-service token is for the reports API, not this one.
    assert_bearer_error(api("get", "/api/files/", machine_token()), 401, "invalid_token")


def test_a_service_token_for_the_files_api_has_no_user(db, machine_token):
    response = api("get", "/api/files/", machine_token("files:read", audience=FILES))
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"


def test_a_deactivated_users_token_stops_working(alice, token_for):
    token = token_for(alice, "files:read")
    alice.is_active = False
    alice.save()
    assert_bearer_error(api("get", "/api/files/", token), 401, "invalid_token")


def test_revoked_tokens_are_refused_at_once(alice, web_app, token_for, django_capture_on_commit_callbacks):
    token = token_for(alice, "files:read")
    assert api("get", "/api/files/", token).status_code == 200  # "not revoked" is now cached
    with django_capture_on_commit_callbacks(execute=True):
        revoke_tokens(user=alice, client=web_app)  # what Connected apps and RP-initiated logout do
    with CaptureQueriesContext(connection) as queries:
        response = api("get", "/api/files/", token)
    assert_bearer_error(response, 401, "invalid_token")
    assert "revoked" in response.json()["error_description"]
    assert not queries.captured_queries  # the demo told the cache: refused without asking the database


def test_the_token_check_makes_no_query(alice, token_for):
    DemoFileFactory(owner=alice)
    api("get", "/api/files/", token_for(alice, "files:read"))  # warms the key cache (one query per 5 min)
    fresh = token_for(alice, "files:read")  # issued now: never checked before
    with CaptureQueriesContext(connection) as queries:
        response = api("get", "/api/files/", fresh)
    assert response.status_code == 200 and len(response.json()["files"]) == 1
    sql = [q["sql"] for q in queries.captured_queries]
    # Exactly: the user behind the token's sub (user_for_token), then the files.
    assert len(sql) == 2, sql
    assert "oauth_server_subject" in sql[0] and "demo_file" in sql[1]
    assert not [s for s in sql if any(f'"{t}' in s and "subject" not in s for t in PROVIDER_TABLES)], sql


# --- reports API --------------------------------------------------------------------------------------
def test_reports_with_a_client_credentials_token(alice, bob, machine_token):
    DemoFileFactory(owner=alice)
    DemoFileFactory(owner=bob)
    token = machine_token()
    response = api("get", "/api/reports/", token)
    assert response.status_code == 200, response.content
    report = response.json()
    assert report["report"] == "files-created-per-day" and report["total"] == 2
    assert len(report["rows"]) == 7 and report["rows"][-1]["files_created"] == 2
    assert report["requested_by"] == token_parts(token)[1]["client_id"]
    assert report["period"]["to"] == report["rows"][-1]["date"]
    assert "alice" not in response.content.decode()  # numbers only


def test_reports_refuse_a_user_token(alice, token_for):
    response = api("get", "/api/reports/", token_for(alice, "files:read"))
    assert_bearer_error(response, 401, "invalid_token")  # its audience is the files API
    assert "(aud)" in response.json()["error_description"]


def test_reports_need_the_reports_scope(db, machine_token):
    MachineClientFactory(scopes=["files:read"])
    token = machine_token("files:read", audience=REPORTS)
    response = api("get", "/api/reports/", token)
    assert_bearer_error(response, 403, "insufficient_scope")
    assert 'scope="reports:read"' in response["WWW-Authenticate"]


def test_reports_audience_follows_the_base_url(demo_site, db, machine_token):
    token = machine_token()
    demo_site.DEMO_BASE_URL = "http://other.example:8000"  # manage.py demo on another address
    assert_bearer_error(api("get", "/api/reports/", token), 401, "invalid_token")


# --- token exchange (RFC 8693): the reports service reads a user's files for them ---------------------
def test_the_files_api_shows_who_acts_for_whom(alice, token_for, web_app, django_capture_on_commit_callbacks):
    from oauth_server.grants.token_exchange import ACCESS_TOKEN_TYPE, NAME

    DemoFileFactory(owner=alice, name="notes.txt")
    web_app.audiences = [FILES, REPORTS]
    web_app.save()
    reports = ClientFactory(
        grant_types=["urn:ietf:params:oauth:grant-type:token-exchange"],
        redirect_uris="",
        client_id="reports-service",
        scopes=["files:read"],
        audiences=[FILES],
        resource_identifiers=[REPORTS],
    )
    user_token = token_for(alice)
    assert "delegation" not in api("get", FILES, user_token).json()  # the user's own app
    data = {"grant_type": NAME, "subject_token": user_token, "subject_token_type": ACCESS_TOKEN_TYPE}
    with django_capture_on_commit_callbacks(execute=True):
        response = token_request(
            BrowserClient(),
            {**data, "resource": FILES, "scope": "files:read"},
            client=reports,
            secret=reports.raw_secret,
        )
    assert response.status_code == 200, response.content
    listed = api("get", FILES, response.json()["access_token"])
    assert listed.status_code == 200, listed.content
    assert names(listed) == ["notes.txt"]
    assert listed.json()["delegation"] == {
        "on_behalf_of": "alice",
        "actor": "reports-service",
        "actor_chain": ["reports-service"],
        "act": {"sub": "reports-service"},
    }
    # files:read only: the exchanged token cannot write.
    assert post_json(FILES, response.json()["access_token"], {"name": "x", "content": "y"}).status_code == 403


# --- the report builder (/api/my-report/): token exchange over HTTP, served in-process ------------------
@pytest.fixture
def report_builder(db, monkeypatch, web_app):
    """The seeded report builder (seed.REPORT_BUILDER), its HTTP calls served by the test client."""
    from example_project.demo import seed
    from tests.demo_http import served_in_process

    served_in_process(monkeypatch)
    return seed._seed_client(seed.REPORT_BUILDER, BASE)


@pytest.fixture
def cli_app(db):
    """A client whose tokens are for the report builder (as the demo CLI's ``report``)."""
    return ClientFactory(scopes=["files:read", "files:write"], audiences=[MY_REPORT], name="Demo CLI")


def test_the_report_builder_reads_the_users_files_through_an_exchanged_token(
    alice, bob, token_for, report_builder, cli_app
):
    DemoFileFactory(owner=alice, name="a.txt", content="12345")
    DemoFileFactory(owner=alice, name="b.txt", content="123")
    DemoFileFactory(owner=bob, name="bobs.txt", content="x" * 50)
    user_token = token_for(alice, "files:read files:write", client=cli_app)
    assert token_parts(user_token)[1]["aud"] == MY_REPORT
    assert_bearer_error(api("get", FILES, user_token), 401, "invalid_token")  # not for the files API
    response = api("get", MY_REPORT, user_token)
    assert response.status_code == 200, response.content
    report = response.json()
    assert report["for"] == "alice" and report["prepared_by"] == "report-builder"
    assert (report["files"], report["characters"], report["largest"]) == (2, 8, "a.txt")
    assert report["exchange"] == {
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "scope": "files:read",  # narrower than the user's token: no files:write
        "expires_in": report["exchange"]["expires_in"],
        "resource": FILES,
    }
    assert report["files_api_saw"] == {
        "on_behalf_of": "alice",
        "actor": "report-builder",
        "actor_chain": ["report-builder"],
        "act": {"sub": "report-builder"},
    }
    assert "report-builder read 2 file(s) of alice" in report["summary"]
    exchanged = AccessToken.objects.get(application=report_builder)
    assert exchanged.user == alice and exchanged.scope == "files:read"
    assert exchanged.exchanged_from.application == cli_app


def test_the_report_builder_takes_only_tokens_for_itself_with_files_read(
    alice, token_for, report_builder, cli_app
):
    files_token = token_for(alice, "files:read")  # the web app's: for the files API
    assert_bearer_error(api("get", MY_REPORT, files_token), 401, "invalid_token")
    write_only = token_for(alice, "files:write", client=cli_app)
    assert_bearer_error(api("get", MY_REPORT, write_only), 403, "insufficient_scope")
    assert not AccessToken.objects.filter(application=report_builder).exists()


def test_the_report_builder_reports_a_refused_exchange_as_bad_gateway(
    alice, token_for, report_builder, cli_app
):
    report_builder.audiences = []  # misconfigured: may exchange for no API
    report_builder.save()
    response = api("get", MY_REPORT, token_for(alice, "files:read", client=cli_app))
    assert response.status_code == 502, response.content
    body = response.json()
    assert body["error"] == "bad_gateway" and body["step"] == "token_exchange"
    assert body["answer"]["status"] == 400 and body["answer"]["body"]["error"] == "invalid_target"


def test_the_files_api_accepts_dpop_and_refuses_the_bound_token_as_bearer(alice, web_app):
    """RFC 9449 7: a DPoP-bound token from the code flow, with a proof per request."""
    from tests import dpop_proofs as proofs

    DemoFileFactory(owner=alice, name="alice-1.txt")
    browser = BrowserClient()
    browser.force_login(alice)
    code, verifier = get_code(browser, web_app, scope="files:read")
    response = browser.post(
        "/oauth/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": web_app.redirect_uri_list[0],
            "code_verifier": verifier,
        },
        HTTP_AUTHORIZATION=basic_auth(web_app.client_id, web_app.raw_secret),
        HTTP_DPOP=proofs.proof("POST", f"{BASE}/oauth/token/"),
    )
    assert response.status_code == 200, response.content
    token = response.json()["access_token"]
    url = f"{BASE}/api/files/"
    proof = proofs.proof("GET", url, access_token=token)
    answer = BrowserClient().get("/api/files/", HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof)
    assert answer.status_code == 200, answer.content
    assert names(answer) == ["alice-1.txt"]
    assert_bearer_error(api("get", "/api/files/", token), 401, "invalid_token")


def test_the_cli_prints_the_report_with_who_acted_for_whom(monkeypatch, capsys):
    from example_project.demo import cli

    answer = {
        "summary": "report-builder read 2 file(s) of alice, with a token for the files API only.",
        "files": 2,
        "characters": 101,
        "largest": "rabbit-hole.md",
        "exchange": {"scope": "files:read", "resource": FILES},
        "files_api_saw": {"on_behalf_of": "alice", "act": {"sub": "report-builder"}},
    }
    asked = {}

    def report(base_url, **kwargs):
        asked["base_url"] = base_url
        return {"scope": "files:read offline_access"}, answer

    monkeypatch.setattr(cli, "report", report)
    assert cli.main(["report", "--base-url", "http://127.0.0.1:9999/"]) == 0
    out = capsys.readouterr().out
    assert asked["base_url"] == "http://127.0.0.1:9999"
    assert "report-builder read 2 file(s) of alice" in out
    assert 'on behalf of alice, act = {"sub": "report-builder"}' in out
    assert f"scope files:read, for {FILES}" in out
