"""Where an access token may travel in a request, and the one reader of it (RFC 6750 2).

``extract_token(request, schemes, transport)`` is the only code that takes an access token out of a
request: the ``Authorization: <scheme> <token>`` header (RFC 6750 2.1's ``b64token``, which is also
RFC 9449's ``token68`` for DPoP), the form-encoded body parameter (RFC 6750 2.2) where an endpoint
allows it, and the refusal of the query parameter (RFC 6750 2.3, RFC 9700 4.3.2: URLs end up in logs
and Referer headers). A ``TokenTransport`` says which of these an endpoint accepts and in which
words it refuses the others; the kit's default accepts the header alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import HttpRequest, RawPostDataException, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .errors import InvalidRequest, MissingToken

# RFC 6750 2.1 b64token (= RFC 9110 / RFC 9449 token68).
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_UNREADABLE_BODY = (
    RawPostDataException,
    RequestDataTooBig,
    TooManyFieldsSent,
    SuspiciousOperation,
    BadRequest,
    MultiPartParserError,
    UnreadablePostError,
)

Text = str | Promise


@dataclass(frozen=True)
class TokenTransport:
    """One endpoint's rules for where a token may be, and its words for each refusal.

    - ``header``: ``"strict"`` refuses a credential that is not a b64token (400 ``invalid_request``);
      ``"lenient"`` hands whatever follows the scheme to the validator (which refuses it as invalid).
    - ``query``: ``"refuse"`` answers a query ``access_token`` with 400 ``invalid_request``;
      ``"ignore"`` leaves it to the validator; ``query_first`` refuses it before reading the header.
    - ``body``: ``"refuse"`` (a form-encoded ``access_token``: 400), ``"accept"`` (RFC 6750 2.2, on
      POST: the form-encoded parameter is a token; in another content type it is refused), ``"ignore"``.
    """

    header: Literal["strict", "lenient"] = "strict"
    query: Literal["refuse", "ignore"] = "refuse"
    query_first: bool = False
    body: Literal["refuse", "accept", "ignore"] = "refuse"
    malformed_header: Text = _("The Authorization header is malformed: expected 'Bearer <token>'.")
    in_query: Text = _("Access tokens are not accepted in the URL: send 'Authorization: Bearer <token>'.")
    in_body: Text = _(
        "Access tokens are not accepted in the request body: send 'Authorization: Bearer <token>'."
    )
    more_than_one: Text = _("The access token was sent in more than one way; use only the header.")
    body_not_form: Text = ""
    unreadable_body: Text = ""
    missing: Text | None = None  # None: MissingToken's own description


DEFAULT_TRANSPORT = TokenTransport()


def django_request(request) -> HttpRequest:
    """The HttpRequest behind a DRF Request (whose own ``.POST`` would run DRF's parsers)."""
    return getattr(request, "_request", request)


def read_authorization(request, schemes: Iterable[str]) -> tuple[str, str] | None:
    """``(scheme, credentials)`` when the Authorization header names one of ``schemes`` (any case),
    the credentials stripped but not yet checked; None for no header or another scheme (Basic...)."""
    header = django_request(request).META.get("HTTP_AUTHORIZATION", "")
    name, _sep, credentials = header.strip().partition(" ")
    for scheme in schemes:
        if name.lower() == scheme.lower():
            return scheme, credentials.strip()
    return None


def _form_tokens(request: HttpRequest, transport: TokenTransport) -> list[str]:
    """The body's ``access_token`` values, as the transport reads them."""
    if transport.body == "accept":
        if request.method != "POST":
            return []
        try:
            values = request.POST.getlist("access_token")
        except _UNREADABLE_BODY:
            raise InvalidRequest(transport.unreadable_body) from None
        if values and request.content_type != FORM_CONTENT_TYPE:
            raise InvalidRequest(transport.body_not_form)
        return values
    if request.method in ("GET", "HEAD") or request.content_type != FORM_CONTENT_TYPE:
        return []
    try:
        return request.POST.getlist("access_token")
    except _UNREADABLE_BODY:
        return []  # the view reports its own unreadable body


def extract_token(
    request, schemes: Iterable[str] = ("Bearer",), transport: TokenTransport = DEFAULT_TRANSPORT
) -> tuple[str, str] | None:
    """``(scheme, token)`` of ``request`` (Django or DRF), None when it carries none for us.

    Raises ``InvalidRequest`` for a token where ``transport`` refuses it, a malformed credential
    (strict header), or a token sent more than once (RFC 6750 2: "MUST NOT use more than one
    method"); ``MissingToken`` only when ``transport.missing`` is set and a body token is empty.
    """
    plain = django_request(request)
    in_query = transport.query == "refuse" and "access_token" in plain.GET
    if in_query and transport.query_first:
        raise InvalidRequest(transport.in_query)
    found = read_authorization(plain, schemes)
    if found is not None and transport.header == "strict" and not B64TOKEN.fullmatch(found[1]):
        raise InvalidRequest(transport.malformed_header)
    if in_query:
        raise InvalidRequest(transport.more_than_one if found is not None else transport.in_query)
    if transport.body == "ignore":
        return found
    body_tokens = _form_tokens(plain, transport)
    if transport.body == "refuse":
        if body_tokens:
            raise InvalidRequest(transport.more_than_one if found is not None else transport.in_body)
        return found
    tokens = ([found[1]] if found is not None else []) + body_tokens
    if len(tokens) > 1:
        raise InvalidRequest(transport.more_than_one)
    if tokens and not tokens[0]:
        raise MissingToken(transport.missing)  # an empty body parameter: no token at all
    if found is not None:
        return found
    return ("Bearer", tokens[0]) if tokens else None
