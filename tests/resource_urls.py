"""Test-only URLconf and helpers for the resource-server kit's tests (``tests/test_resource_*.py``).

Use with ``override_settings(ROOT_URLCONF="tests.resource_urls")``: the authorization server is
mounted at ``/oauth/`` (so tokens are minted by the real token endpoint, issuer
``http://testserver/oauth``) and the protected test APIs under ``/rs/``.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.http import JsonResponse
from django.urls import include, path
from django.views import View
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from oauth_server.resource import RequireScopesMixin, require_scopes
from oauth_server.resource.drf import (
    BearerTokenAuthentication,
    HasAllScopes,
    HasAnyScope,
    HasScope,
    ReadWriteScopes,
)
from oauth_server.resource.metadata import protected_resource_metadata_urls
from oauth_server.views.login import LoginView
from tests.helpers import token_request

ISSUER = "http://testserver/oauth"
API = "https://api.example.com/"
REPORTS_API = "https://api.example.com/reports"  # a second API of the site (per-view audience)
RS_SETTINGS = {"ISSUER": ISSUER, "AUDIENCE": API, "JWKS_SOURCE": "local"}


# --- protected views ------------------------------------------------------------------------------------
def describe(request) -> dict[str, Any]:
    claims = request.oauth_token
    return {"sub": claims.sub, "client_id": claims.client_id, "scopes": sorted(claims.scopes)}


class DRFBase(APIView):
    authentication_classes = [BearerTokenAuthentication]

    def get(self, request):
        return Response(
            {"user": request.user.username, "client_id": request.auth.client_id, "method": request.method}
        )

    def post(self, request):
        return Response({"method": "POST", "data": dict(request.data)})

    put = delete = post


class FilesInstance(DRFBase):
    permission_classes = [HasScope("files:read")]


class FilesClass(DRFBase):
    permission_classes = [HasScope.of("files:read")]


class AnyScope(DRFBase):
    permission_classes = [HasAnyScope("a", "b")]


class AllScopes(DRFBase):
    permission_classes = [HasAllScopes("a", "b")]


class ReadWrite(DRFBase):
    permission_classes = [ReadWriteScopes(read="files:read", write="files:write")]


class Composed(DRFBase):
    permission_classes = [IsAuthenticated & HasScope("files:read"), HasScope("files:read") & IsAuthenticated]


@require_scopes("files:read")
def plain_files(request):
    return JsonResponse(describe(request))


@require_scopes("a", "b", any=True)
def plain_any(request):
    return JsonResponse(describe(request))


@require_scopes
def plain_token(request):
    return JsonResponse({"method": request.method, **describe(request)})


class PlainReadWrite(RequireScopesMixin, View):
    read_scopes = ["files:read"]
    write_scopes = ["files:write"]

    def get(self, request):
        return JsonResponse({"method": "GET", **describe(request)})

    def post(self, request):
        return JsonResponse({"method": "POST", "body": request.POST.get("name"), **describe(request)})


class PlainReadOnlyMisconfigured(RequireScopesMixin, View):
    read_scopes = ["files:read"]

    def get(self, request):
        return JsonResponse(describe(request))

    def post(self, request):  # no write_scopes: a configuration error, never "any token"
        return JsonResponse(describe(request))


class PlainAllScopes(RequireScopesMixin, View):
    required_scopes = ["a", "b"]

    def get(self, request):
        return JsonResponse(describe(request))


@require_scopes("reports:read", audience=REPORTS_API)
def plain_reports(request):
    return JsonResponse(describe(request))


class PlainReportsMixin(RequireScopesMixin, View):
    required_scopes = ["reports:read"]
    audience = REPORTS_API

    def get(self, request):
        return JsonResponse(describe(request))


class DRFReports(DRFBase):
    authentication_classes = [BearerTokenAuthentication.with_audience(REPORTS_API)]
    permission_classes = [HasScope("reports:read")]


class DRFAuthenticatedOnly(DRFBase):
    """DRF's own IsAuthenticated: its 401 challenge comes from ``authenticate_header``."""

    permission_classes = [IsAuthenticated]


rs_patterns = [
    path("drf/files/", FilesInstance.as_view()),
    path("drf/files-class/", FilesClass.as_view()),
    path("drf/any/", AnyScope.as_view()),
    path("drf/all/", AllScopes.as_view()),
    path("drf/rw/", ReadWrite.as_view()),
    path("drf/composed/", Composed.as_view()),
    path("plain/files/", plain_files),
    path("plain/any/", plain_any),
    path("plain/token/", plain_token),
    path("plain/rw/", PlainReadWrite.as_view()),
    path("plain/misconfigured/", PlainReadOnlyMisconfigured.as_view()),
    path("plain/all/", PlainAllScopes.as_view()),
    path("plain/reports/", plain_reports),
    path("plain/reports-mixin/", PlainReportsMixin.as_view()),
    path("drf/reports/", DRFReports.as_view()),
    path("drf/authenticated/", DRFAuthenticatedOnly.as_view()),
]

urlpatterns = [
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("oauth/", include("oauth_server.urls")),
    path("rs/", include(rs_patterns)),
    # RFC 9728 metadata of OAUTH_RESOURCE_SERVER["PROTECTED_RESOURCES"] (tests/test_resource_metadata.py).
    *protected_resource_metadata_urls(),
]


# --- test support ---------------------------------------------------------------------------------------
def client_credentials_token(browser, client, scope: str) -> str:
    """An access token from the real token endpoint (client_credentials)."""
    response = token_request(
        browser, {"grant_type": "client_credentials", "scope": scope}, client=client, secret=client.raw_secret
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict) -> str:
    return b64(json.dumps(value).encode())


def token_parts(token: str) -> tuple[dict, dict]:
    header, payload, _sig = token.split(".")
    decode = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))  # noqa: E731
    return decode(header), decode(payload)


class JWKSServer:
    """A tiny real HTTP server on 127.0.0.1 serving a JWKS the test controls, counting fetches."""

    def __init__(self, document: dict | None = None):
        self.document: dict = document if document is not None else {"keys": []}
        self.status = 200
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.fetches += 1
                body = json.dumps(server.document).encode() if server.status == 200 else b"oops"
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/jwks.json"

    def __enter__(self) -> JWKSServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
