"""Signed authorization request objects (RFC 9101, JAR; FAPI 2.0 Message Signing).

The client puts its authorization parameters in a JWT signed with one of its registered keys
(``Client.jwks`` / ``jwks_uri``, ``client_keys.py``, as for ``private_key_jwt``) and sends it as the
``request`` parameter, to the PAR endpoint (views/par.py) or through the browser to the
authorization endpoint (views/authorize.py). Nobody on the way can change what it signed.

What a request object must be (``verify``):

- a compact JWS (an encrypted request object is not supported) with an ``alg`` among
  ``algorithms()`` (asymmetric only: never ``none``, never ``HS*``, whatever the settings say), no
  ``crit``, and ``typ`` absent or ``oauth-authz-req+jwt`` (RFC 9101 10.8; absent is accepted because
  many deployed clients send none);
- signed by a key of the client (an unknown ``kid`` refetches ``jwks_uri``, rate limited);
- ``iss`` = the client_id, ``aud`` = this server's issuer, a ``client_id`` claim (if any) = the
  outer client_id;
- ``exp`` present, not passed, at most ``REQUEST_OBJECT_MAX_LIFETIME`` ahead (and after ``nbf``);
  ``nbf`` and ``iat`` (if present) not in the future (``CLOCK_SKEW_SECONDS`` either way);
- a ``jti`` (optional) used once, in the shared replay cache (``replay.py``);
- no ``request`` or ``request_uri`` inside.

Its claims then ARE the authorization request: the outer parameters other than ``client_id`` are
ignored (RFC 9101 6.3). A refusal is ``invalid_request_object``, audited as
``request_object_refused`` with a ``reason``; it is never redirected, since the redirect URI is
one of the parameters that could not be trusted.

At the authorization endpoint the verified parameters are stored like a pushed request
(``resolve``: ``par.push(..., signed=True, pushed=False)``) and the browser goes on with its
``request_uri``: sign-in, consent and "use another account" then work as for PAR, the object's
``jti`` is spent once, and a reload does not present it again. Such a row does not satisfy a PAR
requirement (it was not pushed).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from jwcrypto import jwt
from jwcrypto.common import JWException, json_decode

from . import audit, client_keys, par, profiles, replay
from .client_auth.private_key_jwt import AssertionRefused, unverified_claims
from .conf import settings
from .models import Client

logger = logging.getLogger(__name__)

REQUEST_OBJECT_TYPE = "oauth-authz-req+jwt"
# RFC 7515 4.1.9: "application/" may be left out of a media type in typ; compared case-insensitively.
ACCEPTED_TYPES = frozenset({REQUEST_OBJECT_TYPE, "application/" + REQUEST_OBJECT_TYPE})
# The algorithms a request object may ever use: asymmetric signatures (RFC 9101 10.1 and FAPI 2.0
# forbid none; an HMAC keyed with a public key is the classic algorithm confusion).
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# Far above a real request (a few hundred bytes of parameters and an RSA signature).
MAX_REQUEST_OBJECT_LENGTH = 32 * 1024
# JWT claims that describe the object, not the authorization request.
JWT_CLAIMS = frozenset({"iss", "aud", "exp", "nbf", "iat", "jti", "sub"})
# RFC 9101 4: a request object must not hold another one.
NESTED = frozenset({"request", "request_uri"})
# Parameters that may carry several values (RFC 8707 resource: a JSON array in a request object).
MULTI_VALUED = frozenset({"resource"})


class RequestObjectRefused(Exception):
    """A refused request object: ``error`` and ``description`` for the client or the page, ``reason``
    for the audit trail."""

    def __init__(self, reason: str, description: str, error: str = "invalid_request_object"):
        super().__init__(description)
        self.reason = reason
        self.description = description
        self.error = error


def algorithms() -> list[str]:
    """Accepted and advertised (``request_object_signing_alg_values_supported``): asymmetric only."""
    configured = settings.REQUEST_OBJECT_ALGORITHMS
    if configured is None:
        configured = settings.CLIENT_ASSERTION_ALGORITHMS
    return [alg for alg in configured if alg in ASYMMETRIC_ALGORITHMS]


def required_for(client: Any) -> bool:
    """RFC 9101 10.5: the client (or the site) requires signed request objects."""
    return bool(
        settings.REQUIRE_SIGNED_REQUEST_OBJECT or getattr(client, "require_signed_request_object", False)
    )


def _issuer(request: Any) -> str:
    from oauth2_provider.settings import oauth2_settings

    return oauth2_settings.oidc_issuer(request)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def verify(client: Client, token: Any, request: Any) -> dict[str, Any]:
    """The verified claims of ``token``, a request object of ``client``; else ``RequestObjectRefused``."""
    if not isinstance(token, str) or not token or len(token) > MAX_REQUEST_OBJECT_LENGTH:
        raise RequestObjectRefused("malformed", "The request object is missing or too large.")
    if token.count(".") == 4:
        raise RequestObjectRefused("encrypted", "Encrypted request objects are not supported: sign it (JWS).")
    try:
        header, _claims = unverified_claims(token)
    except AssertionRefused:
        raise RequestObjectRefused("malformed", "The request object is not a signed JWT (JWS).") from None
    algorithm = header.get("alg")
    allowed = profiles.algorithms(client, algorithms())  # FAPI 2.0: no RS256
    if algorithm not in allowed:
        raise RequestObjectRefused(
            "algorithm_not_allowed",
            "The request object's alg is not allowed; use one of: " + ", ".join(allowed) + ".",
        )
    if "crit" in header:
        raise RequestObjectRefused("crit", "The request object's crit header is not supported.")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in ACCEPTED_TYPES):
        raise RequestObjectRefused("wrong_typ", f"The request object's typ must be {REQUEST_OBJECT_TYPE}.")
    kid = header.get("kid")
    try:
        keys = client_keys.key_set(client, kid if isinstance(kid, str) else None)
    except client_keys.ClientKeysError as exc:
        logger.info("client %s: %s", client.client_id, exc)
        raise RequestObjectRefused(
            "keys_unavailable", "The client's keys (jwks or jwks_uri) are not available."
        ) from exc
    try:
        verified = jwt.JWT(jwt=token, key=keys, algs=[algorithm], check_claims=False)
        claims = json_decode(verified.claims)
    except (JWException, ValueError, TypeError, KeyError):
        raise RequestObjectRefused(
            "invalid_signature", "The request object's signature does not verify with the client's keys."
        ) from None
    if not isinstance(claims, dict):
        raise RequestObjectRefused("malformed", "The request object's payload is not a JSON object.")
    if claims.get("iss") != client.client_id:
        raise RequestObjectRefused("wrong_issuer", "The request object's iss must be the client_id.")
    audiences = claims.get("aud")
    audiences = [audiences] if isinstance(audiences, str) else audiences
    if not isinstance(audiences, list) or _issuer(request) not in audiences:
        raise RequestObjectRefused("wrong_audience", "The request object's aud must be this server's issuer.")
    if "client_id" in claims and claims["client_id"] != client.client_id:
        raise RequestObjectRefused(
            "client_id_mismatch", "The request object's client_id is not the request's client_id."
        )
    _check_times(claims)
    jti = claims.get("jti")
    if jti is not None:
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise RequestObjectRefused("bad_jti", "The request object's jti must be a short string.")
        if not replay.first_use(f"request_object:{client.client_id}", jti, claims["exp"]):
            raise RequestObjectRefused("replayed_jti", "This request object has already been used.")
    return claims


def _check_times(claims: dict[str, Any]) -> None:
    now, skew, lifetime = time.time(), settings.CLOCK_SKEW_SECONDS, settings.REQUEST_OBJECT_MAX_LIFETIME
    exp = claims.get("exp")
    if not _number(exp):
        raise RequestObjectRefused("missing_exp", "The request object must have an exp (expiry) claim.")
    if exp + skew < now:
        raise RequestObjectRefused("expired", "The request object has expired.")
    if exp - now > lifetime + skew:
        raise RequestObjectRefused(
            "lifetime_too_long", f"The request object's exp is more than {lifetime} seconds ahead."
        )
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is not None and (not _number(value) or value - skew > now):
            raise RequestObjectRefused(f"bad_{name}", f"The request object's {name} is in the future.")
    nbf = claims.get("nbf")
    if nbf is not None and exp - nbf > lifetime + skew:
        raise RequestObjectRefused(
            "lifetime_too_long", f"The request object is valid for more than {lifetime} seconds."
        )


def _storable(value: Any) -> bool:
    """Values a database keeps as they are: no NUL, no lone surrogate in any string (PostgreSQL
    refuses both in jsonb; the parameters are stored before they are validated, at the
    authorization endpoint)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return "\x00" not in value
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    if isinstance(value, dict):
        return all(_storable(key) and _storable(item) for key, item in value.items())
    return True


