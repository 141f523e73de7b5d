"""Token schemes and the protector that picks one per request (Authlib's ``ResourceProtector`` model).

A ``TokenScheme`` is one ``Authorization`` scheme a protected resource accepts: its ``name``
("Bearer"; RFC 9449 adds "DPoP"), ``validate(request, token, **options)`` (which receives the whole
request, so a scheme that binds tokens to a proof can read it) and ``challenge(error, fmt)`` (its
``WWW-Authenticate`` value). A ``ResourceProtector`` holds the registered schemes with one
``TokenTransport`` and one ``ErrorFormat``: it extracts the token (``transport.extract_token``), hands
it to the scheme named in the header, and tags any refusal with that scheme so the challenge is the
scheme's own.

``protector`` is the kit's: Bearer and DPoP (RFC 9449), validated by ``validate_access_token``;
a DPoP-bound token (``cnf.jkt``) is refused as Bearer. A missing token is answered with the
challenges of every scheme the endpoint accepts (``Bearer realm="api", DPoP realm="api", algs=...``).
The provider's UserInfo endpoint and management API build their own protectors with
database-backed schemes (they live provider-side, so this package still imports nothing of the
provider).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.core.cache import caches
from django.http import HttpResponse
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import dpop
from .conf import settings
from .errors import (
    DEFAULT_FORMAT,
    BearerError,
    ErrorFormat,
    InvalidDPoPProof,
    InvalidToken,
    MissingToken,
    UseDPoPNonce,
    error_response,
)
from .tokens import validate_access_token
from .transport import DEFAULT_TRANSPORT, TokenTransport, django_request, extract_token


class TokenScheme:
    """One Authorization scheme: subclass it, set ``name``, implement ``validate``."""

    name: str = "Bearer"

    def validate(self, request: Any, token: str, **options: Any) -> Any:
        """The validated token (any object the endpoint understands); raise a ``BearerError``."""
        raise NotImplementedError

    def enabled(self) -> bool:
        """Whether the endpoint accepts this scheme now (a setting may turn it off)."""
        return True

    def challenged(self) -> bool:
        """Whether a missing token's answer names this scheme (False: accepted but not offered)."""
        return self.enabled()

    def challenge_params(self, error: BearerError | None) -> Iterable[tuple[str, str]]:
        """Parameters of this scheme's challenge beyond realm/error/scope (DPoP: ``algs``)."""
        return ()

    def challenge(self, error: BearerError | None, fmt: ErrorFormat = DEFAULT_FORMAT) -> str:
        """The ``WWW-Authenticate`` value for ``error`` (None: a bare challenge, no token sent)."""
        if error is None or error.error is None:  # no token sent: no error code (RFC 6750 3.1)
            if error is None:
                return fmt.challenge(self.name, extra=self.challenge_params(None))
            extra = [*self.challenge_params(None), *error.extra_params()]
            return fmt.challenge(self.name, scopes=error.scopes, extra=extra)
        extra = [*self.challenge_params(error), *error.extra_params()]
        return fmt.challenge(self.name, error.error, error.description, error.scopes, extra=extra)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


BOUND_AS_BEARER = gettext_lazy(
    "The access token is bound to a DPoP key: send it as 'Authorization: DPoP' with a proof."
)


class BearerScheme(TokenScheme):
    """RFC 6750 bearer tokens, validated by the kit (RFC 9068 JWTs offline, or introspection).

    A DPoP-bound token (``cnf.jkt``) is refused here (RFC 9449 7.2: a stolen bound token must not
    work as a bearer token), and every token when the API requires DPoP (``DPOP_REQUIRED``)."""

    name = "Bearer"

    def challenged(self) -> bool:
        return not (settings.DPOP and settings.DPOP_REQUIRED)

    def validate(self, request: Any, token: str, *, audience: Any = None, **options: Any) -> Any:
        if settings.DPOP and settings.DPOP_REQUIRED:
            raise InvalidToken(_("This API accepts DPoP-bound tokens only (Authorization: DPoP)."))
        claims = validate_access_token(token, audience=audience)
        if dpop.token_jkt(claims.claims):
            raise InvalidToken(BOUND_AS_BEARER)
        return claims


