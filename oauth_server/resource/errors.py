"""RFC 6750 error responses: what an API answers when a request's token is missing, bad or too weak.

One exception per answer, each knowing its status, its ``error`` code and its ``WWW-Authenticate``
challenge; the DRF and plain-Django adapters only turn them into responses:

=====================  ======  =========================================================================
exception              status  WWW-Authenticate
=====================  ======  =========================================================================
``MissingToken``       401     ``Bearer realm="api"`` (no error: RFC 6750 3.1)
``InvalidRequest``     400     ``Bearer realm="api", error="invalid_request", error_description="..."``
``InvalidToken``       401     ``Bearer realm="api", error="invalid_token", error_description="..."``
``InvalidDPoPProof``   401     ``DPoP realm="api", error="invalid_dpop_proof", ..., algs="ES256 ..."``
``UseDPoPNonce``       401     ``DPoP ... error="use_dpop_nonce" ...`` and a ``DPoP-Nonce`` header
``InsufficientScope``  403     ``Bearer realm="api", error="insufficient_scope", ..., scope="files:read"``
``ServiceUnavailable`` 503     none (the token could not be checked; ``Retry-After`` instead)
=====================  ======  =========================================================================

Bodies are JSON ``{"error": ..., "error_description": ...}`` and never cached.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from django.http import JsonResponse
from django.utils.translation import gettext_lazy as _

from .conf import settings

# RFC 6750 3: error_description and scope are limited to these characters (no '"' and no '\').
_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5B\x5D-\x7E]")


def _header_safe(value: str) -> str:
    """``value`` as RFC 6750 allows it inside a quoted challenge parameter (accents dropped)."""
    ascii_text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    return _UNSAFE.sub("", ascii_text)


def _quoted_string(value: str) -> str:
    """``value`` as an RFC 9110 quoted-string's content: escaped, no way out of the quotes, no CR/LF."""
    return str(value).replace("\r", "").replace("\n", "").replace("\\", "\\\\").replace('"', '\\"')


_DEFAULT_REALM = object()


@dataclass(frozen=True)
class ErrorFormat:
    """How one protected endpoint writes its refusals: the challenge's realm and punctuation, and
    whether a missing token's JSON body carries an ``error`` member.

    The kit's default is its documented format (``realm`` from the ``REALM`` setting, ", " between
    parameters, values reduced to the characters RFC 6750 3 allows). The provider's own endpoints
    keep their historical output with other parameters (``escape``: RFC 9110 quoted-string escaping).
    """

    realm: str | None | object = _DEFAULT_REALM
    separator: str = ", "
    escape: bool = False
    missing_token_error: str | None = "unauthorized"

    def _value(self, value: str) -> str:
        return _quoted_string(value) if self.escape else _header_safe(value)

    def challenge(
        self,
        scheme: str = "Bearer",
        error: str | None = None,
        description: str | None = None,
        scopes: Iterable[str] = (),
        extra: Iterable[tuple[str, str]] = (),
    ) -> str:
        """A ``WWW-Authenticate`` value: ``scheme`` alone when there is no parameter to send."""
        realm = settings.REALM if self.realm is _DEFAULT_REALM else self.realm
        params = [f'realm="{self._value(realm)}"'] if realm else []
        if error:
            params.append(f'error="{error}"')
            if description:
                params.append(f'error_description="{self._value(description)}"')
        scope = " ".join(scopes)
        if scope:
            params.append(f'scope="{self._value(scope)}"')
        params.extend(f'{name}="{self._value(value)}"' for name, value in extra)
        return scheme + (" " + self.separator.join(params) if params else "")


DEFAULT_FORMAT = ErrorFormat()


def challenge(error: str | None = None, description: str | None = None, scopes: Iterable[str] = ()) -> str:
    """A ``WWW-Authenticate`` value for the Bearer scheme, in the kit's format."""
    return DEFAULT_FORMAT.challenge("Bearer", error, description, scopes)


class Challenger(Protocol):
    """What an error needs of the scheme that refused it (``schemes.TokenScheme`` is one)."""

    def challenge(self, error: BearerError | None, fmt: ErrorFormat) -> str: ...


