"""Client ID metadata documents (oauth_server/cimd.py): a real HTTPS server on 127.0.0.1 serves the
documents (self-signed certificate, trusted through CIMD_CA_FILE); the authorization and token
endpoints fetch, check, cache and refresh them. Hostile documents and addresses are refused with a
reason in the audit trail, nothing saved, and never a redirect to an unverified redirect URI."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.checks import run_checks
from django.utils import timezone

from oauth_server import cimd, fetcher
from oauth_server.models import AuditEvent, BlockedClientHost, Client, Scope
from oauth_server.registration import client_origin
from tests.cimd_server import DocumentServer
from tests.helpers import TOKEN_URL, authorize_params, exchange_code, get_authorize, get_code

ROOT = Path(__file__).resolve().parent.parent
CALLBACK = "http://127.0.0.1:33418/callback"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = DocumentServer(tmp_path_factory.mktemp("cimd"))
    yield server
    server.close()


@pytest.fixture
def docs(server, settings):
    """The document server, trusted, with loopback documents allowed and small bounds."""
    server.reset()
    settings.OAUTH_SERVER = {
        **settings.OAUTH_SERVER,
        "CIMD_ALLOW_HTTP_LOOPBACK": True,
        "CIMD_CA_FILE": str(server.cert),
        "CIMD_FETCH_TIMEOUT": 0.5,
        "CIMD_MAX_DOCUMENT_SIZE": 2048,
    }
    return server


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def client_for(url: str, redirect_uri: str = CALLBACK) -> SimpleNamespace:
    """What tests/helpers need of a client: its id and redirect URIs."""
    return SimpleNamespace(client_id=url, redirect_uri_list=[redirect_uri], raw_secret=None)


def failures(url: str) -> list[dict]:
    return [
        event.details
        for event in AuditEvent.objects.filter(
            event=AuditEvent.Event.CIMD_FETCH_FAILED, client_id=url
        ).order_by("id")
    ]


def refused(url: str, reason: str) -> None:
    """The URL's document was refused for ``reason``, and no client exists for it."""
    assert cimd.load_client(url) is None
    assert not Client.objects.filter(client_id=url).exists()
    assert [d["reason"] for d in failures(url)] == [reason], failures(url)


# --- the happy path ------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_document_client_signs_in_through_consent_and_exchanges_its_code_with_pkce(docs, logged_in):
    for name in ("openid", "profile"):  # a transactional test: other tests may have flushed them
        Scope.objects.get_or_create(name=name, defaults={"description": name})
    url = docs.serve("/client.json", docs.document("/client.json", scope="openid profile"))
    code, verifier = get_code(logged_in, client_for(url), scope="openid")

    client = Client.objects.get(client_id=url)
    assert client.registration_source == Client.RegistrationSource.CIMD
    assert client.client_type == Client.CLIENT_PUBLIC
    assert client.token_endpoint_auth_method == "none"
    assert client.grant_types == ["authorization_code", "refresh_token"]
    assert client.redirect_uri_list == [CALLBACK]
    assert client.name == "Test MCP client"
    assert not client.skip_consent
    assert sorted(client.allowed_scopes.values_list("name", flat=True)) == ["openid", "profile"]

    response = exchange_code(logged_in, client_for(url), code, verifier)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["access_token"] and body["refresh_token"]
    assert docs.hits["/client.json"] == 1  # cached: one fetch for the whole flow
    registered = AuditEvent.objects.get(event=AuditEvent.Event.CLIENT_REGISTERED)
    assert registered.client_id == url
    assert registered.details["source"] == "cimd" and registered.details["action"] == "created"


def test_the_consent_page_is_shown(docs, logged_in):
    url = docs.serve("/c.json", docs.document("/c.json"))
    response = get_authorize(logged_in, authorize_params(client_for(url), challenge="x" * 43, scope="openid"))
    assert response.status_code == 200, response.get("Location")
    assert "form" in response.context


def test_the_consent_page_is_shown_even_for_no_scope(docs, logged_in):
    url = docs.serve("/c.json", docs.document("/c.json"))
    response = get_authorize(logged_in, authorize_params(client_for(url), challenge="x" * 43))
    assert response.status_code == 200, response.get("Location")


def test_client_origin_is_the_document_host(docs, db):
    url = docs.serve("/o.json", docs.document("/o.json"))
    client = cimd.load_client(url)
    assert client_origin(client).host == f"127.0.0.1:{docs.port}"
    assert client_origin(Client(client_id="abc")) is None