class DPoPScheme(TokenScheme):
    """RFC 9449 7: ``Authorization: DPoP <token>`` with a ``DPoP`` proof of the token's key.

    The checks: one well-formed proof (``resource/dpop.py``: typ, alg, jwk, signature, htm, htu,
    iat, jti once, ``ath`` = the token's hash, the nonce when required), a valid token that is
    DPoP-bound, and the proof's key thumbprint equal to the token's ``cnf.jkt``. The provider's
    UserInfo endpoint subclasses it (``load``, ``check_proof`` and ``algorithms`` from the database
    and the provider's settings).
    """

    name = "DPoP"

    def enabled(self) -> bool:
        return bool(settings.DPOP)

    def algorithms(self) -> list[str]:
        return [alg for alg in settings.DPOP_ALGORITHMS if alg in dpop.SUPPORTED_ALGORITHMS]

    def challenge_params(self, error: BearerError | None) -> Iterable[tuple[str, str]]:
        return [("algs", " ".join(self.algorithms()))]

    def load(self, request: Any, token: str, **options: Any) -> tuple[Any, str | None]:
        """The validated token and the thumbprint it is bound to (None: a bearer token)."""
        claims = validate_access_token(token, audience=options.get("audience"))
        return claims, dpop.token_jkt(claims.claims)

    def urls(self, request: Any) -> list[str]:
        """What the proof's ``htu`` may name: this request's URL (``DPOP_ORIGIN``'s origin if set)."""
        plain = django_request(request)
        if settings.DPOP_ORIGIN:
            return [settings.DPOP_ORIGIN.rstrip("/") + plain.path]
        return [plain.build_absolute_uri(plain.path)]

    def nonce_secret(self) -> bytes:
        secret = settings.DPOP_NONCE_SECRET
        if secret:
            return secret.encode() if isinstance(secret, str) else bytes(secret)
        return salted_hmac("oauth_server.resource.dpop.nonce", "key", algorithm="sha256").digest()

    def nonce_lifetime(self) -> int:
        return int(settings.DPOP_NONCE_LIFETIME)

    def nonces_required(self) -> bool:
        return bool(settings.DPOP_NONCES)

    def current_nonce(self) -> str:
        return dpop.make_nonce(self.nonce_secret(), self.nonce_lifetime())

    def check_proof(self, proof: str, *, method: str, urls: list[str], access_token: str) -> dpop.Proof:
        """``validate_proof`` with this API's settings and its replay cache."""
        secret, lifetime = self.nonce_secret(), self.nonce_lifetime()
        return dpop.validate_proof(
            proof,
            method=method,
            url=urls,
            algorithms=self.algorithms(),
            max_age=int(settings.DPOP_PROOF_MAX_AGE),
            skew=int(settings.LEEWAY),
            replay=dpop.cache_replay(caches[settings.DPOP_REPLAY_CACHE], "dpop:resource"),
            access_token=access_token,
            nonce=(lambda value: dpop.nonce_is_fresh(value, secret, lifetime))
            if self.nonces_required()
            else None,
        )

    def validate(self, request: Any, token: str, **options: Any) -> Any:
        try:
            proof = dpop.proof_header(request)
        except dpop.DPoPError as exc:
            raise InvalidDPoPProof(exc.description) from None
        if not proof:
            raise InvalidDPoPProof(_("A DPoP proof (the DPoP header) must accompany a DPoP token."))
        result, jkt = self.load(request, token, **options)
        if not jkt:
            raise InvalidToken(_("The access token is not DPoP-bound: send it as a Bearer token."))
        try:
            found = self.check_proof(
                proof, method=django_request(request).method, urls=self.urls(request), access_token=token
            )
        except dpop.DPoPError as exc:
            if exc.error == "use_dpop_nonce":
                raise UseDPoPNonce(exc.description, nonce=self.current_nonce()) from None
            raise InvalidDPoPProof(exc.description) from None
        if found.jkt != jkt:
            raise InvalidToken(_("Invalid DPoP key binding: the proof is signed by another key."))
        return result


