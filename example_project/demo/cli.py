"""A command-line client of the demo: signs in with the device authorization grant (RFC 8628), then
calls the files API. It talks HTTP only (requests + Authlib), imports nothing of ``oauth_server``.

    python -m example_project.demo.cli login [--base-url http://127.0.0.1:8000]

It prints a code and a URL, polls the token endpoint (honouring ``interval`` and ``slow_down``),
and lists the signed-in user's files. ``seed_demo`` registers its client (``demo-cli``, public).
"""

from __future__ import annotations

import argparse
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
) -> dict[str, Any]:
    """RFC 8628 3.4-3.5: poll until the user decides; ``slow_down`` adds 5 seconds for good."""
    interval = int(codes.get("interval") or 5)
    deadline = time.monotonic() + int(codes.get("expires_in") or 600)
    while time.monotonic() < deadline:
        sleep(interval)
        try:
            return session.fetch_token(
                token_endpoint, grant_type=GRANT_TYPE, device_code=codes["device_code"]
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


def login(
    base_url: str, *, client_id: str = CLIENT_ID, scope: str = DEFAULT_SCOPE, say=print, sleep=time.sleep
):
    """The whole flow; returns (token, files)."""
    metadata = discover(base_url)
    codes = start(metadata, client_id, scope)
    say(f"To sign in, open {codes['verification_uri']} and enter the code {codes['user_code']}")
    if codes.get("verification_uri_complete"):
        say(f"(or open {codes['verification_uri_complete']})")
    say("Waiting for approval...")
    session = OAuth2Session(client_id=client_id, token_endpoint_auth_method="none", scope=scope)
    token = poll(session, metadata["token_endpoint"], codes, sleep=sleep, say=say)
    response = session.get(f"{base_url}/api/files/", timeout=10)
    response.raise_for_status()
    return token, response.json()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m example_project.demo.cli", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    login_parser = sub.add_parser("login", help="sign in with the device grant and list your files")
    login_parser.add_argument(
        "--base-url", default=os.environ.get("DEMO_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    )
    login_parser.add_argument("--client-id", default=CLIENT_ID)
    login_parser.add_argument("--scope", default=DEFAULT_SCOPE)
    args = parser.parse_args(argv)
    try:
        token, files = login(args.base_url.rstrip("/"), client_id=args.client_id, scope=args.scope)
    except (LoginFailed, requests.RequestException) as exc:
        print(f"Sign-in failed: {exc}", file=sys.stderr)
        return 1
    print(f"Signed in (scope: {token.get('scope')}). Your files:")
    for item in files.get("files", []):
        print(f"  - {item.get('name')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
