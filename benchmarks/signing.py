"""What signing one JWT access token costs, by algorithm and by way of building the JWS.

Compares jwcrypto's ``JWS`` object (which deep-copies its header registry on creation) with the
compact serialization written out around jwcrypto's own algorithm (what ``oauth_server.keys.sign``
does), for RS256 (2048-bit), ES256 and EdDSA, and the verification the resource kit does the same
way. In-process, one thread, no Django:

    .venv/bin/python benchmarks/signing.py [--rounds 500]

docs/performance.md records the numbers and this command.
"""

from __future__ import annotations

import argparse
import functools
import json
import time

from jwcrypto import jwk, jws
from jwcrypto.common import base64url_decode, base64url_encode
from jwcrypto.jwa import JWA

CLAIMS = {
    "iss": "https://id.example.com/oauth",
    "sub": "Jp3k0VqTqK0o5u2Yc8H1xw",
    "aud": ["https://api.example.com/files/"],
    "client_id": "Z2wPq4E8k3v1",
    "scope": "openid files:read",
    "exp": 1_900_000_000,
    "iat": 1_899_999_700,
    "jti": "c2VjcmV0LWp0aS12YWx1ZQ",
}
KEYS = {
    "RS256": lambda: jwk.JWK.generate(kty="RSA", size=2048, kid="k"),
    "ES256": lambda: jwk.JWK.generate(kty="EC", crv="P-256", kid="k"),
    "EdDSA": lambda: jwk.JWK.generate(kty="OKP", crv="Ed25519", kid="k"),
}


def jws_object(key: jwk.JWK, alg: str) -> str:
    token = jws.JWS(json.dumps(CLAIMS, separators=(",", ":")).encode())
    token.add_signature(key, alg=alg, protected={"alg": alg, "kid": "k", "typ": "at+jwt"})
    return token.serialize(compact=True)


def compact(key: jwk.JWK, alg: str) -> str:
    header = json.dumps({"alg": alg, "kid": "k", "typ": "at+jwt"}, separators=(",", ":"))
    signing_input = (
        f"{base64url_encode(header)}.{base64url_encode(json.dumps(CLAIMS, separators=(',', ':')))}"
    )
    return f"{signing_input}.{base64url_encode(JWA.signing_alg(alg).sign(key, signing_input.encode()))}"


def verify_object(key: jwk.JWK, alg: str, token: str) -> None:
    parsed = jws.JWS()
    parsed.deserialize(token)
    parsed.verify(key, alg=alg)


def verify_compact(key: jwk.JWK, alg: str, token: str) -> None:
    header, payload, signature = token.split(".")
    JWA.signing_alg(alg).verify(key, f"{header}.{payload}".encode(), base64url_decode(signature))


def per_call_ms(function, rounds: int) -> float:
    function()
    start = time.perf_counter()
    for _ in range(rounds):
        function()
    return (time.perf_counter() - start) / rounds * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    rounds = parser.parse_args().rounds
    print("alg     sign: JWS object  sign: compact  verify: JWS object  verify: compact")
    for alg, make in KEYS.items():
        key = make()
        public = jwk.JWK(**json.loads(key.export_public()))
        token = compact(key, alg)
        verify_object(public, alg, jws_object(key, alg))  # both forms are the same JWS
        verify_compact(public, alg, token)
        timings = [
            per_call_ms(functools.partial(jws_object, key, alg), rounds),
            per_call_ms(functools.partial(compact, key, alg), rounds),
            per_call_ms(functools.partial(verify_object, public, alg, token), rounds),
            per_call_ms(functools.partial(verify_compact, public, alg, token), rounds),
        ]
        print(f"{alg:6s} " + "  ".join(f"{ms:13.3f} ms" for ms in timings))


if __name__ == "__main__":
    main()
