"""Secrets at rest: after a full run of every flow, no issued secret is anywhere in the database.

Every table is read, row by row and column by column (the models' tables and any other table the
database has), and every value is searched for each client secret, authorization code, access,
refresh and ID token, and the private parts of the signing keys: as is, base64-encoded, and inside
values that are themselves base64, signed or compressed (Django sessions). See docs/hardening.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
import zlib

import pytest
from django.db import connection
from jwcrypto import jwk, jws, jwt

from oauth_server import keys
from oauth_server.flows.clients import rotate_secret
from oauth_server.models import Client, SigningKey
from tests.factories import MachineClientFactory, ScopeFactory, UserFactory
from tests.helpers import basic_auth, exchange_code, get_code, token_request

PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")  # RFC 7518 6.3.2 / 6.2.2 (EC and OKP: d)


def _post(browser, url: str, data: dict, client, secret: str):
    response = browser.post(url, data, HTTP_AUTHORIZATION=basic_auth(client.client_id, secret))
    assert response.status_code == 200, (url, response.content)
    return response


def run_every_flow(browser) -> dict[str, list[str]]:
    """Issue one of everything through the real endpoints; return what was handed out, by kind."""
    issued: dict[str, list[str]] = {"secret": [], "code": [], "token": [], "id_token": []}
    user = UserFactory()
    browser.force_login(user)

    ScopeFactory(name="files:read")
    web, secret = Client.objects.create_client(
        name="At rest",
        client_type=Client.CLIENT_CONFIDENTIAL,
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=["https://app.example.com/cb"],
        scopes=["openid", "profile", "email", "files:read"],
    )
    issued["secret"].append(secret)
    secret = rotate_secret(web)  # the admin's rotation: the old one and the new one, both clear once
    issued["secret"].append(secret)
    web.raw_secret = secret

    code, verifier = get_code(browser, web, scope="openid profile email files:read")
    issued["code"].append(code)
    response = exchange_code(browser, web, code, verifier)
    assert response.status_code == 200, response.content
    first = response.json()
    issued["token"] += [first["access_token"], first["refresh_token"]]
    issued["id_token"].append(first["id_token"])

    refresh = token_request(
        browser,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        client=web,
        secret=secret,
    )
    assert refresh.status_code == 200, refresh.content
    second = refresh.json()
    issued["token"] += [second["access_token"], second["refresh_token"]]
    issued["id_token"].append(second["id_token"])

    pending, _ = get_code(browser, web, scope="files:read")  # approved, never exchanged
    issued["code"].append(pending)

    machine = MachineClientFactory(scopes=["reports:read"])
    issued["secret"].append(machine.raw_secret)
    cc = token_request(
        browser,
        {"grant_type": "client_credentials", "scope": "reports:read"},
        client=machine,
        secret=machine.raw_secret,
    )
    assert cc.status_code == 200, cc.content
    issued["token"].append(cc.json()["access_token"])

    # client_secret_jwt: the one secret the server keeps in a readable form, encrypted (never in clear).
    hmac_client, hmac_secret = Client.objects.create_client(
        name="HMAC at rest",
        client_type=Client.CLIENT_CONFIDENTIAL,
        grant_types=["client_credentials"],
        scopes=["reports:read"],
        token_endpoint_auth_method="client_secret_jwt",
    )
    issued["secret"].append(hmac_secret)
    hmac_secret = rotate_secret(hmac_client)
    issued["secret"].append(hmac_secret)
    signed = client_secret_assertion(hmac_client.client_id, hmac_secret)
    response = browser.post(
        "/oauth/token/",
        {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": signed,
        },
    )
    assert response.status_code == 200, response.content
    issued["token"].append(response.json()["access_token"])
    assert Client.objects.get(pk=hmac_client.pk).encrypted_client_secret

    userinfo = browser.get("/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {second['access_token']}")
    assert userinfo.status_code == 200, userinfo.content
    introspected = _post(browser, "/oauth/introspect/", {"token": second["access_token"]}, web, secret)
    assert introspected.json()["active"] is True
    _post(browser, "/oauth/introspect/", {"token": second["refresh_token"]}, web, secret)
    _post(browser, "/oauth/revoke/", {"token": second["refresh_token"]}, web, secret)
    return issued


def client_secret_assertion(client_id: str, secret: str) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": "http://testserver/oauth", "exp": now + 60}
    token = jwt.JWT(header={"alg": "HS256"}, claims={**claims, "jti": uuid.uuid4().hex})
    token.make_signed_token(jwk.JWK(kty="oct", k=jws.base64url_encode(secret.encode())))
    return token.serialize()


def private_key_material() -> list[str]:
    values = []
    for row in SigningKey.objects.all():
        private = json.loads(keys.decrypt_private_key(row.private_key, kid=row.kid).export_private())
        values += [private[name] for name in PRIVATE_JWK_MEMBERS if name in private]
    assert values, "no signing key was used"
    return values


def every_value_in_the_database() -> list[tuple[str, str]]:
    """(table.column, value as text) for every column of every row of every table."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT * FROM {quoted}")  # noqa: S608 (names come from the database itself)
            columns = [col[0] for col in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    if isinstance(value, memoryview | bytes | bytearray):
                        value = bytes(value).decode("latin-1")
                    found.append((f"{table}.{column}", str(value)))
    return found


def _b64decode(text: str) -> bytes | None:
    text = text.strip()
    if len(text) < 8 or not re.fullmatch(r"[A-Za-z0-9+/_=-]+", text):
        return None
    try:
        return base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def unwrapped(value: str, depth: int = 0) -> list[str]:
    """The value and what base64, signing (``a:b:c``, ``a.b.c``) or zlib may hide inside it."""
    layers = [value]
    if depth > 2:
        return layers
    for part in {value, *re.split(r"[:.]", value)}:
        raw = _b64decode(part)
        if raw is None:
            continue
        for candidate in (raw, _inflate(raw)):
            if candidate:
                layers += unwrapped(candidate.decode("latin-1"), depth + 1)
    return layers


def _inflate(raw: bytes) -> bytes | None:
    try:
        return zlib.decompress(raw)
    except zlib.error:
        return None


def encodings(secret: str) -> set[str]:
    raw = secret.encode()
    forms = {secret, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return forms | {form.rstrip("=") for form in forms}


@pytest.mark.django_db
def test_no_issued_secret_is_stored_anywhere(client):
    issued = run_every_flow(client)
    issued["private key"] = private_key_material()
    for token in issued.pop("id_token"):
        issued.setdefault("ID token", []).append(token)
        issued["ID token"].append(token.split(".")[2])  # its signature alone is unique to it too
    values = every_value_in_the_database()
    assert any(column.startswith("oauth_server_grant.") for column, _ in values)  # the dump sees codes
    assert len({column.split(".")[0] for column, _ in values}) >= 10

    leaks = []
    for column, value in values:
        haystack = "\n".join(unwrapped(value))
        if "PRIVATE KEY-----" in haystack:
            leaks.append(("PEM private key", column))
        for kind, secrets in issued.items():
            for secret in secrets:
                if any(form in haystack for form in encodings(secret)):
                    leaks.append((kind, column))
    assert not leaks, leaks


def test_the_search_finds_a_planted_secret(db):
    """The dump and the search are not blind: a code planted in clear, or base64'd in a session, is found."""
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session["stash"] = "planted-authorization-code-123"
    session.save()
    haystacks = ["\n".join(unwrapped(value)) for _, value in every_value_in_the_database()]
    assert any("planted-authorization-code-123" in h for h in haystacks)