def test_pkce_is_required(docs, logged_in):
    url = docs.serve("/p.json", docs.document("/p.json"))
    response = get_authorize(logged_in, authorize_params(client_for(url)))
    assert response.status_code == 302
    assert "error=invalid_request" in response["Location"]


# --- hostile documents: a clear error, nothing saved, no redirect ------------------------------------
def hostile_documents(server: DocumentServer):
    valid = server.document
    return {
        "wrong content type": (dict(body=valid("/d"), content_type="text/html"), "content_type"),
        "no content type": (dict(body=valid("/d"), content_type=""), "content_type"),
        "oversized": (dict(body=valid("/d", client_name="x" * 5000)), "too_large"),
        "oversized, no length": (
            dict(body=valid("/d", client_name="x" * 5000), content_length=False),
            "too_large",
        ),
        "redirect": (dict(body=b"", status=302, headers={"Location": server.url("/elsewhere")}), "redirect"),
        "not found": (dict(body=b"{}", status=404), "http_status"),
        "invalid json": (dict(body=b"{not json"), "invalid_json"),
        "json array": (dict(body=[valid("/d")]), "invalid_json"),
        "gzip": (dict(body=valid("/d"), headers={"Content-Encoding": "gzip"}), "content_encoding"),
        "mismatched client_id": (
            dict(body=valid("/d", client_id=server.url("/other"))),
            "client_id_mismatch",
        ),
        "client_id differs by a slash": (
            dict(body=valid("/d", client_id=server.url("/d/"))),
            "client_id_mismatch",
        ),
        "client_secret": (dict(body=valid("/d", client_secret="s3cret-marker")), "forbidden_member"),
        "client_secret_expires_at": (dict(body=valid("/d", client_secret_expires_at=0)), "forbidden_member"),
        "secret auth method": (
            dict(body=valid("/d", token_endpoint_auth_method="client_secret_basic")),
            "forbidden_member",
        ),
        "no redirect uris": (dict(body=valid("/d", redirect_uris=None)), "invalid_metadata"),
        "empty redirect uris": (dict(body=valid("/d", redirect_uris=[])), "invalid_metadata"),
        "http redirect to a real host": (
            dict(body=valid("/d", redirect_uris=["http://evil.example/cb"])),
            "invalid_metadata",
        ),
        "redirect uri with fragment": (
            dict(body=valid("/d", redirect_uris=["https://app.example/cb#x"])),
            "invalid_metadata",
        ),
        "wildcard redirect uri": (
            dict(body=valid("/d", redirect_uris=["https://*.example/cb"])),
            "invalid_metadata",
        ),
        "javascript redirect uri": (
            dict(body=valid("/d", redirect_uris=["javascript:alert(1)"])),
            "invalid_metadata",
        ),
        "redirect uris not a list": (dict(body=valid("/d", redirect_uris=CALLBACK)), "invalid_metadata"),
        "client_credentials": (
            dict(body=valid("/d", grant_types=["client_credentials"])),
            "invalid_metadata",
        ),
        "implicit": (dict(body=valid("/d", response_types=["token"])), "invalid_metadata"),
        "name not a string": (dict(body=valid("/d", client_name=["x"])), "invalid_metadata"),
        "logo not a URL": (dict(body=valid("/d", logo_uri="javascript:alert(1)")), "invalid_metadata"),
    }


HOSTILE = list(hostile_documents(SimpleNamespace(document=lambda *a, **k: {}, url=lambda p: p)))


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_document_is_refused_with_its_reason(docs, db, case):
    route, reason = hostile_documents(docs)[case]
    docs.serve("/d", **route)
    refused(docs.url("/d"), reason)
    assert "s3cret-marker" not in str(failures(docs.url("/d")))  # never the document's content


@pytest.mark.parametrize(
    "case", ["wrong content type", "mismatched client_id", "http redirect to a real host"]
)
def test_the_authorization_endpoint_shows_an_error_page_and_never_redirects(docs, logged_in, case):
    route, _reason = hostile_documents(docs)[case]
    url = docs.serve("/d", **route)
    response = get_authorize(
        logged_in, authorize_params(client_for(url, "http://evil.example/cb"), challenge="x" * 43)
    )
    assert response.status_code == 400
    assert "Location" not in response
    assert not Client.objects.filter(client_id=url).exists()