class BearerError(Exception):
    """Base of the kit's errors: a request that must be refused, and how."""

    status_code = 401
    error: str | None = None
    default_description = ""
    #: The scheme that refused the request (set by ``ResourceProtector``); None: Bearer.
    scheme: Challenger | None = None
    #: The RFC 9728 metadata URL of the refusing resource (``metadata.attach``); None: not sent.
    resource_metadata: str | None = None

    def __init__(self, description: str | None = None, *, scopes: Iterable[str] = ()):
        self.description = str(description if description is not None else self.default_description)
        self.scopes = tuple(scopes)
        super().__init__(self.description)

    @property
    def reason(self) -> str:
        return self.description

    @property
    def error_code(self) -> str:
        """The JSON body's ``error`` (the challenge carries none for a missing token)."""
        return self.error or "unauthorized"

    def www_authenticate(self, fmt: ErrorFormat = DEFAULT_FORMAT) -> str | None:
        """The challenge, written by the scheme that refused the request (Bearer by default)."""
        if self.scheme is not None:
            return self.scheme.challenge(self, fmt)
        return fmt.challenge("Bearer", self.error, self.description, self.scopes, extra=self.extra_params())

    def extra_params(self) -> list[tuple[str, str]]:
        """Challenge parameters every scheme adds: ``resource_metadata`` (RFC 9728 5.1) when known."""
        return [("resource_metadata", self.resource_metadata)] if self.resource_metadata else []

    def body(self, fmt: ErrorFormat = DEFAULT_FORMAT) -> dict[str, str]:
        error = self.error or fmt.missing_token_error
        return (
            {"error": error, "error_description": self.description}
            if error
            else {"error_description": self.description}
        )

    def headers(self, fmt: ErrorFormat = DEFAULT_FORMAT) -> dict[str, str]:
        value = self.www_authenticate(fmt)
        headers = {"Cache-Control": "no-store"}
        if value:
            headers["WWW-Authenticate"] = value
        return headers


class MissingToken(BearerError):
    """No bearer token at all: a bare challenge, so the client knows what to send (with ``scopes``,
    the ``scope`` it should ask for: what an MCP client reads before it first authorizes)."""

    status_code = 401
    default_description = _("An access token is required: send it as 'Authorization: Bearer <token>'.")

    def www_authenticate(self, fmt: ErrorFormat = DEFAULT_FORMAT) -> str:
        if self.scheme is not None:
            return self.scheme.challenge(self, fmt)
        return fmt.challenge("Bearer", scopes=self.scopes, extra=self.extra_params())


class InvalidRequest(BearerError):
    """The request is malformed: a broken Authorization header, or a token in the URL or body."""

    status_code = 400
    error = "invalid_request"
    default_description = _("The request is malformed.")


class InvalidToken(BearerError):
    """The token is not valid here (bad signature, expired, wrong issuer or audience, revoked...).

    ``reason`` (also ``description``) says which check failed; it is sent to the client as
    ``error_description``, so it never contains the token or key material.
    """

    status_code = 401
    error = "invalid_token"
    default_description = _("The access token is invalid.")


class InsufficientScope(BearerError):
    """The token is valid but lacks the scope(s) named in ``scopes``."""

    status_code = 403
    error = "insufficient_scope"
    default_description = _("The access token does not grant the scope this request needs.")


class InvalidDPoPProof(BearerError):
    """RFC 9449 7.1: the DPoP proof is missing, malformed, replayed or does not match the request."""

    status_code = 401
    error = "invalid_dpop_proof"
    default_description = _("The DPoP proof is invalid.")


class UseDPoPNonce(BearerError):
    """RFC 9449 9: the proof must carry the resource's current nonce, sent in ``DPoP-Nonce``."""

    status_code = 401
    error = "use_dpop_nonce"
    default_description = _("A fresh DPoP nonce is required: use the one in the DPoP-Nonce header.")

    def __init__(self, description: str | None = None, *, nonce: str = "", **kwargs):
        super().__init__(description, **kwargs)
        self.nonce = nonce

    def headers(self, fmt: ErrorFormat = DEFAULT_FORMAT) -> dict[str, str]:
        return {**super().headers(fmt), "DPoP-Nonce": self.nonce}


class ServiceUnavailable(BearerError):
    """The token could not be checked (keys or introspection unreachable): retry later.

    Answering 401 here would tell a client holding a good token to throw it away.
    """

    status_code = 503
    error = "temporarily_unavailable"
    default_description = _("The access token cannot be checked at the moment; retry later.")
    retry_after = 10

    def www_authenticate(self, fmt: ErrorFormat = DEFAULT_FORMAT) -> None:
        return None

    def headers(self, fmt: ErrorFormat = DEFAULT_FORMAT) -> dict[str, str]:
        return {**super().headers(fmt), "Retry-After": str(self.retry_after)}


def error_response(exc: BearerError, fmt: ErrorFormat = DEFAULT_FORMAT) -> JsonResponse:
    """The JSON response (status, challenge, no-store) for a plain Django view."""
    response = JsonResponse(exc.body(fmt), status=exc.status_code)
    for name, value in exc.headers(fmt).items():
        response[name] = value
    return response
