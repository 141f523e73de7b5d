"""DPoP at the token endpoint (RFC 9449 5): a valid proof binds the issued tokens to the client's key.

``validate_token_request`` is a token-request validator (every grant, after client authentication
and the grant's own checks): it validates the ``DPoP`` header with the kit's ``validate_proof``
(``resource/dpop.py``, shared with resource servers), records the key thumbprint in the request's
state (``dpop_jkt``), and refuses a request without a proof when the client or the site requires
DPoP, and a refresh whose refresh token is bound to another key (or presented without a proof).

What reads ``dpop_jkt``: ``tokens.access_token_claims`` (``cnf.jkt``), the validator (the
AccessToken row's ``dpop_jkt``, the public client's RefreshToken, ``token_type: DPoP``) and the
audit trail.

Server nonces (``DPOP_NONCES``): stateless, an HMAC of a time window keyed by a secret derived
from ``SECRET_KEY``; the current and the previous window are accepted, so a nonce lives between one
and two ``DPOP_NONCE_LIFETIME``. TokenView sends ``DPoP-Nonce`` on every answer while they are on.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.utils.crypto import salted_hmac
from oauthlib.oauth2.rfc6749 import errors

from . import profiles, replay
from .conf import settings
from .request_state import state_of
from .resource import dpop as core


class InvalidDPoPProofError(errors.OAuth2Error):
    """RFC 9449 12.2: the proof is missing where required, or invalid."""

    error = "invalid_dpop_proof"
    status_code = 400


class UseDPoPNonceError(errors.OAuth2Error):
    """RFC 9449 8: the proof lacks the server's current nonce (TokenView adds ``DPoP-Nonce``)."""

    error = "use_dpop_nonce"
    status_code = 400


def nonce_secret() -> bytes:
    """A key for DPoP nonces only, derived from SECRET_KEY (rotating SECRET_KEY rotates it)."""
    return salted_hmac("oauth_server.dpop.nonce", "key", algorithm="sha256").digest()


def current_nonce() -> str:
    return core.make_nonce(nonce_secret(), settings.DPOP_NONCE_LIFETIME)


def nonce_check(value: Any) -> bool:
    return core.nonce_is_fresh(value, nonce_secret(), settings.DPOP_NONCE_LIFETIME)


def algorithms() -> list[str]:
    """The advertised and accepted proof algorithms (asymmetric ones only, whatever the setting says)."""
    return [alg for alg in settings.DPOP_SIGNING_ALGORITHMS if alg in core.SUPPORTED_ALGORITHMS]


def expected_urls(request: Any) -> list[str]:
    """The URLs a proof's ``htu`` may name: the endpoint's absolute URL as Django built it (TokenView;
    behind a proxy, right only with USE_X_FORWARDED_HOST / SECURE_PROXY_SSL_HEADER), and with a
    fixed issuer (``OIDC_ISS_ENDPOINT``) the same path under the issuer's origin (docs/dpop.md)."""
    return public_urls(state_of(request).url or "")


def public_urls(absolute_url: str) -> list[str]:
    """``absolute_url`` and, with a fixed issuer (``OIDC_ISS_ENDPOINT``), its path under the issuer's
    origin, which no Host header can change (the token endpoint and UserInfo)."""
    from oauth2_provider.settings import oauth2_settings

    urls = [absolute_url] if absolute_url else []
    issuer = oauth2_settings.OIDC_ISS_ENDPOINT
    if issuer and absolute_url:
        base = urlsplit(issuer)
        urls.append(urlunsplit((base.scheme, base.netloc, urlsplit(absolute_url).path, "", "")))
    return urls


def check(
    proof: str,
    *,
    method: str,
    urls: list[str],
    namespace: str,
    access_token: str | None = None,
    client: Any = None,
):
    """``validate_proof`` with the provider's settings and shared replay cache; the algorithms are
    narrowed to what ``client``'s security profile accepts (FAPI 2.0: no RS256)."""
    return core.validate_proof(
        proof,
        method=method,
        url=urls,
        algorithms=profiles.algorithms(client, algorithms()),
        max_age=settings.DPOP_PROOF_MAX_AGE,
        skew=settings.CLOCK_SKEW_SECONDS,
        replay=lambda jti, expires_at: replay.first_use(namespace, jti, expires_at),
        access_token=access_token,
        nonce=nonce_check if settings.DPOP_NONCES else None,
    )


