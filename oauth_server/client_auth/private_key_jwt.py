"""``private_key_jwt`` (RFC 7523 2.2 and 3, OIDC Core 9): the client signs a short JWT with its key.

No shared secret is stored or sent: the server keeps only the client's public keys
(``client_keys.py``). The assertion must:

- be signed with an allowed asymmetric algorithm (``CLIENT_ASSERTION_ALGORITHMS``; never ``none`` or
  ``HS*``) by a key of the client's JWKS;
- have ``iss`` = ``sub`` = the client_id (and match a ``client_id`` parameter if one is sent);
- have the issuer in ``aud``, or an endpoint URL of this server (token, introspection, revocation,
  pushed authorization): RFC 7523bis recommends the issuer alone, deployed clients often send the
  token endpoint URL;
- expire soon (``exp`` at most ``CLIENT_ASSERTION_MAX_LIFETIME`` ahead), not be used before ``nbf``;
- carry a ``jti`` used once: remembered until ``exp`` in the replay cache every process shares
  (``replay.py``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext_lazy as _
from jwcrypto import jws, jwt
from jwcrypto.common import JWException, json_decode

from .. import client_keys, replay
from ..conf import settings
from .credentials import ClientCredentials
from .registry import ClientAuthFailed, ClientAuthMethod

logger = logging.getLogger(__name__)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LENGTH = 16 * 1024
# JWS HMAC algorithms (RFC 7518 3.2): client_secret_jwt's; never accepted for private_key_jwt.
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})


class AssertionRefused(ClientAuthFailed):
    """Why an assertion was refused: recorded in the audit trail (``reason``), never sent to the client."""


def unverified_claims(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a compact JWS, without verifying it: only to find the client and its key."""
    token = jws.JWS()
    try:
        token.deserialize(assertion)
        header = token.jose_header
        payload = json_decode(token.objects["payload"])
    except (JWException, ValueError, TypeError, KeyError, json.JSONDecodeError) as exc:
        raise AssertionRefused("malformed_assertion") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise AssertionRefused("malformed_assertion")
    return header, payload


class AssertionMethod(ClientAuthMethod):
    """A method whose credential is a JWT client assertion (RFC 7523 2.2): ``private_key_jwt`` and
    ``client_secret_jwt`` share the form (the same ``client_assertion_type``); the header's ``alg``
    tells them apart (``handles``), so a request is never both (a registry ``conflict``) and an
    assertion is always checked by the method its algorithm belongs to: an HMAC-signed one sent for a
    key client, or an RSA-signed one for a secret client, is refused as ``auth_method_not_allowed``."""

    def handles(self, header: dict[str, Any] | None) -> bool:
        """Whether this method reads an assertion with this header (None: not a readable JWS)."""
        raise NotImplementedError

    def extract(self, authorization: str, params: Mapping[str, str]) -> ClientCredentials | None:
        if params.get("client_assertion_type") != ASSERTION_TYPE:
            return None
        assertion = params.get("client_assertion") or ""
        client_id = params.get("client_id") or ""
        header: dict[str, Any] | None = None
        claims: dict[str, Any] = {}
        if assertion and len(assertion) <= MAX_ASSERTION_LENGTH:
            try:
                header, claims = unverified_claims(assertion)
            except AssertionRefused:
                header = None
        if not self.handles(header):
            return None
        malformed = header is None
        if not malformed:
            subject = claims.get("sub")
            if isinstance(subject, str) and (not client_id or client_id == subject):
                client_id = subject
            else:
                malformed = True  # RFC 7523 3: sub is the client_id; a client_id parameter must agree
        return ClientCredentials(
            method=self.name,
            client_id=client_id,
            assertion=assertion,
            assertion_type=ASSERTION_TYPE,
            malformed=malformed,
        )


