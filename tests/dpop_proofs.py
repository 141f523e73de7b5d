"""Building DPoP proofs (RFC 9449 4.2) with jwcrypto, as an independent client would."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

from jwcrypto import jwk, jws

_KEYS: dict[str, jwk.JWK] = {}
GENERATORS = {
    "ES256": lambda: jwk.JWK.generate(kty="EC", crv="P-256"),
    "RS256": lambda: jwk.JWK.generate(kty="RSA", size=2048),
    "PS256": lambda: jwk.JWK.generate(kty="RSA", size=2048),
    "EdDSA": lambda: jwk.JWK.generate(kty="OKP", crv="Ed25519"),
}


def key(name: str = "A", alg: str = "ES256") -> jwk.JWK:
    """A per-process key by name (RSA generation is slow)."""
    if (name, alg) not in _KEYS:
        _KEYS[(name, alg)] = GENERATORS[alg]()
    return _KEYS[(name, alg)]


def ath(token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()


def proof(
    htm: str,
    htu: str,
    *,
    signer: jwk.JWK | None = None,
    alg: str = "ES256",
    access_token: str | None = None,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A proof for ``htm`` ``htu``, signed by ``signer`` (key A), with ``claims`` overriding the defaults
    (a claim set to None is dropped)."""
    signer = signer or key("A", alg)
    payload: dict[str, Any] = {"jti": uuid.uuid4().hex, "htm": htm, "htu": htu, "iat": int(time.time())}
    if access_token is not None:
        payload["ath"] = ath(access_token)
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    protected = {"typ": "dpop+jwt", "alg": alg, "jwk": json.loads(signer.export_public())}
    protected.update(header or {})
    protected = {k: v for k, v in protected.items() if v is not None}
    token = jws.JWS(json.dumps(payload))
    token.add_signature(signer, alg=alg, protected=json.dumps(protected))
    return token.serialize(compact=True)


def thumbprint(signer: jwk.JWK) -> str:
    return signer.thumbprint()
