"""Token schemes and the protector that picks one per request (Authlib's ``ResourceProtector`` model).

A ``TokenScheme`` is one ``Authorization`` scheme a protected resource accepts: its ``name``
("Bearer"; RFC 9449 adds "DPoP"), ``validate(request, token, **options)`` (which receives the whole
request, so a scheme that binds tokens to a proof can read it) and ``challenge(error, fmt)`` (its
``WWW-Authenticate`` value). A ``ResourceProtector`` holds the registered schemes with one
``TokenTransport`` and one ``ErrorFormat``: it extracts the token (``transport.extract_token``), hands
it to the scheme named in the header, and tags any refusal with that scheme so the challenge is the
scheme's own.

``protector`` is the kit's: Bearer, validated by ``validate_access_token``. The provider's UserInfo
endpoint and management API build their own protectors with database-backed schemes (they live
provider-side, so this package still imports nothing of the provider).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.http import HttpResponse

from .errors import DEFAULT_FORMAT, BearerError, ErrorFormat, MissingToken, error_response
from .tokens import validate_access_token
from .transport import DEFAULT_TRANSPORT, TokenTransport, extract_token


class TokenScheme:
    """One Authorization scheme: subclass it, set ``name``, implement ``validate``."""

    name: str = "Bearer"

    def validate(self, request: Any, token: str, **options: Any) -> Any:
        """The validated token (any object the endpoint understands); raise a ``BearerError``."""
        raise NotImplementedError

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


class BearerScheme(TokenScheme):
    """RFC 6750 bearer tokens, validated by the kit (RFC 9068 JWTs offline, or introspection)."""

    name = "Bearer"

    def validate(self, request: Any, token: str, *, audience: Any = None, **options: Any) -> Any:
        return validate_access_token(token, audience=audience)


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
        return iter(self._schemes.values())

    def scheme(self, name: str) -> TokenScheme | None:
        return self._schemes.get(name.lower())

    def _tag(self, exc: BearerError, scheme: TokenScheme | None) -> BearerError:
        if exc.scheme is None:
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
            scheme = next(iter(self), None)
            return scheme.challenge(None, self.fmt) if scheme is not None else None
        return self._tag(error, None).www_authenticate(self.fmt)

    def error_response(self, exc: BearerError) -> HttpResponse:
        """The JSON refusal of a plain Django view, in this protector's format."""
        return error_response(self._tag(exc, None), self.fmt)


#: The kit's protector: what ``authenticate``, ``require_scopes`` and the DRF classes use.
protector = ResourceProtector([BearerScheme()])