def test_the_token_endpoint_answers_invalid_client(docs, client, db):
    url = docs.serve("/d", docs.document("/d", client_id=docs.url("/other")))
    response = client.post(
        TOKEN_URL,
        {
            "grant_type": "authorization_code",
            "code": "x",
            "redirect_uri": CALLBACK,
            "client_id": url,
            "code_verifier": "v" * 43,
        },
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert not Client.objects.filter(client_id=url).exists()


def test_a_slow_server_times_out(docs, db):
    docs.serve("/slow", docs.document("/slow"), delay=1.5)
    refused(docs.url("/slow"), "timeout")


def test_a_server_dripping_its_body_is_cut_off_at_the_deadline(docs, db, settings):
    """DOT's socket timeout restarts with every byte; our deadline holds for the whole body."""
    docs.serve("/drip", docs.document("/drip"), drip=0.05)  # ~200 bytes: 10 s in all
    refused(docs.url("/drip"), "timeout")


def test_an_untrusted_certificate_is_refused(docs, db, settings):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "CIMD_CA_FILE": None}
    docs.serve("/t", docs.document("/t"))
    refused(docs.url("/t"), "fetch_failed")


def test_the_certificate_must_name_the_url_host(docs, db, monkeypatch):
    """Connecting to the checked address must not skip the host name check."""
    monkeypatch.setattr(fetcher, "getaddrinfo", _answer("127.0.0.1"))
    url = f"https://wrong-name.test:{docs.port}/n"
    docs.serve("/n", docs.document("/n", client_id=url))
    refused(url, "fetch_failed")


@pytest.mark.parametrize(
    "url",
    [
        "https://client.example/c#frag",
        "https://user:pw@client.example/c",
        "https://client.example",
        "https://client.example/a/../c",
        "https://client.example:99999/c",
        "https://client.example/" + "a" * 300,
    ],
)
def test_invalid_document_urls_are_refused_before_any_lookup(db, url, monkeypatch):
    monkeypatch.setattr(fetcher, "getaddrinfo", _fail)
    assert cimd.load_client(url) is None
    assert [d["reason"] for d in failures(url[:255])] == ["invalid_url"]


# --- SSRF: addresses ----------------------------------------------------------------------------------
def _answer(*ips: str):
    def getaddrinfo(host, port, *args, **kwargs):
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in ips
        ]

    return getaddrinfo


def _fail(*args, **kwargs):
    raise AssertionError("no lookup expected")


INTERNAL = [
    "10.1.2.3",
    "192.168.0.1",
    "172.16.5.4",
    "127.0.0.1",
    "::1",
    "169.254.169.254",
    "fd00::1",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",
    "ff02::1",
    "::ffff:224.0.0.1",
    "2002:a9fe:a9fe::1",
    "fe80::1",
]


@pytest.mark.parametrize("ip", INTERNAL)
def test_a_host_resolving_to_an_internal_address_is_never_contacted(db, ip, monkeypatch):
    monkeypatch.setattr(fetcher, "getaddrinfo", _answer(ip))
    refused("https://mcp-client.example/client.json", "address_refused")


def test_a_host_with_one_internal_address_among_public_ones_is_refused(db, monkeypatch):
    monkeypatch.setattr(fetcher, "getaddrinfo", _answer("93.184.216.34", "10.0.0.7"))
    refused("https://split.example/client.json", "address_refused")


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/c.json",
        "https://[::1]/c.json",
        "https://10.0.0.1/c.json",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:127.0.0.1]/c.json",
        "https://localhost/c.json",
    ],
)
def test_literal_internal_addresses_are_refused_without_the_loopback_setting(db, url):
    refused(url, "address_refused")


@pytest.mark.parametrize("ip", ["10.1.2.3", "169.254.169.254", "192.168.1.1", "::ffff:10.0.0.1"])
def test_the_loopback_setting_allows_loopback_only(docs, db, ip, monkeypatch):
    monkeypatch.setattr(fetcher, "getaddrinfo", _answer(ip))
    refused("https://mcp-client.example/client.json", "address_refused")


def test_plain_http_documents_need_the_loopback_setting(db, settings):
    url = "http://127.0.0.1:9/client.json"
    assert not cimd.is_document_url(url)
    assert not cimd.is_document_url("http://client.example/c.json")
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "CIMD_ALLOW_HTTP_LOOPBACK": True}
    assert cimd.is_document_url(url)
    assert not cimd.is_document_url("http://client.example/c.json")


