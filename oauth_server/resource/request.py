"""Reading the bearer token from a request (RFC 6750 2) and checking scopes.

Only the ``Authorization: Bearer`` header is accepted. A token in the query string is refused
(RFC 9700 4.3.2: URLs end up in logs and Referer headers), and so is one in a form body: RFC 6750
2.2 allows it only where the header cannot be used, and refusing it keeps one rule for every API.
Either answers 400 ``invalid_request`` with a description telling the client what to do, and a
token sent in two places is refused the same way (RFC 6750 2: "MUST NOT use more than one method").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import HttpRequest, RawPostDataException, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _

from .errors import InsufficientScope, InvalidRequest, MissingToken
from .tokens import AccessTokenClaims, validate_access_token

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# RFC 6750 2.1 b64token.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def _django_request(request) -> HttpRequest:
    # A DRF Request wraps the HttpRequest; its own .POST would run DRF's parsers.
    return getattr(request, "_request", request)


def _token_in_body(request: HttpRequest) -> bool:
    if request.method in ("GET", "HEAD") or request.content_type != "application/x-www-form-urlencoded":
        return False
    try:
        return "access_token" in request.POST
    except (
        RawPostDataException,
        RequestDataTooBig,
        TooManyFieldsSent,
        SuspiciousOperation,
        BadRequest,
        MultiPartParserError,
        UnreadablePostError,
    ):
        return False  # the view reports its own unreadable body


def get_bearer_token(request) -> str | None:
    """The bearer token of ``request`` (Django or DRF), None when there is none.

    Raises InvalidRequest for a malformed ``Authorization: Bearer`` header or a token sent in the
    query string or form body. Another scheme (``Basic`` ...) is not ours: None.
    """
    django_request = _django_request(request)
    header = django_request.META.get("HTTP_AUTHORIZATION", "")
    token = None
    scheme, _sep, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        value = value.strip()
        if not _B64TOKEN.fullmatch(value):
            raise InvalidRequest(_("The Authorization header is malformed: expected 'Bearer <token>'."))
        token = value
    if "access_token" in django_request.GET:
        if token is not None:
            raise InvalidRequest(_("The access token was sent in more than one way; use only the header."))
        raise InvalidRequest(
            _("Access tokens are not accepted in the URL: send 'Authorization: Bearer <token>'.")
        )
    if _token_in_body(django_request):
        if token is not None:
            raise InvalidRequest(_("The access token was sent in more than one way; use only the header."))
        raise InvalidRequest(
            _("Access tokens are not accepted in the request body: send 'Authorization: Bearer <token>'.")
        )
    return token


def authenticate(request, *, audience: str | Iterable[str] | None = None) -> AccessTokenClaims:
    """The validated token of ``request``; raises MissingToken, InvalidRequest or InvalidToken.

    ``audience``: this view's API identifier(s) when it is not the site's ``AUDIENCE`` setting.
    """
    token = get_bearer_token(request)
    if token is None:
        raise MissingToken()
    return validate_access_token(token, audience=audience)


def check_scopes(claims: AccessTokenClaims, scopes: Iterable[str], *, any: bool = False) -> None:
    """Raise InsufficientScope unless ``claims`` grant all (or, with ``any``, one) of ``scopes``."""
    needed = tuple(dict.fromkeys(scopes))
    if not needed:
        return
    if any:
        if claims.has_any_scope(*needed):
            return
        description = _("This request needs one of the scopes: %(scopes)s.")
    else:
        if claims.has_scopes(*needed):
            return
        description = _("This request needs the scopes: %(scopes)s.")
    raise InsufficientScope(description % {"scopes": ", ".join(needed)}, scopes=needed)
