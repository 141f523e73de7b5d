"""The RFC 7591 registration endpoint and the RFC 7592 client configuration endpoint.

Not DOT's ``DynamicClientRegistrationView``: it keeps one grant type per application, stores the
registration access token as an ``AccessToken`` (so it would show up as a user's token, in
introspection and in "last used"), knows no scopes, audiences, logo or policy URIs, and answers a
refused registration with ``access_denied``, which RFC 7591 does not define. The policy and the
writes are in ``oauth_server/registration.py``; this module reads HTTP and writes JSON
(docs/client-registration.md).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.settings import oauth2_settings

from .. import audit, registration
from ..registration import RegistrationError

MAX_BODY_BYTES = 32 * 1024


def _bearer(request: HttpRequest) -> str | None:
    """The token of an ``Authorization: Bearer`` header ("" if another scheme or malformed)."""
    header = request.META.get("HTTP_AUTHORIZATION")
    if header is None:
        return None
    scheme, _space, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return ""
    return token


def _error(error: RegistrationError) -> JsonResponse:
    response = JsonResponse(
        {"error": error.error, "error_description": error.description}, status=error.status
    )
    if error.status == 401:
        # RFC 6750 3: no error code when no credential was presented at all.
        response["WWW-Authenticate"] = 'Bearer error="invalid_token"' if error.token_presented else "Bearer"
    return response


def _read_json(request: HttpRequest) -> Any:
    if request.content_type != "application/json":
        raise registration.RegistrationError(
            registration.INVALID_CLIENT_METADATA, "Send the client metadata as application/json."
        )
    try:
        body = request.body
    except RequestDataTooBig:
        body = b"x" * (MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise registration.RegistrationError(
            registration.INVALID_CLIENT_METADATA, f"The request body is larger than {MAX_BODY_BYTES} bytes."
        )
    try:
        data = json.loads(body)
        # Lone surrogates ("\\ud800") decode to str but no database can store them.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError, UnicodeError):
        raise registration.RegistrationError(
            registration.INVALID_CLIENT_METADATA, "The request body must be a JSON object in UTF-8."
        ) from None
    return data


def _client_uri(request: HttpRequest, client_id: str) -> str:
    """The registration_client_uri, on the pinned issuer's origin when there is one (as discovery)."""
    path = reverse("oauth2_provider:register-client", kwargs={"client_id": client_id})
    if oauth2_settings.OIDC_ISS_ENDPOINT:
        issuer = urlsplit(oauth2_settings.OIDC_ISS_ENDPOINT)
        return urlunsplit((issuer.scheme, issuer.netloc, path, "", ""))
    return request.build_absolute_uri(path)


def _answer(request: HttpRequest, registered: registration.Registered, status: int = 200) -> JsonResponse:
    body = registration.client_metadata(registered.client, registered.registration)
    if registered.client_secret:
        body["client_secret"] = registered.client_secret
    body["registration_access_token"] = registered.access_token
    body["registration_client_uri"] = _client_uri(request, registered.client.client_id)
    return JsonResponse(body, status=status)


class _RegistrationEndpoint(View):
    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = JsonResponse(
            {
                "error": "invalid_request",
                "error_description": f"The {request.method} method is not allowed here.",
            },
            status=405,
        )
        response["Allow"] = ", ".join(self._allowed_methods())
        return response

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if registration.policy() == registration.CLOSED and request.method != "OPTIONS":
            return JsonResponse(
                {
                    "error": "not_found",
                    "error_description": "Dynamic client registration is not enabled on this server.",
                },
                status=404,
            )
        try:
            return super().dispatch(request, *args, **kwargs)
        except RegistrationError as error:
            self.refused(request, error, kwargs.get("client_id"))
            return _error(error)

    def refused(self, request: HttpRequest, error: RegistrationError, client_id: str | None) -> None:
        audit.record(
            audit.Event.CLIENT_REGISTRATION_REFUSED,
            request=request,
            outcome=audit.FAILURE,
            client_id=client_id or "",
            error=error.error,
            description=error.description,
            method=request.method,
        )


@method_decorator([csrf_exempt, login_not_required], name="dispatch")
class RegistrationView(_RegistrationEndpoint):
    """POST /register/: RFC 7591 3.1. No cookie is read (CSRF does not apply): the caller is
    anonymous (open policy) or presents an initial access token as a bearer token."""

    http_method_names = ["post", "options"]

    def post(self, request: HttpRequest) -> HttpResponse:
        initial = None
        if registration.policy() == registration.INITIAL_ACCESS_TOKEN:
            presented = _bearer(request)
            if presented is None:
                raise RegistrationError(
                    "invalid_token",
                    "An initial access token is required to register a client.",
                    401,
                    token_presented=False,
                )
            initial = registration.find_initial_access_token(presented)
            if initial is None:
                raise RegistrationError(
                    "invalid_token", "The initial access token is invalid, expired or used up.", 401
                )
        metadata = registration.parse_metadata(_read_json(request))
        registered = registration.register(metadata, initial_access_token=initial)
        return _answer(request, registered, status=201)


@method_decorator([csrf_exempt, login_not_required], name="dispatch")
class ClientConfigurationView(_RegistrationEndpoint):
    """GET/PUT/DELETE /register/<client_id>/: RFC 7592, with the registration access token."""

    http_method_names = ["get", "put", "delete", "options"]

    def authenticate(self, request: HttpRequest, client_id: str) -> registration.ClientRegistration:
        presented = _bearer(request)
        if presented is None:
            raise RegistrationError(
                "invalid_token", "The registration access token is required.", 401, token_presented=False
            )
        found = registration.find_registration(client_id, presented)
        if found is None:
            # RFC 7592 2: an unknown client and a wrong token get the same 401 (no probing).
            raise RegistrationError(
                "invalid_token", "The registration access token is invalid for this client.", 401
            )
        return found

    def get(self, request: HttpRequest, client_id: str) -> HttpResponse:
        found = self.authenticate(request, client_id)
        registered = registration.Registered(found.client, found, _bearer(request) or "")
        return _answer(request, registered)

    def put(self, request: HttpRequest, client_id: str) -> HttpResponse:
        found = self.authenticate(request, client_id)
        data = _read_json(request)
        if not isinstance(data, dict):
            raise RegistrationError(
                registration.INVALID_CLIENT_METADATA, "The request body must be a JSON object."
            )
        # RFC 7592 2.2: client_id must be sent and match; a client_secret must be the current one.
        if data.get("client_id") != found.client.client_id:
            raise RegistrationError(
                registration.INVALID_CLIENT_METADATA, "client_id must be sent and be this client's."
            )
        if "client_secret" in data and not (
            isinstance(data["client_secret"], str) and found.client.check_secret(data["client_secret"])
        ):
            raise RegistrationError(
                registration.INVALID_CLIENT_METADATA, "client_secret does not match; it cannot be chosen."
            )
        data = {k: v for k, v in data.items() if k not in ("client_id", "client_secret")}
        metadata = registration.parse_metadata(data, client=found.client)
        return _answer(request, registration.update(found, metadata))

    def delete(self, request: HttpRequest, client_id: str) -> HttpResponse:
        found = self.authenticate(request, client_id)
        registration.unregister(found)
        return HttpResponse(status=204)