def parameters_of(claims: dict[str, Any], client: Client) -> dict[str, list[str]]:
    """The authorization request a verified object carries: its claims as parameters (name -> values),
    with ``client_id`` the client's. JWT claims are dropped; a value that is no parameter is refused."""
    parameters: dict[str, list[str]] = {}
    for name, value in claims.items():
        if name in JWT_CLAIMS:
            continue
        if not _storable(name) or not _storable(value):
            raise RequestObjectRefused("bad_parameter", "The request object holds NUL or invalid characters.")
        if name in NESTED:
            raise RequestObjectRefused(
                "nested_request", "A request object must not contain request or request_uri."
            )
        if isinstance(value, str):
            parameters[name] = [value]
        elif isinstance(value, int) and not isinstance(value, bool):
            parameters[name] = [str(value)]  # max_age
        elif name == "claims" and isinstance(value, dict):
            parameters[name] = [json.dumps(value)]  # OIDC Core 5.5: an object in a request object
        elif (
            name in MULTI_VALUED
            and isinstance(value, list)
            and value
            and all(isinstance(item, str) for item in value)
        ):
            parameters[name] = list(value)
        else:
            raise RequestObjectRefused(
                "bad_parameter", f"The request object's {name[:40]!r} has an unusable value."
            )
    parameters["client_id"] = [client.client_id]
    return parameters


