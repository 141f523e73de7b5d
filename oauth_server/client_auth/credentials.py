"""Client credentials, parsed once per request into one ``ClientCredentials`` object.

Four places need to know which client a request claims and how it authenticates: the validator
(which authenticates), the audit trail (which records a failure's claimed client and method), the
rate limiter (which counts per client only when a credential came with the request) and CORS
(which allows the origins of the client the request names). They all read
``request_state.credentials_of(request)``, which parses the request once with
``registry.parse`` (the methods of the registry) and keeps the result in the request's state: the object
made from Django's request before the view runs is the one the validator finds on oauthlib's.
This module imports no other module of the app, so the model may import the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import (
    BadRequest,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
)
from django.http import HttpRequest, RawPostDataException
from django.http.multipartparser import MultiPartParserError

FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# The body parameters a client-authentication method may read (RFC 6749 2.3.1, RFC 7523 2.2).
PARAMETERS = ("client_id", "client_secret", "client_assertion", "client_assertion_type")
NONE = "none"


@dataclass(frozen=True)
class ClientCredentials:
    """What a request presented to authenticate its client; never logged (``secret``, ``assertion``).

    ``method``
        The registered method (``registry.py``) whose form the request used: ``client_secret_basic``,
        ``client_secret_post``, ..., or ``none`` (a client_id alone, or nothing).
    ``client_id``
        The client the request claims ("" if none, or if the credential could not be decoded).
    ``malformed``
        The method's form was used but could not be decoded (a Basic header that is not base64 of
        ``id:secret``): authentication fails, the request is not treated as unauthenticated.
    ``conflict``
        More than one method was used (RFC 6749 2.3: "MUST NOT use more than one"): ``invalid_request``.
    """

    method: str = NONE
    client_id: str = ""
    secret: str | None = None
    assertion: str | None = None
    assertion_type: str | None = None
    malformed: bool = False
    conflict: bool = False

    @property
    def presents_credential(self) -> bool:
        """A credential came with the request (a secret, an assertion), not just a client_id."""
        return self.method != NONE

    def __repr__(self) -> str:  # never the secret or the assertion in a log or an error page
        return f"<ClientCredentials method={self.method} client_id={self.client_id!r}>"


def request_form(request: HttpRequest) -> Any:
    """The form body, or an empty dict when there is none or it cannot be read (the view will say so).

    The raw body is read first, so that after a parse error the parsed state can be dropped and the
    view, parsing again, meets the same error and answers it as it always does.
    """
    if request.method != "POST" or request.content_type not in FORM_CONTENT_TYPES:
        return {}
    if hasattr(request, "_post"):  # already parsed (by CsrfViewMiddleware, or the view)
        return request.POST
    try:
        request.body  # noqa: B018
        return request.POST
    except (
        MultiPartParserError,
        RequestDataTooBig,
        TooManyFieldsSent,
        SuspiciousOperation,
        BadRequest,
        RawPostDataException,
    ):
        request.__dict__.pop("_post", None)
        request.__dict__.pop("_files", None)
        return {}


def _django_source(request: HttpRequest) -> tuple[str, dict[str, str]]:
    form = request_form(request)
    params = {name: form.get(name) for name in PARAMETERS if form and form.get(name)}
    if "client_id" not in params and request.method in ("GET", "HEAD"):
        # The authorization endpoint names its client in the query (RFC 6749 4.1.1).
        client_id = request.GET.get("client_id")
        if client_id:
            params["client_id"] = client_id
    return request.META.get("HTTP_AUTHORIZATION", ""), params


def _oauthlib_source(request: Any) -> tuple[str, dict[str, str]]:
    headers = getattr(request, "headers", None) or {}
    authorization = headers.get("HTTP_AUTHORIZATION") or headers.get("Authorization") or ""
    params = {}
    for name in PARAMETERS:
        value = getattr(request, name, None) if name in ("client_id", "client_secret") else None
        if value is None:
            value = dict(getattr(request, "_params", None) or {}).get(name)
        if isinstance(value, str) and value:
            params[name] = value
    return authorization, params


def request_source(request: Any) -> tuple[str, dict[str, str]]:
    """The ``Authorization`` header and the credential parameters of Django's or oauthlib's request."""
    source = _django_source if isinstance(request, HttpRequest) else _oauthlib_source
    authorization, params = source(request)
    return (authorization if isinstance(authorization, str) else ""), params
