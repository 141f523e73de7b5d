"""Setup steps of the HTTP benchmark that run inside a Django site: this app's (the demo, with
``benchmarks.bench_site.settings``) or plain django-oauth-toolkit's (the project http_bench.py
generates in a throw-away virtualenv).

Run as a script by ``benchmarks/http_bench.py``, with the site's Python and settings in the
environment; it prints one JSON object. Only Django, DOT and the standard library are imported at
module level, so the same file serves both sites (``--kind app`` reaches into ``oauth_server``).

    python bench_prep.py setup --kind app --base-url http://127.0.0.1:18510
    python bench_prep.py items --kind dot --codes 5000 --refresh 5000 --out-dir /tmp/x
    python bench_prep.py sql --kind app --base-url http://127.0.0.1:18510
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import secrets
import sys
import uuid
from datetime import timedelta
from typing import Any

# One PKCE pair for every prepared code: a code is single use, its challenge need not be unique.
CODE_VERIFIER = "bench-verifier-" + "v" * 50
CODE_CHALLENGE = (
    base64.urlsafe_b64encode(hashlib.sha256(CODE_VERIFIER.encode()).digest()).rstrip(b"=").decode()
)
USERNAME = "alice"

# This app's clients are the demo's (example_project/demo/seed.py): fixed ids and secrets.
APP = {
    "cc_client": ("reports-service", "reports-service-secret-DEMO-ONLY-never-use-in-production"),
    "cc_scope": "reports:read",
    "web_client": ("demo-web-app", "demo-web-app-secret-DEMO-ONLY-never-use-in-production"),
    "code_scope": "files:read",
    "introspector": ("files-api", "files-api-secret-DEMO-ONLY-never-use-in-production"),
    "redirect_path": "/demo/callback",
}
# Plain DOT: the site http_bench.py generates; its clients are created by ``setup --kind dot``.
DOT_SECRET = "dot-bench-secret-" + "s" * 47
DOT = {
    "cc_pbkdf2_client": ("dot-cc-pbkdf2", DOT_SECRET),
    "cc_plain_client": ("dot-cc-plain", DOT_SECRET),
    "cc_scope": "read",
    "web_client": ("dot-web", DOT_SECRET),
    "code_scope": "read",
    "redirect_path": "/callback",
}


def config(kind: str) -> dict[str, Any]:
    return APP if kind == "app" else DOT


def basic(client: tuple[str, str]) -> str:
    """RFC 6749 2.3.1 Basic credentials (the ids and secrets here need no form-encoding)."""
    return "Basic " + base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()


def setup_django() -> None:
    import django

    django.setup()


def setup(kind: str, base_url: str) -> dict[str, Any]:
    """Migrate, then the clients and the user: the demo's seed for the app; three DOT applications."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if kind == "app":
        from example_project.demo import seed

        seed.seed(base_url)
        return {"ok": True}
    from django.contrib.auth import get_user_model
    from oauth2_provider.models import get_application_model

    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username=USERNAME)
    application = get_application_model()
    specs = [
        (DOT["cc_pbkdf2_client"], application.GRANT_CLIENT_CREDENTIALS, True, ""),
        (DOT["cc_plain_client"], application.GRANT_CLIENT_CREDENTIALS, False, ""),
        (DOT["web_client"], application.GRANT_AUTHORIZATION_CODE, False, base_url + DOT["redirect_path"]),
    ]
    for (client_id, secret), grant_type, hashed, redirect_uri in specs:
        if application.objects.filter(client_id=client_id).exists():
            continue
        # DOT hashes the secret on save unless hash_client_secret is off (PBKDF2 by default).
        application.objects.create(
            name=client_id,
            client_id=client_id,
            client_secret=secret,
            hash_client_secret=hashed,
            client_type=application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=grant_type,
            redirect_uris=redirect_uri,
            user=user,
        )
    return {"ok": True}


def _web_client_and_user(kind: str):
    from django.contrib.auth import get_user_model
    from oauth2_provider.models import get_application_model

    client = get_application_model().objects.get(client_id=config(kind)["web_client"][0])
    return client, get_user_model().objects.get(username=USERNAME)