# --- cache and back-off ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cache_control, seconds",
    [
        ("max-age=600", 600),
        ("public, max-age=10", 300),
        ("max-age=999999999", 86400),
        ("no-store", 300),
        ("no-cache", 300),
        (None, 86400),
        ("s-maxage=600", 86400),
        ("max-age=abc", 86400),
    ],
)
def test_cache_control_is_honoured_within_bounds(docs, db, cache_control, seconds):
    headers = {"Cache-Control": cache_control} if cache_control else {}
    url = docs.serve("/cache", docs.document("/cache"), headers=headers)
    before = timezone.now()
    client = cimd.load_client(url)
    after = timezone.now()
    assert before + timedelta(seconds=seconds) <= client.cimd_expires_at <= after + timedelta(seconds=seconds)


def test_a_fresh_client_is_not_fetched_again(docs, db):
    url = docs.serve("/fresh", docs.document("/fresh"))
    cimd.load_client(url)
    cimd.load_client(url)
    assert docs.hits["/fresh"] == 1


def test_a_stale_client_is_refreshed_and_updated_atomically(docs, db, django_capture_on_commit_callbacks):
    url = docs.serve("/r", docs.document("/r"))
    client = cimd.load_client(url)
    Client.objects.filter(pk=client.pk).update(cimd_expires_at=timezone.now() - timedelta(seconds=1))
    docs.serve("/r", docs.document("/r", client_name="Renamed", redirect_uris=["https://app.example/cb"]))
    with django_capture_on_commit_callbacks(execute=True):
        refreshed = cimd.load_client(url)
    assert refreshed.pk == client.pk
    assert refreshed.name == "Renamed"
    assert refreshed.redirect_uri_list == ["https://app.example/cb"]
    assert refreshed.cimd_expires_at > timezone.now()
    update = AuditEvent.objects.filter(event=AuditEvent.Event.CLIENT_REGISTERED).order_by("id").last()
    assert update.details["action"] == "updated"
    assert update.details["changed"] == ["name", "redirect_uris"]


def test_a_failed_refresh_keeps_the_last_good_document_and_backs_off(docs, db):
    url = docs.serve("/k", docs.document("/k"))
    client = cimd.load_client(url)
    Client.objects.filter(pk=client.pk).update(cimd_expires_at=timezone.now() - timedelta(seconds=1))
    docs.serve("/k", docs.document("/k", redirect_uris=["http://evil.example/cb"]))
    kept = cimd.load_client(url)
    assert kept is not None and kept.redirect_uri_list == [CALLBACK]
    assert [(d["reason"], d["refresh"]) for d in failures(url)] == [("invalid_metadata", True)]
    cimd.load_client(url)
    assert docs.hits["/k"] == 2  # backed off: not fetched again


def test_a_failed_first_fetch_is_backed_off(docs, db):
    url = docs.serve("/b", b"{", content_type="application/json")
    assert cimd.load_client(url) is None
    assert cimd.load_client(url) is None
    assert docs.hits["/b"] == 1
    assert len(failures(url)) == 1


def test_a_client_registered_by_staff_with_a_url_id_is_never_taken_over(docs, db):
    url = docs.url("/staff")
    Client.objects.create_client(
        client_id=url,
        name="Staff",
        client_type="public",
        grant_types=["authorization_code"],
        redirect_uris=[CALLBACK],
    )
    docs.serve("/staff", docs.document("/staff", redirect_uris=["https://evil.example/cb"]))
    client = cimd.load_client(url)
    assert client.name == "Staff" and client.redirect_uri_list == [CALLBACK]
    assert docs.hits.get("/staff") is None


# --- policy: scopes, grants, blocked hosts --------------------------------------------------------------
def test_a_document_client_never_gets_the_admin_scope(docs, db, settings):
    Scope.objects.create(name="oauth:admin", description="Admin", is_default=True)
    Scope.objects.create(name="files:read", description="Files", is_default=True)
    url = docs.serve("/s", docs.document("/s", scope="oauth:admin files:read openid"))
    client = cimd.load_client(url)
    assert sorted(client.allowed_scopes.values_list("name", flat=True)) == ["files:read", "openid"]

    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "SELF_REGISTERED_SCOPES": ["oauth:admin", "files:read"]}
    url = docs.serve("/s2", docs.document("/s2"))
    client = cimd.load_client(url)
    assert list(client.allowed_scopes.values_list("name", flat=True)) == ["files:read"]


