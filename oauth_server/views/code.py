"""The code page: a redirect URI the app serves, so a developer can try the code flow with curl.

Without an application to receive it, an authorization code ends up in the address bar of a failed
redirect. Register this page's URL (``/oauth/code/`` when the app is mounted at ``oauth/``) as a
redirect URI of a development client instead: after consent the browser lands here and the page
shows the code and the curl command that exchanges it (docs/integration.md, step 6).

It is not the deprecated out-of-band flow (``urn:ietf:wg:oauth:2.0:oob``), where any client could
have its codes displayed and a phisher could ask the user to paste one. Here:

- a code is shown only when it is genuine: an unexpired, unexchanged code (looked up by its
  SHA-256, as the token endpoint does) issued for this page's URL, to the user who is signed in
  and viewing it, for an enabled client that still has the page among its redirect URIs;
- only for **confidential** clients: a code is useless without the client's secret, so a code
  read off someone's screen cannot be redeemed by whoever asked for it (a public client would
  need nothing else, which is exactly the phishing of the out-of-band flow);
- nothing from the query string is echoed otherwise (no content spoofing on the server's origin):
  an ``error`` is named only when it is a standard OAuth error code;
- ``Referrer-Policy: no-referrer``, ``no-store``, no framing (``page_headers`` in urls.py).
"""

from __future__ import annotations

import shlex
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views import View

from ..models import Grant
from ..tokens import token_checksum
from .discovery import endpoint_url

TEMPLATE = "oauth_server/code.html"
MAX_CODE_LENGTH = 255  # Grant.code's column; a longer value cannot be one of ours

# RFC 6749 4.1.2.1 and OIDC Core 3.1.2.6: the only error values this page repeats.
KNOWN_ERRORS = frozenset(
    {
        "invalid_request",
        "unauthorized_client",
        "access_denied",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "invalid_request_uri",
        "invalid_request_object",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
    }
)


class CodePageView(View):
    """Shows the signed-in user the authorization code just issued to a confidential client that
    registered this page as its redirect URI, with the curl command that exchanges it."""

    http_method_names = ["get", "head"]

    def get(self, request: HttpRequest) -> HttpResponse:
        code = request.GET.get("code", "")
        grant = self._grant(request, code) if code else None
        context: dict[str, Any] = {"outcome": "none"}
        if grant is not None:
            if grant.redeemed_at is not None or grant.expires <= timezone.now():
                context = {"outcome": "used", "client": grant.application}
            else:
                context = self._code_context(request, grant, code)
        elif not code:
            error = request.GET.get("error", "")
            if error:
                context = {"outcome": "error", "error": error if error in KNOWN_ERRORS else ""}
        response = render(request, TEMPLATE, context, status=200 if context["outcome"] == "code" else 400)
        response["Referrer-Policy"] = "no-referrer"  # the URL holds the code
        return response

    def _grant(self, request: HttpRequest, code: str) -> Grant | None:
        """The grant of ``code`` if this user may see it on this page, else None (say nothing)."""
        if not request.user.is_authenticated or len(code) > MAX_CODE_LENGTH:
            return None
        grant = (
            Grant.objects.select_related("application")
            .filter(code=token_checksum(code), user_id=request.user.pk)
            .first()
        )
        if grant is None:
            return None
        client = grant.application
        redirect = urlsplit(grant.redirect_uri)
        if (
            not client.is_enabled
            or not client.is_confidential
            or not client.redirect_uri_allowed(grant.redirect_uri)
            or redirect.path != request.path
        ):
            return None
        return grant

    def _code_context(self, request: HttpRequest, grant: Grant, code: str) -> dict[str, Any]:
        client = grant.application
        token_url = endpoint_url(request, "token")
        command = " \\\n     ".join(
            [
                f'curl -s -u "{_shell(client.client_id)}:$CLIENT_SECRET"',
                f"-d grant_type=authorization_code -d code={shlex.quote(code)}",
                f"-d redirect_uri={shlex.quote(grant.redirect_uri)}",
                '-d code_verifier="$CODE_VERIFIER"',
                shlex.quote(token_url),
            ]
        )
        remaining = max(0, int((grant.expires - timezone.now()).total_seconds()))
        return {
            "outcome": "code",
            "client": client,
            "code": code,
            "seconds": remaining,
            "curl": command,
            "token_url": token_url,
        }


def _shell(value: str) -> str:
    """``value`` safe inside double quotes in a POSIX shell."""
    return "".join("\\" + char if char in '"$`\\' else char for char in value)
