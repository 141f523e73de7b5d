"""Who the user is, as OpenID Connect claims: subject identifiers, standard claims by scope, hooks.

``sub`` is a random per-site identifier stored in ``Subject`` (OIDC Core 8, public subject type): it
never changes for a user and never exposes the database id.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction

from .conf import settings
from .models import Subject

logger = logging.getLogger(__name__)

# Claims the server decides in ID tokens (OIDC Core 2, 3.1.3.6, 12.2); ID_TOKEN_CLAIMS may not change them.
PROTECTED_ID_TOKEN_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "auth_time", "nonce", "azp", "at_hash", "c_hash", "sid"}
)
# OIDC Core 5.3.2: the UserInfo ``sub`` must be the ID token's; USERINFO may not change it.
PROTECTED_USERINFO_CLAIMS = frozenset({"sub"})

# OIDC Core 5.4: which scope releases which standard claim (only those a Django user can answer).
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("name", "given_name", "family_name", "preferred_username", "updated_at"),
    "email": ("email", "email_verified"),
}


def subject_for(user) -> str:
    """The user's stable opaque ``sub``; created on first use."""
    cached = getattr(user, "_oauth_server_sub", None)
    if cached:
        return cached
    sub = Subject.objects.filter(user=user).values_list("sub", flat=True).first()
    if sub is None:
        try:
            with transaction.atomic():
                sub = Subject.objects.create(user=user, sub=secrets.token_urlsafe(24)).sub
        except IntegrityError:  # created concurrently
            sub = Subject.objects.get(user=user).sub
    user._oauth_server_sub = sub
    return sub


def loaded_subject(user) -> str:
    """The user's opaque sub, from the row a ``select_related("user__oauth_subject")`` loaded (no
    query); ``subject_for`` otherwise."""
    remember_loaded_subject(user)
    return subject_for(user)


def remember_loaded_subject(user) -> None:
    """Keep the sub a ``select_related("user__oauth_subject")`` loaded for ``subject_for``, which
    then needs no query; nothing (and no query) when the user has no subject yet."""
    loaded = getattr(user, "oauth_subject", None)  # RelatedObjectDoesNotExist is an AttributeError
    if loaded is not None:
        user._oauth_server_sub = loaded.sub


def user_for_subject(sub: str):
    """The user behind a ``sub`` (for APIs that receive our tokens), or None."""
    subject = Subject.objects.select_related("user").filter(sub=sub).first()
    return subject.user if subject else None


def standard_claims(user) -> dict[str, Any]:
    """Every standard claim a Django user can answer, before filtering by scope."""
    full_name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    claims: dict[str, Any] = {
        "name": full_name or user.get_username(),
        "given_name": getattr(user, "first_name", "") or None,
        "family_name": getattr(user, "last_name", "") or None,
        "preferred_username": user.get_username(),
        "email": getattr(user, "email", "") or None,
        # Django does not track verification; sites that do override USERINFO / ID_TOKEN_CLAIMS.
        "email_verified": False if getattr(user, "email", "") else None,
    }
    last_login = getattr(user, "last_login", None) or getattr(user, "date_joined", None)
    if last_login is not None:
        claims["updated_at"] = int(last_login.timestamp())
    return claims


def claims_for_scopes(user, scopes: Iterable[str]) -> dict[str, Any]:
    """``sub`` plus the standard claims the granted scopes release, with empty values left out.

    The ``claims`` request parameter (OIDC Core 5.5) is ignored safely: it can never release a
    claim that the granted scopes do not cover, and every covered claim is released anyway.
    """
    scopes = set(scopes)
    allowed = {name for scope in scopes for name in SCOPE_CLAIMS.get(scope, ())}
    values = standard_claims(user)
    claims: dict[str, Any] = {"sub": subject_for(user)}
    for name in sorted(allowed):
        if values.get(name) is not None:
            claims[name] = values[name]
    return claims


def apply_hook(
    name: str, request, claims: dict[str, Any], protected: Iterable[str] = frozenset()
) -> dict[str, Any]:
    """Merge what a site's hook (ACCESS_TOKEN_CLAIMS, ID_TOKEN_CLAIMS, USERINFO) returns.

    Like Keycloak's mappers and Hydra's consent session data, a hook adds claims but cannot change
    the ones the protocol's security rests on (``protected``: issuer, audience, expiry, subject,
    token id, nonce, ...): such keys are dropped with a warning rather than signed into the token.
    """
    hook = getattr(settings, name)
    if hook is None:
        return claims
    extra = hook(request, dict(claims))
    if extra is None:
        return claims
    if not isinstance(extra, Mapping):
        raise ImproperlyConfigured(f"OAUTH_SERVER[{name!r}] must return a dict, not {type(extra).__name__}.")
    refused = sorted(set(extra) & set(protected))
    if refused:
        logger.warning("OAUTH_SERVER[%r] may not set %s: ignored.", name, ", ".join(refused))
    return {**claims, **{key: value for key, value in extra.items() if key not in refused}}