def read(client: Client, token: Any, request: Any, *, endpoint: str) -> dict[str, list[str]]:
    """Verify ``token`` and return its parameters; a refusal is audited (``request_object_refused``)."""
    try:
        return parameters_of(verify(client, token, request), client)
    except RequestObjectRefused as exc:
        refused(request, exc, client=client, endpoint=endpoint)
        raise


def refused(
    request: Any, exc: RequestObjectRefused, *, client: Any = None, client_id: Any = None, endpoint: str
) -> None:
    audit.record(
        audit.Event.REQUEST_OBJECT_REFUSED,
        request=request,
        user=getattr(request, "user", None),  # the signed-in user at the authorization endpoint
        client=client,
        client_id=client.client_id if client is not None else str(client_id or "")[:255],
        outcome=audit.FAILURE,
        reason=exc.reason,
        endpoint=endpoint,
    )


def resolve(request: Any, client_id: Any) -> par.Pushed:
    """The authorization endpoint's ``request`` parameter: verified, then stored as an (unpushed)
    request the browser continues with by ``request_uri``. ``RequestObjectRefused`` otherwise."""
    client = Client.objects.by_client_id(client_id).filter(is_enabled=True).first()
    if client is None:
        exc = RequestObjectRefused(
            "unknown_client",
            "A request object needs the client_id of a known client beside it.",
            "invalid_request",
        )
        refused(request, exc, client_id=client_id, endpoint="authorize")
        raise exc
    parameters = read(client, request.GET.get("request"), request, endpoint="authorize")
    request_uri, _lifetime = par.push(client, parameters, signed=True, pushed=False)
    pushed = par.resolve(client.client_id, request_uri)
    assert pushed is not None  # just stored
    return pushed
