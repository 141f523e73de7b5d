"""The fuzz tests' world: real clients (web, SPA, machine, admin, first-party, disabled), a staff
user, and codes and tokens minted by a real flow (the ``world`` fixture is in conftest.py)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.test import Client as BrowserClient
from jwcrypto import jwk, jwt

from oauth_server.models import Client, GrantType
from tests.factories import (
    AccessTokenFactory,
    ClientFactory,
    MachineClientFactory,
    PublicClientFactory,
    RefreshTokenFactory,
    UserFactory,
    pkce_pair,
)
from tests.helpers import exchange_code, get_code, grant_permissions

CALLBACK = "https://client.example.com/callback"
BYE = "https://client.example.com/bye"
SPA_CALLBACK = "https://spa.example.com/cb"
FIRST_PARTY_CALLBACK = "https://first.example.com/cb"
HUGE = 100_000


# --- the world: real clients, codes and tokens ------------------------------------------------------
@dataclass
class World:
    user: Any
    staff: Any
    web: Client
    spa: Client
    machine: Client
    admin: Client
    first_party: Client
    disabled: Client
    admin_token: str
    code: str
    verifier: str
    challenge: str
    access_token: str
    refresh_token: str
    id_token: str
    other_access_token: str
    other_refresh_token: str
    clients: list[Client] = field(default_factory=list)
    # Signed request objects (RFC 9101) of the web client: valid ones, and valid signatures over
    # hostile parameters or claims (request_objects.py must refuse or pass them on, never fail).
    request_objects: list[str] = field(default_factory=list)
    # A DPoP key thumbprint (RFC 9449 10: dpop_jkt).
    dpop_jkt: str = ""

    def secrets(self) -> list[str]:
        return [c.raw_secret for c in self.clients if getattr(c, "raw_secret", None)]

    def client_ids(self) -> list[str]:
        return [c.client_id for c in self.clients]

    def tokens(self) -> list[str]:
        return [
            self.access_token,
            self.refresh_token,
            self.id_token,
            self.other_access_token,
            self.other_refresh_token,
            self.admin_token,
            self.code,
        ]

    def client(self, client_id: str) -> Client | None:
        return next((c for c in self.clients if c.client_id == client_id), None)


REQUEST_OBJECT_KEY = jwk.JWK(
    **{**json.loads(jwk.JWK.generate(kty="EC", crv="P-256").export_private()), "kid": "fuzz-ro"}
)
ISSUER = "http://testserver/oauth"


def signed_request(client: Client, challenge: str, header: dict | None = None, **claims: Any) -> str:
    """A request object of ``client`` signed with the world's key; ``claims`` override (None drops)."""
    now = int(time.time())
    payload = {
        "iss": client.client_id,
        "aud": ISSUER,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "client_id": client.client_id,
        "response_type": "code",
        "redirect_uri": CALLBACK,
        "scope": "openid profile",
        "state": "ro-state",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **claims,
    }
    token = jwt.JWT(
        header={"alg": "ES256", "kid": "fuzz-ro", "typ": "oauth-authz-req+jwt", **(header or {})},
        claims={k: v for k, v in payload.items() if v is not None},
    )
    token.make_signed_token(REQUEST_OBJECT_KEY)
    return token.serialize()


def request_objects(client: Client, challenge: str) -> list[str]:
    now = int(time.time())
    return [
        signed_request(client, challenge),
        signed_request(client, challenge, jti=None, dpop_jkt=REQUEST_OBJECT_KEY.thumbprint()),
        signed_request(client, challenge, redirect_uri="https://evil.example/cb"),
        signed_request(client, challenge, aud="https://other.example"),
        signed_request(client, challenge, exp=now - 3600),
        signed_request(client, challenge, exp=None),
        signed_request(client, challenge, client_id="someone-else"),
        signed_request(client, challenge, request_uri="urn:ietf:params:oauth:request_uri:x"),
        signed_request(client, challenge, state={"x": 1}, nonce="n\x00"),
        signed_request(client, challenge, max_age="²", claims={"a": [[[[[[]]]]]]}, dpop_jkt="short"),
        signed_request(client, challenge, scope="oauth:admin", resource=["urn:x", "not a uri"]),
        signed_request(client, challenge, header={"typ": "JWT"}),
    ]


def make_world() -> World:
    """Build the world (in the test's database)."""
    user = UserFactory()
    web = ClientFactory(
        scopes=["openid", "profile", "email", "files:read"],
        redirect_uris=f"{CALLBACK} https://client.example.com/other",
        post_logout_redirect_uris=BYE,
        # Token exchange (RFC 8693): the web client may exchange its own tokens for the API.
        grant_types=[GrantType.AUTHORIZATION_CODE, GrantType.REFRESH_TOKEN, GrantType.TOKEN_EXCHANGE],
        audiences=["https://api.example.com"],
        jwks={"keys": [json.loads(REQUEST_OBJECT_KEY.export_public())]},
    )
    spa = PublicClientFactory(scopes=["openid", "files:read"], redirect_uris=SPA_CALLBACK)
    machine = MachineClientFactory(scopes=["reports:read"])
    # The admin token acts with its client's owner, a service account holding every permission.
    admin = MachineClientFactory(scopes=["oauth:admin"], user=grant_permissions(UserFactory()))
    first_party = ClientFactory(scopes=["openid", "files:read"], redirect_uris=FIRST_PARTY_CALLBACK)
    first_party.skip_consent = True
    first_party.save()
    disabled = ClientFactory(scopes=["openid"], is_enabled=False, redirect_uris="https://off.example.com/cb")
    browser = BrowserClient()
    browser.force_login(user)
    # A real flow: signing keys, a consent, an ID token, a JWT or opaque access token, a refresh token.
    code, verifier = get_code(browser, web, scope="openid profile files:read")
    tokens = exchange_code(browser, web, code, verifier).json()
    # A second code, never exchanged, for the token endpoint to be fed.
    code, verifier = get_code(browser, web, scope="openid files:read")
    _, challenge = pkce_pair()
    other = RefreshTokenFactory(user=user, application=spa)
    return World(
        user=user,
        staff=grant_permissions(UserFactory(is_staff=True)),
        web=web,
        spa=spa,
        machine=machine,
        admin=admin,
        first_party=first_party,
        disabled=disabled,
        admin_token=AccessTokenFactory(user=None, application=admin, scope="oauth:admin").raw_token,
        code=code,
        verifier=verifier,
        challenge=challenge,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        id_token=tokens["id_token"],
        other_access_token=other.access_token.raw_token,
        other_refresh_token=other.raw_token,
        clients=[web, spa, machine, admin, first_party, disabled],
        request_objects=request_objects(web, challenge),
        dpop_jkt=REQUEST_OBJECT_KEY.thumbprint(),
    )