def make_codes(kind: str, base_url: str, count: int) -> list[str]:
    """``count`` unused authorization codes of the web client for the user, one bulk insert.

    This app stores a code's SHA-256 (oauth_server.codes); DOT stores the code itself. Each code
    lives an hour here (the site's 60 s lifetime applies to codes it issues itself).
    """
    from django.utils import timezone
    from oauth2_provider.models import get_grant_model

    grant_model = get_grant_model()
    client, user = _web_client_and_user(kind)
    expires = timezone.now() + timedelta(hours=1)
    cfg = config(kind)
    codes = [secrets.token_urlsafe(24) for _ in range(count)]
    rows = [
        grant_model(
            user=user,
            application=client,
            code=hashlib.sha256(code.encode()).hexdigest() if kind == "app" else code,
            expires=expires,
            redirect_uri=base_url + cfg["redirect_path"],
            scope=cfg["code_scope"],
            code_challenge=CODE_CHALLENGE,
            code_challenge_method="S256",
        )
        for code in codes
    ]
    grant_model.objects.bulk_create(rows, batch_size=2000)
    return codes


def make_refresh_tokens(kind: str, base_url: str, count: int) -> list[str]:
    """``count`` live refresh tokens of the web client, each with the access token it came with (DOT
    reads the original scope from it), stored as the site stores them (DOT's ``set_token_value``)."""
    from django.utils import timezone
    from oauth2_provider.models import get_access_token_model, get_refresh_token_model, set_token_value

    access_model, refresh_model = get_access_token_model(), get_refresh_token_model()
    client, user = _web_client_and_user(kind)
    expires = timezone.now() + timedelta(hours=1)
    scope = config(kind)["code_scope"]
    extra: dict[str, Any] = {}
    if kind == "app":
        from example_project.demo import site

        extra = {"audience": site.files_api_url(base_url)}
    values: list[str] = []
    for start in range(0, count, 2000):
        n = min(2000, count - start)
        accesses = []
        for _ in range(n):
            access = access_model(user=user, application=client, expires=expires, scope=scope, **extra)
            if kind == "app":
                access.jti = uuid.uuid4().hex
            set_token_value(access, secrets.token_urlsafe(32))
            accesses.append(access)
        accesses = access_model.objects.bulk_create(accesses)
        refreshes = []
        for access in accesses:
            value = secrets.token_urlsafe(32)
            values.append(value)
            refresh = refresh_model(
                user=user, application=client, access_token=access, token_family=uuid.uuid4()
            )
            set_token_value(refresh, value)
            refreshes.append(refresh)
        refresh_model.objects.bulk_create(refreshes)
    return values


def items(kind: str, base_url: str, codes: int, refresh: int, out_dir: str) -> dict[str, Any]:
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {}
    if codes:
        (out / "codes.txt").write_text("\n".join(make_codes(kind, base_url, codes)) + "\n")
        result["codes"] = str(out / "codes.txt")
    if refresh:
        (out / "refresh.txt").write_text("\n".join(make_refresh_tokens(kind, base_url, refresh)) + "\n")
        result["refresh"] = str(out / "refresh.txt")
    return result


def requests_for(kind: str, base_url: str) -> dict[str, dict[str, Any]]:
    """One request per endpoint, as the load generator sends them (test-client keyword form)."""
    cfg = config(kind)
    web = cfg["web_client"]
    code_body = {
        "grant_type": "authorization_code",
        "redirect_uri": base_url + cfg["redirect_path"],
        "code_verifier": CODE_VERIFIER,
    }
    if kind == "app":
        return {
            "client_credentials": {
                "method": "post",
                "path": "/oauth/token/",
                "data": {"grant_type": "client_credentials", "scope": cfg["cc_scope"]},
                "auth": cfg["cc_client"],
            },
            "code_exchange": {"method": "post", "path": "/oauth/token/", "data": code_body, "auth": web},
            "refresh": {
                "method": "post",
                "path": "/oauth/token/",
                "data": {"grant_type": "refresh_token"},
                "auth": web,
            },
            "introspection": {
                "method": "post",
                "path": "/oauth/introspect/",
                "data": {},
                "auth": cfg["introspector"],
            },
            "discovery": {"method": "get", "path": "/oauth/.well-known/openid-configuration"},
            "jwks": {"method": "get", "path": "/oauth/.well-known/jwks.json"},
            "not_found": {"method": "get", "path": "/bench-not-found/"},
            "api_protected": {"method": "get", "path": "/bench/api/protected/"},
            "api_open": {"method": "get", "path": "/bench/api/open/"},
        }
    cc = {"grant_type": "client_credentials", "scope": cfg["cc_scope"]}
    return {
        "client_credentials_pbkdf2": {
            "method": "post",
            "path": "/o/token/",
            "data": cc,
            "auth": cfg["cc_pbkdf2_client"],
        },
        "client_credentials": {
            "method": "post",
            "path": "/o/token/",
            "data": cc,
            "auth": cfg["cc_plain_client"],
        },
        "code_exchange": {"method": "post", "path": "/o/token/", "data": code_body, "auth": web},
        "refresh": {
            "method": "post",
            "path": "/o/token/",
            "data": {"grant_type": "refresh_token"},
            "auth": web,
        },
        "not_found": {"method": "get", "path": "/bench-not-found/"},
    }