def test_the_admin_scope_is_refused_at_the_authorization_endpoint(docs, logged_in):
    Scope.objects.create(name="oauth:admin", description="Admin", is_default=True)
    url = docs.serve("/a", docs.document("/a"))
    response = get_authorize(
        logged_in, authorize_params(client_for(url), challenge="x" * 43, scope="oauth:admin")
    )
    assert response.status_code == 302
    assert response["Location"].startswith(CALLBACK + "?") and "error=invalid_scope" in response["Location"]


def test_refresh_token_grant_only_when_asked_and_allowed(docs, db, settings):
    url = docs.serve("/g", docs.document("/g", grant_types=["authorization_code"]))
    assert cimd.load_client(url).grant_types == ["authorization_code"]
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "SELF_REGISTERED_GRANT_TYPES": ["authorization_code"]}
    url = docs.serve("/g2", docs.document("/g2"))
    assert cimd.load_client(url).grant_types == ["authorization_code"]


def test_self_registered_audiences_are_given(docs, db, settings):
    settings.OAUTH_SERVER = {
        **settings.OAUTH_SERVER,
        "SELF_REGISTERED_AUDIENCES": ["https://mcp.example/mcp/"],
    }
    url = docs.serve("/aud", docs.document("/aud"))
    assert cimd.load_client(url).audiences == ["https://mcp.example/mcp/"]


def test_a_blocked_host_is_refused_and_its_clients_stop_working(docs, db):
    url = docs.serve("/blk", docs.document("/blk"))
    client = cimd.load_client(url)
    block, disabled = cimd.block_host("127.0.0.1", "abuse")
    assert disabled == 1
    client.refresh_from_db()
    assert not client.is_enabled
    Client.objects.filter(pk=client.pk).update(is_enabled=True)  # even re-enabled: the block holds
    assert cimd.load_client(url) is None
    other = docs.serve("/blk2", docs.document("/blk2"))
    assert cimd.load_client(other) is None
    assert docs.hits.get("/blk2") is None
    assert failures(other)[0]["reason"] == "host_blocked"


def test_blocked_hosts_setting_and_allowlist(docs, db, settings):
    url = docs.serve("/h", docs.document("/h"))
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "CIMD_BLOCKED_HOSTS": [".0.0.1"]}
    assert cimd.load_client(url) is None
    settings.OAUTH_SERVER = {
        **settings.OAUTH_SERVER,
        "CIMD_BLOCKED_HOSTS": [],
        "CIMD_ALLOWED_HOSTS": ["mcp.example"],
    }
    assert cimd.load_client(url) is None
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "CIMD_ALLOWED_HOSTS": ["127.0.0.1"]}
    assert cimd.load_client(url) is not None
    assert [d["reason"] for d in failures(url)] == ["host_blocked", "host_not_allowed"]


def test_cimd_can_be_turned_off(docs, db, settings, client):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "CIMD_ENABLED": False}
    url = docs.serve("/off", docs.document("/off"))
    assert not cimd.is_document_url(url)
    metadata = client.get("/oauth/.well-known/openid-configuration").json()
    assert "client_id_metadata_document_supported" not in metadata
    response = client.post(TOKEN_URL, {"grant_type": "authorization_code", "code": "x", "client_id": url})
    assert response.status_code == 401
    assert docs.hits.get("/off") is None


# --- admin -----------------------------------------------------------------------------------------------
def test_admin_filters_self_registered_clients_and_blocks_their_host(docs, admin_client):
    url = docs.serve("/adm", docs.document("/adm"))
    client = cimd.load_client(url)
    manual = Client.objects.create_client(
        name="Manual app", client_type="public", grant_types=["authorization_code"], redirect_uris=[CALLBACK]
    )[0]
    page = admin_client.get("/admin/oauth_server/client/?registration_source__exact=cimd")
    assert page.status_code == 200
    assert url in page.content.decode() and manual.client_id not in page.content.decode()
    change = admin_client.get(f"/admin/oauth_server/client/{client.pk}/change/")
    assert f"127.0.0.1:{docs.port}" in change.content.decode()
    response = admin_client.post(
        "/admin/oauth_server/client/", {"action": "block_hosts", "_selected_action": [client.pk, manual.pk]}
    )
    assert response.status_code == 302
    assert list(BlockedClientHost.objects.values_list("host", flat=True)) == ["127.0.0.1"]
    client.refresh_from_db()
    manual.refresh_from_db()
    assert not client.is_enabled and manual.is_enabled