class _Challenges:
    """The challenges of every scheme an endpoint offers, for a missing token (RFC 9110 11.6.1)."""

    def __init__(self, protector: ResourceProtector):
        self.protector = protector

    def challenge(self, error: BearerError | None, fmt: ErrorFormat) -> str:
        schemes = [s for s in self.protector if s.challenged()] or list(self.protector)[:1]
        return ", ".join(s.challenge(error, fmt) for s in schemes)


class ResourceProtector:
    """The schemes one endpoint accepts, keyed by name (case-insensitive, as HTTP auth schemes are)."""

    def __init__(
        self,
        schemes: Iterable[TokenScheme] = (),
        *,
        transport: TokenTransport = DEFAULT_TRANSPORT,
        fmt: ErrorFormat = DEFAULT_FORMAT,
    ):
        self._schemes: dict[str, TokenScheme] = {}
        self.transport = transport
        self.fmt = fmt
        for scheme in schemes:
            self.register(scheme)

    def register(self, scheme: TokenScheme) -> TokenScheme:
        """Accept ``scheme`` from now on; a second scheme of the same name is a mistake."""
        key = scheme.name.lower()
        if key in self._schemes:
            raise ValueError(f"A token scheme named {scheme.name!r} is already registered.")
        self._schemes[key] = scheme
        return scheme

    def __iter__(self) -> Iterator[TokenScheme]:
        """The schemes accepted now (a setting may turn one off)."""
        return iter([s for s in self._schemes.values() if s.enabled()])

    def scheme(self, name: str) -> TokenScheme | None:
        found = self._schemes.get(name.lower())
        return found if found is not None and found.enabled() else None

    def _tag(self, exc: BearerError, scheme: TokenScheme | None) -> BearerError:
        if exc.scheme is None:
            if scheme is None and isinstance(exc, MissingToken):
                exc.scheme = _Challenges(self)
            else:
                exc.scheme = scheme if scheme is not None else next(iter(self), None)
        return exc

    def extract(self, request: Any) -> tuple[TokenScheme, str] | None:
        """The scheme and token of ``request``, None without one; raises ``InvalidRequest``."""
        try:
            found = extract_token(request, [s.name for s in self], self.transport)
        except BearerError as exc:
            raise self._tag(exc, None) from None
        if found is None:
            return None
        return self._schemes[found[0].lower()], found[1]

    def authenticate(self, request: Any, *, optional: bool = False, **options: Any) -> Any:
        """The validated token of ``request``: ``MissingToken`` (None with ``optional``: for a
        DRF authenticator that lets the next one try), ``InvalidRequest`` or the scheme's own
        refusal (``InvalidToken``...) otherwise. ``options`` go to the scheme (``audience``)."""
        found = self.extract(request)
        if found is None:
            if optional:
                return None
            raise self._tag(MissingToken(self.transport.missing), None)
        scheme, token = found
        try:
            return scheme.validate(request, token, **options)
        except BearerError as exc:
            raise self._tag(exc, scheme) from exc

    def challenge(self, error: BearerError | None = None) -> str | None:
        """The ``WWW-Authenticate`` value for ``error`` (None: the bare challenge of the first scheme)."""
        if error is None:
            return _Challenges(self).challenge(None, self.fmt) if next(iter(self), None) else None
        return self._tag(error, None).www_authenticate(self.fmt)

    def error_response(self, exc: BearerError) -> HttpResponse:
        """The JSON refusal of a plain Django view, in this protector's format."""
        return error_response(self._tag(exc, None), self.fmt)


#: The kit's protector: what ``authenticate``, ``require_scopes`` and the DRF classes use.
protector = ResourceProtector([BearerScheme(), DPoPScheme()])