class PrivateKeyJWT(AssertionMethod):
    name = "private_key_jwt"
    label = _("Signed JWT with the client's private key (private_key_jwt)")
    uses_keys = True
    asymmetric = True

    def handles(self, header: dict[str, Any] | None) -> bool:
        # Everything but an HMAC: asymmetric algorithms, "none", junk and unreadable assertions
        # (refused here, as algorithm_not_allowed or malformed).
        return header is None or header.get("alg") not in HMAC_ALGORITHMS

    def metadata(self, endpoint: str) -> dict[str, Any]:
        return {f"{endpoint}_auth_signing_alg_values_supported": list(settings.CLIENT_ASSERTION_ALGORITHMS)}

    def authenticate(self, client: Any, credentials: ClientCredentials, request: Any) -> bool:
        verify_assertion(client, credentials.assertion or "", request)  # AssertionRefused: the reason
        return True


def verify_assertion(client: Any, assertion: str, request: Any) -> dict[str, Any]:
    """The verified claims of a client assertion for ``client``, or ``AssertionRefused``."""
    from .. import profiles  # imports the client_auth package: not at module level

    header, _claims = unverified_claims(assertion)
    algorithm = header.get("alg")
    allowed = profiles.algorithms(client, settings.CLIENT_ASSERTION_ALGORITHMS)  # FAPI 2.0: no RS256
    if algorithm not in allowed:
        raise AssertionRefused("algorithm_not_allowed")
    try:
        keys = client_keys.key_set(client, header.get("kid"))
    except client_keys.ClientKeysError as exc:
        logger.info("client %s: %s", client.client_id, exc)
        raise AssertionRefused("keys_unavailable") from exc
    try:
        token = jwt.JWT(jwt=assertion, key=keys, algs=allowed, check_claims=False)
        claims = json_decode(token.claims)
    except (JWException, ValueError, TypeError, KeyError) as exc:
        raise AssertionRefused("invalid_signature") from exc
    return check_claims(client, claims, request)


def check_claims(client: Any, claims: Any, request: Any) -> dict[str, Any]:
    """RFC 7523 3 on the verified claims of an assertion (both JWT methods): ``iss``, ``sub``,
    ``aud``, ``exp``, ``nbf``, ``iat``, and the ``jti`` used once (remembered until ``exp``)."""
    if not isinstance(claims, dict):
        raise AssertionRefused("malformed_assertion")
    if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
        raise AssertionRefused("wrong_issuer_or_subject")
    audiences = claims.get("aud")
    audiences = [audiences] if isinstance(audiences, str) else audiences
    if (
        not isinstance(audiences, list)
        or not all(isinstance(a, str) for a in audiences)  # RFC 7519 4.1.3; [{}] is not even hashable
        or not set(audiences) & accepted_audiences(request)
    ):
        raise AssertionRefused("wrong_audience")
    now, skew = time.time(), settings.CLOCK_SKEW_SECONDS
    exp = claims.get("exp")
    if not _finite_number(exp):  # JSON's NaN passes every comparison (and broke the replay cache)
        raise AssertionRefused("missing_exp")
    if exp + skew < now:
        raise AssertionRefused("expired")
    if exp - now > settings.CLIENT_ASSERTION_MAX_LIFETIME + skew:
        raise AssertionRefused("lifetime_too_long")
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is not None and (not _finite_number(value) or value - skew > now):
            raise AssertionRefused(f"bad_{name}")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise AssertionRefused("missing_jti")
    if not replay.first_use(f"client_assertion:{client.client_id}", jti, exp):
        raise AssertionRefused("replayed_jti")
    return claims


def _finite_number(value: Any) -> bool:
    """A NumericDate (RFC 7519 2): a number, not a boolean, not NaN or infinite (Python's json
    reads ``NaN`` and ``Infinity``), not an integer past a float (``exp - now`` would raise)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def accepted_audiences(request: Any) -> set[str]:
    """The issuer, and the URLs of this server's endpoints that accept client authentication.

    The issuer is the pinned ``OIDC_ISS_ENDPOINT``, else built from the request's host, which
    Django's ``ALLOWED_HOSTS`` limits to the site's own names (pin the issuer in production).
    """
    from urllib.parse import urlsplit

    from django.urls import NoReverseMatch, reverse
    from oauth2_provider.settings import oauth2_settings

    issuer = oauth2_settings.oidc_issuer(request)
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    accepted = {issuer}
    for name in ("token", "introspect", "revoke-token", "pushed-authorization-request"):
        try:
            accepted.add(origin + reverse(f"oauth2_provider:{name}"))
        except NoReverseMatch:
            continue
    return accepted