def validate_token_request(request: Any) -> None:
    """Token-request validator (every grant): see the module docstring."""
    state = state_of(request)
    try:
        proof = core.proof_header(request)
    except core.DPoPError as exc:
        raise InvalidDPoPProofError(description=exc.description, request=request) from None
    refreshed = state.refreshed if request.grant_type == "refresh_token" else None
    bound = getattr(refreshed, "dpop_jkt", "") or ""
    # RFC 9449 10: a code whose authorization request carried dpop_jkt (or was pushed with a proof).
    grant = state.grant if request.grant_type == "authorization_code" else None
    code_bound = getattr(grant, "dpop_jkt", "") or ""
    if proof is None:
        if code_bound:
            raise errors.InvalidGrantError(
                description="This authorization code is bound to a DPoP key (dpop_jkt): send a DPoP proof.",
                request=request,
            )
        if bound:
            raise errors.InvalidGrantError(
                description="This refresh token is bound to a DPoP key: send a DPoP proof.", request=request
            )
        if profiles.requires_dpop(request.client):
            raise InvalidDPoPProofError(description="This client must send a DPoP proof.", request=request)
        return
    try:
        found = check(
            proof,
            method=request.http_method,
            urls=expected_urls(request),
            namespace="dpop:token",
            client=request.client,
        )
    except core.DPoPError as exc:
        cls = UseDPoPNonceError if exc.error == "use_dpop_nonce" else InvalidDPoPProofError
        raise cls(description=exc.description, request=request) from None
    if code_bound and found.jkt != code_bound:
        raise errors.InvalidGrantError(
            description="The DPoP proof's key is not the key this authorization code is bound to (dpop_jkt).",
            request=request,
        )
    if bound and found.jkt != bound:
        raise errors.InvalidGrantError(
            description="The DPoP proof's key is not the key this refresh token is bound to.", request=request
        )
    state.dpop_jkt = found.jkt


def pushed_request_proof(request: Any) -> str | None:
    """RFC 9449 10.1: the thumbprint of the key of a ``DPoP`` proof sent to the PAR endpoint (``htm``
    POST, ``htu`` the PAR endpoint), which binds the code like a ``dpop_jkt`` parameter; None without
    a proof. Raises ``InvalidDPoPProofError`` / ``UseDPoPNonceError`` (the view answers them as JSON).

    The view checks the proof before it reads a signed request object: a client answered
    ``use_dpop_nonce`` sends the same request again with a new proof (RFC 9449 8), and the refused
    attempt must not have spent the request object's ``jti``.
    """
    try:
        proof = core.proof_header(request)
    except core.DPoPError as exc:
        raise InvalidDPoPProofError(description=exc.description) from None
    if proof is None:
        return None
    urls = public_urls(request.build_absolute_uri(request.path))
    try:
        found = check(proof, method=request.method, urls=urls, namespace="dpop:par")
    except core.DPoPError as exc:
        cls = UseDPoPNonceError if exc.error == "use_dpop_nonce" else InvalidDPoPProofError
        raise cls(description=exc.description) from None
    return found.jkt


def pushed_request_binding(proof_jkt: str | None, dpop_jkt: list[str] | None) -> str | None:
    """The key a pushed authorization request binds its code to: the proof's (``pushed_request_proof``),
    which must name the same key as a ``dpop_jkt`` parameter sent with it (RFC 9449 10.1). Returns
    the thumbprint to store as ``dpop_jkt`` (None: no proof, the parameter, if any, stands alone);
    raises ``InvalidDPoPProofError`` when they disagree."""
    if proof_jkt is None:
        return None
    if dpop_jkt is not None and dpop_jkt != [proof_jkt]:
        raise InvalidDPoPProofError(
            description="dpop_jkt is not the thumbprint of the DPoP proof's key (RFC 9449 10.1)."
        )
    return proof_jkt
