"""Re-authentication without ending the session first (``prompt=login``, ``max_age``).

OIDC Core 3.1.2.1 asks for a fresh sign-in before answering such a request. Logging the user out
at once would let any site sign users out with a top-level link, so the session is kept and the
login page's ``next`` carries a marker instead: the request without ``prompt=login``/``max_age``
plus ``REAUTH_PARAM``, a signed (salted) "a sign-in other than sign-in S, at or after time T".
Every sign-in stores a random id in the session (``receivers.remember_auth_time``), so only a
sign-in made after the request satisfies the marker; the old session, a tampered marker or one
issued for an older time does not. Stripping the marker leaves a request without ``prompt=login``,
which the client detects by ``auth_time`` like any other stale answer.
"""

from __future__ import annotations

import hashlib
import time

from django.core import signing
from django.http import HttpRequest

from .session_keys import SESSION_AUTH_TIME_KEY, SESSION_SIGN_IN_KEY

#: the query parameter of the authorization request that carries the marker
REAUTH_PARAM = "oauth_server_reauth"
_SALT = "oauth_server.reauthentication"


def _sign_in_digest(request: HttpRequest) -> str:
    """Which sign-in the session holds: a digest of its id ("" for none), never the id itself."""
    sign_in = request.session.get(SESSION_SIGN_IN_KEY)
    if not isinstance(sign_in, str) or not sign_in:
        return ""
    return hashlib.sha256(sign_in.encode()).hexdigest()[:32]


def marker(request: HttpRequest) -> str:
    """A marker that only a sign-in other than the session's current one, made from now on, meets."""
    return signing.dumps({"after": int(time.time()), "not": _sign_in_digest(request)}, salt=_SALT)


def satisfied(request: HttpRequest, values: list[str]) -> bool:
    """Whether the session signed in afresh since the marker was issued (exactly one marker)."""
    if len(values) != 1 or not request.user.is_authenticated:
        return False
    try:
        data = signing.loads(values[0], salt=_SALT)
    except signing.BadSignature:
        return False
    if not isinstance(data, dict) or not isinstance(data.get("after"), int):
        return False
    current = _sign_in_digest(request)
    auth_time = request.session.get(SESSION_AUTH_TIME_KEY)  # stored with the sign-in id
    return (
        bool(current)
        and current != data.get("not")
        and isinstance(auth_time, int)
        and auth_time >= data["after"]
    )
