"""The report builder: a service that reads a user's files *for* the user (token exchange, RFC 8693).

    user's client (the demo CLI)  --token for the report builder-->  GET /api/my-report/
    report builder  --token exchange, as client report-builder-->  POST /oauth/token/
                    <-- a new token: files API only, files:read, act = {"sub": "report-builder"}
    report builder  --the new token-->  GET /api/files/  (sees alice, and who acts for her)

The user's token is for the report builder (its ``aud`` is ``/api/my-report/``): the files API would
refuse it, and forwarding it would hand the files API a token that is not for it. So the service
trades it at the token endpoint, over HTTP like any other client, for a token of its own that is
narrower (one API, ``files:read``, no longer lived) and says who acts for whom (``act``). It never
reuses the user's token elsewhere and never keeps the exchanged one.

``seed_demo`` registers the client (``seed.REPORT_BUILDER``): the token-exchange grant only, the
files API as its only audience, ``/api/my-report/`` as the API it serves (whose tokens it may
exchange). ``python -m example_project.demo.cli report`` calls it; docs/token-exchange.md, "Try it
in the demo".
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils.translation import gettext as _
from rest_framework.request import Request
from rest_framework.response import Response

from oauth_server.resource.drf import BearerTokenAuthentication, HasScope
from oauth_server.resource.transport import read_authorization

from . import rp, seed, site
from .api import DemoAPIView

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
# What the report needs, and all the exchanged token may carry.
SCOPE = "files:read"
# Its registration: what a real service would have in its configuration.
CREDENTIALS = rp.Credentials(
    client_id=seed.REPORT_BUILDER.client_id, client_secret=seed.REPORT_BUILDER.client_secret or ""
)


class ExchangeFailed(Exception):
    """The token endpoint or the files API did not give what the report needs."""

    def __init__(self, step: str, answer: dict[str, Any]) -> None:
        super().__init__(step)
        self.step = step
        self.answer = answer


def server_url() -> str:
    """Where the service reaches the authorization server and the files API: configured, never the
    Host header of the request being served (as the Demo Web App, client_views.server_url)."""
    configured = getattr(django_settings, "DEMO_CLIENT_SERVER_URL", None)
    return site.normalize_base_url(configured or django_settings.DEMO_BASE_URL)


def exchange(server: str, subject_token: str) -> dict[str, Any]:
    """RFC 8693 2.1: the user's token for one for the files API with ``files:read``; the answer."""
    data = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "resource": site.files_api_url(server),
        "scope": SCOPE,
    }
    try:
        response = rp._http().post(
            server + reverse("oauth2_provider:token"),
            data=data,
            auth=(CREDENTIALS.client_id, CREDENTIALS.client_secret),
            timeout=rp.HTTP_TIMEOUT,
        )
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ExchangeFailed("token_exchange", {"status": None, "body": {"error": str(exc)}}) from exc
    if response.status_code != 200 or not isinstance(body.get("access_token"), str):
        raise ExchangeFailed("token_exchange", {"status": response.status_code, "body": body})
    return body


def build_report(server: str, subject_token: str) -> dict[str, Any]:
    """Exchange, call the files API with the new token, and summarise what it answered."""
    exchanged = exchange(server, subject_token)
    listed = rp.call_api("GET", site.files_api_url(server), exchanged["access_token"])
    body = listed.get("body")
    if not listed["ok"] or not isinstance(body, dict) or "delegation" not in body:
        raise ExchangeFailed("files_api", {"status": listed["status"], "body": body})
    files = body.get("files") or []
    saw = body["delegation"]
    sizes = {f.get("name"): len(f.get("content") or "") for f in files}
    return {
        "report": "your-files",
        "summary": _("%(actor)s read %(count)d file(s) of %(user)s, with a token for the files API only.")
        % {"actor": saw.get("actor"), "count": len(files), "user": saw.get("on_behalf_of")},
        "for": saw.get("on_behalf_of"),
        "prepared_by": CREDENTIALS.client_id,
        "files": len(files),
        "characters": sum(sizes.values()),
        "largest": max(sizes, key=sizes.get) if sizes else None,
        # What the token endpoint gave the service (never the token itself).
        "exchange": {
            "issued_token_type": exchanged.get("issued_token_type"),
            "scope": exchanged.get("scope"),
            "expires_in": exchanged.get("expires_in"),
            "resource": site.files_api_url(server),
        },
        # What the files API saw: the user, and who acts for them (the token's act claim).
        "files_api_saw": saw,
    }


class MyReportAuthentication(BearerTokenAuthentication):
    """Tokens for the report builder (``/api/my-report/``), not the site's default (files) audience."""

    def get_audience(self, request) -> str:
        return site.my_report_url(django_settings.DEMO_BASE_URL)


class MyReportView(DemoAPIView):
    """``GET /api/my-report/`` with the user's token (``files:read``, audience the report builder)."""

    authentication_classes = [MyReportAuthentication]
    permission_classes = [HasScope(SCOPE)]

    def get(self, request: Request) -> Response:
        found = read_authorization(request, ["Bearer"])
        if found is None:  # a DPoP-bound token: the service would need the user's key to present it
            return Response(
                {
                    "error": "invalid_request",
                    "error_description": _("The report builder takes Bearer tokens only."),
                },
                status=400,
            )
        try:
            report = build_report(server_url(), found[1])
        except ExchangeFailed as failed:
            return Response(
                {
                    "error": "bad_gateway",
                    "error_description": _("The report builder could not read your files: %(step)s failed.")
                    % {"step": failed.step},
                    "step": failed.step,
                    "answer": failed.answer,
                },
                status=502,
            )
        return Response(report)
