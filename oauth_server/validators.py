"""What a client may register as a URI: the one home of each rule.

The model (``Client.clean``), the admin form, the management API's serializers and
``create_oauth_client`` all ask these functions, so a value one of them refuses is refused by
the others for the same reason (each caller keeps its own wording of the error: the messages
below are the translated ones the form and the API show).

- Redirect and post-logout redirect URIs are compared by exact string: no wildcard, no fragment
  (RFC 6749 3.1.2, RFC 9700 4.1.3). Their schemes are DOT's ``AllowedURIValidator``'s business.
- Audiences and resource identifiers are RFC 8707 resource URIs: absolute, without a fragment,
  and, being compared by exact string, without a wildcard.
- CORS origins are ``scheme://host[:port]``; only public clients may list them (``cors.py``).
- Logo, home page, policy and terms URIs are shown as links only if they are http(s); for a client
  nobody vetted (self-registered), only https links, and never its logo (``shown_client_links``).
- A client that registers itself (RFC 7591) may register https redirect URIs, or http ones on a
  loopback host only (RFC 8252 7.3), without userinfo (``self_registered_redirect_uri_error``).

This module imports nothing of ours, so any module may use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import AbstractApplication
from oauth2_provider.validators import AllowedURIValidator

# Schemes a client's logo, home page, policy and terms URIs must have to be shown as links.
WEB_URL_SCHEMES = ("https", "http")

EXACT_URI_MESSAGE = _("%s: wildcards and fragments are not allowed.")
RESOURCE_URI_MESSAGE = _(
    "%(uris)s: use absolute URIs (e.g. https://api.example.com), without fragments or wildcards."
)
ORIGINS_PUBLIC_ONLY_MESSAGE = _(
    "Only public clients may list origins: a browser application cannot keep a secret."
)


def has_whitespace(value: str) -> bool:
    """URIs are stored space-separated (DOT's format): whitespace inside one would split it."""
    return any(c.isspace() for c in value)


# --- redirect and post-logout redirect URIs -----------------------------------------------------------
def is_exact_uri(uri: str) -> bool:
    """A registered redirect URI is matched by exact string: a wildcard or fragment has no place."""
    return "*" not in uri and "#" not in uri


def post_logout_uri_validator(schemes: Iterable[str]) -> AllowedURIValidator:
    """DOT's redirect-URI scheme rules, for post-logout redirect URIs (a redirect too).

    ``schemes``: the client's ``get_allowed_schemes()`` (passed in: this module imports no model).
    """
    return AllowedURIValidator(
        set(schemes), name="post logout redirect uri", allow_path=True, allow_query=True
    )


#: Hosts an http redirect URI of a self-registered client may name (RFC 8252 7.3, 8.3: native apps).
LOOPBACK_HOSTS = frozenset(("127.0.0.1", "::1", "localhost"))
MAX_SELF_REGISTERED_URI_LENGTH = 2000


def self_registered_redirect_uri_error(uri: Any) -> str | None:
    """Why a client that registers itself may not use ``uri`` as a redirect URI, or None.

    Stricter than an operator's registration: https, or http on a loopback host (native apps and
    local agents, RFC 8252 7.3); an absolute URI with a host, no userinfo (``https://good@evil``),
    no wildcard or fragment (exact matching), no whitespace or control character.
    """
    if not isinstance(uri, str):
        return str(_("Each redirect URI must be a string."))
    if not uri or len(uri) > MAX_SELF_REGISTERED_URI_LENGTH:
        return str(_("A redirect URI must be 1 to %d characters long.") % MAX_SELF_REGISTERED_URI_LENGTH)
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        return str(_("A redirect URI cannot contain whitespace or control characters."))
    if not is_exact_uri(uri):
        return str(EXACT_URI_MESSAGE % uri)
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        return str(_("%s is not a valid URI.") % uri)
    if parts.scheme not in ("https", "http") or not host:
        return str(_("%s: use an https URI, or http on a loopback address (127.0.0.1, [::1]).") % uri)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return str(_("%s: a redirect URI cannot contain a user name or password.") % uri)
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        return str(_("%s: http is allowed on a loopback address only; use https.") % uri)
    return None


# --- RFC 8707 resource URIs (audiences, resource identifiers) -----------------------------------------
def is_resource_uri(uri: Any) -> bool:
    """RFC 8707 2: an absolute URI without a fragment; no wildcard or whitespace, since a token's
    ``aud`` is compared by exact string and a typo silently locks a client out of its API.

    Hierarchical URIs need a host (``https://api``), others a body (``urn:example:api``). At request
    time DOT's stricter ``is_valid_resource_uri`` (a host, no userinfo) also applies.
    """
    if not isinstance(uri, str) or has_whitespace(uri):
        return False
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    if not parts.scheme or "#" in uri or "*" in uri:
        return False
    return bool(parts.netloc) if parts.scheme in ("http", "https") else bool(parts.path or parts.netloc)


def invalid_resource_uris(uris: Iterable[Any]) -> list[Any]:
    """The entries of ``uris`` that are not resource URIs, in order."""
    return [uri for uri in uris if not is_resource_uri(uri)]


# --- CORS origins ------------------------------------------------------------------------------------
def clean_origins(values: Iterable[str]) -> list[str]:
    """Origins as registered: trimmed, without a trailing slash (browsers never send one, and DOT's
    validation would refuse it as a path), empty entries and duplicates dropped, order kept."""
    return list(dict.fromkeys(o for o in (v.strip().rstrip("/").strip() for v in values) if o))


def may_list_origins(client_type: str) -> bool:
    """``cors.py`` honours public clients' origins only: a secret must not be in a browser."""
    return client_type == AbstractApplication.CLIENT_PUBLIC


# --- logo, home page, policy and terms URIs ----------------------------------------------------------
CLIENT_LINK_FIELDS = ("logo_uri", "client_uri", "policy_uri", "tos_uri")


def shown_client_links(values: dict[str, Any], *, vetted: bool) -> dict[str, str]:
    """The client URLs a page may show as links or an image, by field name.

    A vetted client's (an operator registered it) http(s) URLs. A client nobody vetted (it
    registered itself) gets https links only, and no logo: loading its image would tell the
    registrant who looks at the page and let it draw anything (a "verified" badge) next to our
    words; its initial is shown instead.
    """
    shown = {}
    for field in CLIENT_LINK_FIELDS:
        url = values.get(field) or ""
        if not isinstance(url, str) or not is_web_url(url):
            continue
        if not vetted and (field == "logo_uri" or urlsplit(url).scheme != "https"):
            continue
        shown[field] = url
    return shown


def is_web_url(url: str) -> bool:
    """Whether a client's logo/home page/policy/terms URI may be shown as a link or image
    (the model's ``URLField`` also accepts ftp)."""
    try:
        return bool(url) and urlsplit(url).scheme in WEB_URL_SCHEMES
    except ValueError:
        return False


# --- URLs the server fetches (a client's jwks_uri) ----------------------------------------------------
def is_https_url(url: str) -> bool:
    """An absolute https URL with a host, no userinfo and no fragment: what the server may fetch
    (the fetcher still checks the address it resolves to)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - an out-of-range port raises
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname) and parts.username is None and not parts.fragment
