"""Reading the bearer token from a request (RFC 6750 2) and checking scopes.

Only the ``Authorization: Bearer`` header is accepted. A token in the query string is refused
(RFC 9700 4.3.2: URLs end up in logs and Referer headers), and so is one in a form body: RFC 6750
2.2 allows it only where the header cannot be used, and refusing it keeps one rule for every API.
Either answers 400 ``invalid_request`` with a description telling the client what to do, and a
token sent in two places is refused the same way (RFC 6750 2: "MUST NOT use more than one method").
The reading itself is ``transport.extract_token``; the scheme registry is ``schemes.protector``.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext as _

from .claims import AccessTokenClaims
from .errors import InsufficientScope
from .schemes import protector

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_bearer_token(request) -> str | None:
    """The bearer token of ``request`` (Django or DRF), None when there is none.

    Raises InvalidRequest for a malformed ``Authorization: Bearer`` header or a token sent in the
    query string or form body. Another scheme (``Basic`` ...) is not ours: None.
    """
    found = protector.extract(request)
    return found[1] if found is not None else None


def authenticate(request, *, audience: str | Iterable[str] | None = None) -> AccessTokenClaims:
    """The validated token of ``request``; raises MissingToken, InvalidRequest or InvalidToken.

    ``audience``: this view's API identifier(s) when it is not the site's ``AUDIENCE`` setting.
    """
    return protector.authenticate(request, audience=audience)


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