def test_admin_blocked_host_page(admin_client, docs):
    url = docs.serve("/bh", docs.document("/bh"))
    client = cimd.load_client(url)
    response = admin_client.post(
        "/admin/oauth_server/blockedclienthost/add/", {"host": "127.0.0.1", "reason": "spam"}
    )
    assert response.status_code == 302
    client.refresh_from_db()
    assert not client.is_enabled


# --- discovery, well-known URLs, checks ---------------------------------------------------------------
def test_discovery_advertises_metadata_documents(client, db):
    metadata = client.get("/oauth/.well-known/oauth-authorization-server").json()
    assert metadata["client_id_metadata_document_supported"] is True
    assert "none" in metadata["token_endpoint_auth_methods_supported"]
    assert "S256" in metadata["code_challenge_methods_supported"]


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-authorization-server/oauth", "/.well-known/openid-configuration/oauth"]
)
def test_the_path_aware_well_known_urls_serve_the_same_document(client, db, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.json() == client.get("/oauth/.well-known/openid-configuration").json()
    assert response.json()["issuer"].endswith("/oauth")
    assert response["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/oauth-authorization-server/other",
        "/.well-known/oauth-authorization-server/oauth/x",
        "/.well-known/openid-configuration/admin",
    ],
)
def test_other_issuer_paths_are_not_found(client, db, path):
    assert client.get(path).status_code == 404


def _ids(**kwargs) -> set[str]:
    return {m.id for m in run_checks(**kwargs) if m.id.startswith("oauth_server.")}


def test_check_warns_when_the_root_well_known_url_is_missing(settings):
    assert "oauth_server.W011" not in _ids()
    settings.ROOT_URLCONF = "tests.urls_without_wellknown"
    assert "oauth_server.W011" in _ids()


@pytest.mark.parametrize("name, value", [("CIMD_ALLOW_HTTP_LOOPBACK", True), ("CIMD_CA_FILE", "/tmp/ca.pem")])
def test_check_deploy_refuses_the_development_settings(settings, name, value):
    assert "oauth_server.E004" not in _ids(include_deployment_checks=True)
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, name: value}
    assert "oauth_server.E004" in _ids(include_deployment_checks=True)
    assert "oauth_server.E004" not in _ids()  # only under --deploy


@pytest.mark.once
@pytest.mark.parametrize("env", [{"DEMO_CIMD_ALLOW_LOOPBACK": "1"}, {"DEMO_CIMD_CA_FILE": "/tmp/ca.pem"}])
def test_the_demo_environment_variables_are_refused_by_check_deploy(env):
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("DEMO_CIMD_")}
    command = [sys.executable, "manage.py", "check", "--deploy"]
    clean = subprocess.run(command, cwd=ROOT, env=base, capture_output=True, text=True)
    assert "oauth_server.E004" not in clean.stdout + clean.stderr
    result = subprocess.run(command, cwd=ROOT, env={**base, **env}, capture_output=True, text=True)
    assert "oauth_server.E004" in result.stdout + result.stderr
    assert result.returncode != 0


def test_the_demo_settings_honour_the_environment(monkeypatch):
    import importlib

    import example_project.settings as demo

    monkeypatch.setenv("DEMO_CIMD_ALLOW_LOOPBACK", "1")
    monkeypatch.setenv("DEMO_CIMD_CA_FILE", "/tmp/ca.pem")
    try:
        reloaded = importlib.reload(demo)
        assert reloaded.OAUTH_SERVER["CIMD_ALLOW_HTTP_LOOPBACK"] is True
        assert reloaded.OAUTH_SERVER["CIMD_CA_FILE"] == "/tmp/ca.pem"
    finally:
        monkeypatch.delenv("DEMO_CIMD_ALLOW_LOOPBACK")
        monkeypatch.delenv("DEMO_CIMD_CA_FILE")
        reloaded = importlib.reload(demo)
    assert "CIMD_ALLOW_HTTP_LOOPBACK" not in reloaded.OAUTH_SERVER
