"""``client_secret_jwt`` (RFC 7523 2.2 and 3, OIDC Core 9): a JWT signed with HMAC keyed by the secret.

The secret never travels: the client sends a short assertion MACed with it (HS256, HS384 or HS512,
``CLIENT_SECRET_ASSERTION_ALGORITHMS``). To check the MAC the server needs the secret itself, which
a hash cannot give back, so a client registered for this method also keeps its secret encrypted at
rest (``Client.encrypted_client_secret``, ``secret_encryption.py``); the claims are checked exactly
as for ``private_key_jwt`` (``check_claims``: ``iss`` = ``sub`` = client_id, the issuer or an
endpoint URL as ``aud``, a short ``exp``, a single-use ``jti``).

The header's ``alg`` picks the method (``AssertionMethod.handles``): an HMAC assertion is this
method's, anything else ``private_key_jwt``'s; the validator then refuses a method the client is not
registered for. So an RSA-signed assertion for a secret client, or an HMAC keyed with a key client's
public key (the classic algorithm confusion), never reaches a verifier that would accept it; and
this method verifies with the HMAC algorithms and a symmetric key only, ``none`` never.
The MAC is compared in constant time by ``cryptography`` (jwcrypto's ``HMAC.verify``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils.translation import gettext_lazy as _
from jwcrypto import jwk, jwt
from jwcrypto.common import JWException, base64url_encode, json_decode

from .. import secret_encryption
from ..conf import settings
from .credentials import ClientCredentials
from .private_key_jwt import (
    HMAC_ALGORITHMS,
    AssertionMethod,
    AssertionRefused,
    check_claims,
    unverified_claims,
)

logger = logging.getLogger(__name__)

# RFC 7518 3.2: "A key of the same size as the hash output ... or larger MUST be used".
KEY_BITS = {"HS256": 256, "HS384": 384, "HS512": 512}


class ClientSecretJWT(AssertionMethod):
    name = "client_secret_jwt"
    label = _("Signed JWT with the client secret, HMAC (client_secret_jwt)")
    uses_secret = True  # a shared-secret method (a FAPI profile forbids these)
    secret_kept_encrypted = True

    def handles(self, header: dict[str, Any] | None) -> bool:
        return header is not None and header.get("alg") in HMAC_ALGORITHMS

    def metadata(self, endpoint: str) -> dict[str, Any]:
        return {f"{endpoint}_auth_signing_alg_values_supported": allowed_algorithms()}

    def authenticate(self, client: Any, credentials: ClientCredentials, request: Any) -> bool:
        verify_secret_assertion(client, credentials.assertion or "", request)  # AssertionRefused
        return True


def allowed_algorithms() -> list[str]:
    """The configured algorithms that are HMAC algorithms (the setting cannot widen the method)."""
    return [alg for alg in settings.CLIENT_SECRET_ASSERTION_ALGORITHMS if alg in HMAC_ALGORITHMS]


def verify_secret_assertion(client: Any, assertion: str, request: Any) -> dict[str, Any]:
    """The verified claims of an HMAC client assertion for ``client``, or ``AssertionRefused``."""
    header, _claims = unverified_claims(assertion)
    algorithm = header.get("alg")
    if algorithm not in allowed_algorithms():
        raise AssertionRefused("algorithm_not_allowed")
    if not client.encrypted_client_secret:
        raise AssertionRefused("secret_unavailable")  # registered before the method: rotate the secret
    try:
        secret = secret_encryption.decrypt(client.encrypted_client_secret).encode("utf-8")
    except secret_encryption.SecretDecryptionError as exc:
        logger.error("client %s: %s", client.client_id, exc)
        raise AssertionRefused("secret_undecryptable") from exc
    if len(secret) * 8 < KEY_BITS[algorithm]:
        raise AssertionRefused("secret_too_short_for_algorithm")
    key = jwk.JWK(kty="oct", k=base64url_encode(secret))
    try:
        token = jwt.JWT(jwt=assertion, key=key, algs=[algorithm], check_claims=False)
        claims = json_decode(token.claims)
    except (JWException, ValueError, TypeError, KeyError) as exc:
        raise AssertionRefused("invalid_signature") from exc
    return check_claims(client, claims, request)
