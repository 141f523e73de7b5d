"""A command-line client of the demo: signs in with the device authorization grant (RFC 8628), then
calls an API. It talks HTTP only (requests + Authlib), imports nothing of ``oauth_server``.

    python -m example_project.demo.cli login [--base-url http://127.0.0.1:8000]
    python -m example_project.demo.cli report [--base-url http://127.0.0.1:8000]

Both print a code and a URL and poll the token endpoint (honouring ``interval`` and ``slow_down``).
``login`` then lists the signed-in user's files (a token for the files API); ``report`` calls the
report builder, a service that reads the user's files *for* them by token exchange (RFC 8693), and
prints its report, with who acted for whom. Each token is for one API: the CLI names it with RFC 8707
``resource``. ``seed_demo`` registers its client (``demo-cli``, public).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
CLIENT_ID = "demo-cli"
DEFAULT_SCOPE = "files:read offline_access"
# The APIs, under the base URL: also their identifiers (the ``resource`` a token is asked for).
FILES_API_PATH = "/api/files/"
MY_REPORT_PATH = "/api/my-report/"


class LoginFailed(Exception):
    """The user denied, the code expired, or the server answered something unexpected."""


def discover(base_url: str) -> dict[str, Any]:
    """The server's RFC 8414 metadata (endpoints), from its well-known URL."""
    response = requests.get(f"{base_url}/oauth/.well-known/oauth-authorization-server", timeout=10)
    response.raise_for_status()
    return response.json()


def start(metadata: dict[str, Any], client_id: str, scope: str) -> dict[str, Any]:
    """RFC 8628 3.1: ask for a device code and a user code."""
    response = requests.post(
        metadata["device_authorization_endpoint"], data={"client_id": client_id, "scope": scope}, timeout=10
    )
    if response.status_code != 200:
        raise LoginFailed(f"device authorization failed: {response.status_code} {response.text}")
    return response.json()


def poll(
    session: OAuth2Session,
    token_endpoint: str,
    codes: dict[str, Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = print,
    resource: str | None = None,
) -> dict[str, Any]:
    """RFC 8628 3.4-3.5: poll until the user decides; ``slow_down`` adds 5 seconds for good.
    ``resource`` (RFC 8707): the API the token is for."""
    extra = {"resource": resource} if resource else {}
    interval = int(codes.get("interval") or 5)
    deadline = time.monotonic() + int(codes.get("expires_in") or 600)
    while time.monotonic() < deadline:
        sleep(interval)
        try:
            return session.fetch_token(
                token_endpoint, grant_type=GRANT_TYPE, device_code=codes["device_code"], **extra
            )
        except OAuthError as error:
            if error.error == "authorization_pending":
                continue
            if error.error == "slow_down":
                interval += 5
                say(f"(the server asks to poll less often: every {interval} s)")
                continue
            raise LoginFailed(f"{error.error}: {error.description}") from error
    raise LoginFailed("expired_token: the code expired before it was approved")


def sign_in(
    base_url: str,
    resource: str,
    *,
    client_id: str = CLIENT_ID,
    scope: str = DEFAULT_SCOPE,
    say=print,
    sleep=time.sleep,
) -> tuple[OAuth2Session, dict[str, Any]]:
    """The device flow, for a token for ``resource`` (an API's URL); returns (session, token)."""
    metadata = discover(base_url)
    codes = start(metadata, client_id, scope)
    say(f"To sign in, open {codes['verification_uri']} and enter the code {codes['user_code']}")
    if codes.get("verification_uri_complete"):
        say(f"(or open {codes['verification_uri_complete']})")
    say("Waiting for approval...")
    session = OAuth2Session(client_id=client_id, token_endpoint_auth_method="none", scope=scope)
    token = poll(session, metadata["token_endpoint"], codes, sleep=sleep, say=say, resource=resource)
    return session, token


def login(
    base_url: str, *, client_id: str = CLIENT_ID, scope: str = DEFAULT_SCOPE, say=print, sleep=time.sleep
):
    """Sign in for the files API and list the files; returns (token, files)."""
    files_api = base_url + FILES_API_PATH
    session, token = sign_in(base_url, files_api, client_id=client_id, scope=scope, say=say, sleep=sleep)
    response = session.get(files_api, timeout=10)
    response.raise_for_status()
    return token, response.json()


def report(
    base_url: str, *, client_id: str = CLIENT_ID, scope: str = DEFAULT_SCOPE, say=print, sleep=time.sleep
):
    """Sign in for the report builder and ask it for the user's report; returns (token, report).

    The token is for the report builder only (the files API would refuse it): the report builder
    exchanges it for a files-API token of its own to read the files for the user."""
    my_report = base_url + MY_REPORT_PATH
    session, token = sign_in(base_url, my_report, client_id=client_id, scope=scope, say=say, sleep=sleep)
    response = session.get(my_report, timeout=30)
    if response.status_code != 200:
        raise LoginFailed(f"the report builder answered {response.status_code}: {response.text[:500]}")
    return token, response.json()


def print_report(data: dict[str, Any]) -> None:
    saw = data.get("files_api_saw") or {}
    print(data.get("summary", ""))
    print(
        f"  files: {data.get('files')}, characters: {data.get('characters')}, largest: {data.get('largest')}"
    )
    exchanged = data.get("exchange") or {}
    print(f"  the report builder's token: scope {exchanged.get('scope')}, for {exchanged.get('resource')}")
    print(f"  the files API saw: on behalf of {saw.get('on_behalf_of')}, act = {json.dumps(saw.get('act'))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m example_project.demo.cli", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {
        "login": sub.add_parser("login", help="sign in with the device grant and list your files"),
        "report": sub.add_parser(
            "report", help="sign in, then get your files report from the report builder (token exchange)"
        ),
    }
    for command in commands.values():
        command.add_argument(
            "--base-url", default=os.environ.get("DEMO_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
        )
        command.add_argument("--client-id", default=CLIENT_ID)
        command.add_argument("--scope", default=DEFAULT_SCOPE)
    args = parser.parse_args(argv)
    flow = login if args.command == "login" else report
    try:
        token, data = flow(args.base_url.rstrip("/"), client_id=args.client_id, scope=args.scope)
    except (LoginFailed, requests.RequestException) as exc:
        print(f"{args.command} failed: {exc}", file=sys.stderr)
        return 1
    if args.command == "report":
        print(f"Signed in (scope: {token.get('scope')}). The report builder says:")
        print_report(data)
        return 0
    print(f"Signed in (scope: {token.get('scope')}). Your files:")
    for item in data.get("files", []):
        print(f"  - {item.get('name')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