def statement_count(statements: list[str]) -> int:
    """Statements besides BEGIN/COMMIT/ROLLBACK (SQLite's backend sends BEGIN through the cursor,
    psycopg does not: leaving them out makes the databases comparable; savepoints count)."""
    return sum(1 for sql in statements if not re.match(r"\s*(BEGIN|COMMIT|ROLLBACK)\b", sql, re.IGNORECASE))


def count_sql(kind: str, base_url: str) -> dict[str, Any]:
    """SQL statements of one request per endpoint, in-process (Django's test client), after one
    warm-up request of the same kind (caches filled, as in a running server).

    Counted with ``connection.execute_wrapper``: every statement Django sends through a cursor,
    savepoints included; BEGIN and COMMIT are not (psycopg and sqlite3 issue them for Django's
    ``set_autocommit``), nor is opening the connection.
    """
    from django.db import connection
    from django.test import Client as HttpClient

    http = HttpClient()
    codes = make_codes(kind, base_url, 3)
    refresh = make_refresh_tokens(kind, base_url, 2)
    specs = requests_for(kind, base_url)

    def send(name: str, extra: dict[str, str] | None = None, bearer: str | None = None):
        spec = specs[name]
        headers = {}
        if spec.get("auth"):
            headers["HTTP_AUTHORIZATION"] = basic(spec["auth"])
        if bearer:
            headers["HTTP_AUTHORIZATION"] = "Bearer " + bearer
        if spec["method"] == "post":
            return http.post(spec["path"], {**spec["data"], **(extra or {})}, **headers)
        return http.get(spec["path"], **headers)

    # Tokens for the endpoints that take one: a cc token (protected API) and a user's (introspection).
    cc_token = None
    if kind == "app":
        cc_token = send("client_credentials").json()["access_token"]
        user_token = send("code_exchange", {"code": codes.pop()}).json()["access_token"]
    result: dict[str, Any] = {}
    for name in specs:
        extras: list[dict[str, str]] = [{}, {}]
        bearer = None
        if name == "code_exchange":
            extras = [{"code": codes.pop()}, {"code": codes.pop()}]
        elif name == "refresh":
            extras = [{"refresh_token": refresh.pop()}, {"refresh_token": refresh.pop()}]
        elif name == "introspection":
            extras = [{"token": user_token}, {"token": user_token}]
        elif name == "api_protected":
            bearer = cc_token
        send(name, extras[0], bearer)  # warm-up
        statements: list[str] = []

        def record(execute, sql, params, many, context, _statements=statements):
            _statements.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            response = send(name, extras[1], bearer)
        result[name] = {
            "status": response.status_code,
            "count": statement_count(statements),
            "sql": statements,
        }
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["setup", "items", "sql"])
    parser.add_argument("--kind", choices=["app", "dot"], required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--codes", type=int, default=0)
    parser.add_argument("--refresh", type=int, default=0)
    parser.add_argument("--out-dir", default=".")
    args = parser.parse_args(argv)
    setup_django()
    if args.command == "setup":
        result = setup(args.kind, args.base_url)
    elif args.command == "items":
        result = items(args.kind, args.base_url, args.codes, args.refresh, args.out_dir)
    else:
        result = count_sql(args.kind, args.base_url)
    sys.stdout.write("BENCH_PREP " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
