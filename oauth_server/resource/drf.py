"""Django REST framework: ``BearerTokenAuthentication`` and scope permissions.

::

    class FileList(APIView):
        authentication_classes = [BearerTokenAuthentication]
        permission_classes = [HasScope("files:read")]          # an instance...
        # permission_classes = [HasScope.of("files:read")]     # ...or a class: both work

Errors are raised as ``BearerAPIException``, an ``APIException`` carrying the RFC 6750 body as
its ``detail`` and the challenge as its ``auth_header``: DRF's default exception handler (and
any handler that calls it) answers with that status, that JSON body and that
``WWW-Authenticate`` header, including the 403 ``insufficient_scope`` challenge that DRF's own
``PermissionDenied`` could not carry. It is not an ``AuthenticationFailed`` on purpose: DRF
would replace its header with the first authenticator's.

Scope permissions raise instead of returning False, so in an ``|`` (OR) composition put them
last, or use ``HasAnyScope``; ``&`` compositions work in any order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission, OperationHolderMixin
from rest_framework.views import exception_handler as drf_exception_handler

from .claims import AccessTokenClaims
from .conf import audience_set
from .errors import BearerError, MissingToken, ServiceUnavailable
from .metadata import attach
from .request import check_scopes
from .schemes import protector


class BearerAPIException(exceptions.APIException):
    """A kit error as DRF understands it: status, JSON body, WWW-Authenticate, Retry-After."""

    def __init__(self, error: BearerError):
        super().__init__(detail=error.body(), code=error.error_code)
        self.status_code = error.status_code
        self.auth_header = protector.challenge(error)  # a missing token: every scheme's challenge
        if isinstance(error, ServiceUnavailable):
            self.wait = error.retry_after
        self.error = error
        # What DRF's handler cannot carry (it sends only auth_header and wait): ``exception_handler``
        # below adds these, such as the DPoP-Nonce of a use_dpop_nonce refusal.
        self.extra_headers = {
            name: value
            for name, value in error.headers().items()
            if name not in ("WWW-Authenticate", "Retry-After")
        }


def exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    """DRF's default exception handler, plus the kit's other headers (``DPoP-Nonce`` with DPoP
    nonces on, ``Cache-Control: no-store``). Set it as ``REST_FRAMEWORK["EXCEPTION_HANDLER"]``, or
    call it from your own handler: with DRF's handler alone a client is told ``use_dpop_nonce``
    without the nonce it must use (RFC 9449 9)."""
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, BearerAPIException):
        for name, value in exc.extra_headers.items():
            response[name] = value
    return response


class TokenUser:
    """``request.user`` of a token request: who the token speaks for, with no database behind it.

    ``pk``/``id``/``username`` are the token's ``sub`` (per-user throttling keys on it). It has no
    permissions and is never staff: authorize with scopes. ``oauth_server.resource.users.
    user_for_token(request.auth)`` finds the real user when the API runs inside the provider's site.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, claims: AccessTokenClaims):
        self.token = claims
        self.sub = claims.sub
        self.client_id = claims.client_id
        self.scopes = claims.scopes
        self.pk = self.id = self.username = claims.sub

    def get_username(self) -> str:
        return self.sub

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def has_perms(self, perm_list: Iterable[str], obj: Any = None) -> bool:
        return False

    def has_module_perms(self, app_label: str) -> bool:
        return False

    def __str__(self) -> str:
        return self.sub

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenUser) and other.sub == self.sub

    def __hash__(self) -> int:
        return hash(self.sub)


class BearerTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <access token>`` -> ``(TokenUser, AccessTokenClaims)``.

    No bearer header: None, so other authentication classes may try. List it first: its
    ``authenticate_header`` is what makes DRF answer 401 with a Bearer challenge instead of 403.

    ``audience`` (or ``get_audience()``, or ``BearerTokenAuthentication.with_audience(...)``)
    replaces the ``AUDIENCE`` setting, for a site that serves several APIs.
    """

    audience: str | Iterable[str] | None = None

    @classmethod
    def with_audience(cls, audience: str | Iterable[str]) -> type[BearerTokenAuthentication]:
        """A subclass accepting tokens for ``audience``: ``[BearerTokenAuthentication.with_audience(
        "https://reports.example.com/")]`` in a view's ``authentication_classes``."""
        audience = sorted(audience_set(audience, "with_audience()"))
        name = f"{cls.__name__}.with_audience({audience!r})"
        return type(name, (cls,), {"audience": audience[0] if len(audience) == 1 else audience})

    def get_audience(self, request) -> str | Iterable[str] | None:
        """The identifier(s) this API accepts; None: the ``AUDIENCE`` setting."""
        return self.audience

    def authenticate(self, request) -> tuple[TokenUser, AccessTokenClaims] | None:
        audience = self.get_audience(request)
        try:
            claims = protector.authenticate(request, optional=True, audience=audience)
        except BearerError as exc:
            raise BearerAPIException(attach(exc, audience)) from exc
        if claims is None:
            return None
        return TokenUser(claims), claims

    def authenticate_header(self, request) -> str:
        """The bare challenge of DRF's own 401s (``NotAuthenticated``), naming the RFC 9728 metadata."""
        return protector.challenge(attach(MissingToken(), self.get_audience(request)))


def _view_audience(request) -> str | Iterable[str] | None:
    """The audience of the view's bearer authenticator (the one that succeeded, else the first), for
    the ``resource_metadata`` of a permission's refusal; None: the ``AUDIENCE`` setting."""
    authenticator = getattr(request, "successful_authenticator", None)
    if not isinstance(authenticator, BearerTokenAuthentication):
        authenticator = next(
            (a for a in getattr(request, "authenticators", ()) if isinstance(a, BearerTokenAuthentication)),
            None,
        )
    return authenticator.get_audience(request) if authenticator is not None else None


def _scope_tuple(scopes: Iterable[str] | str) -> tuple[str, ...]:
    values = (scopes,) if isinstance(scopes, str) else tuple(scopes)
    if not values or not all(isinstance(s, str) and s for s in values):
        raise ValueError("Give at least one scope name.")
    return values


class ScopePermission(OperationHolderMixin, BasePermission):
    """Base of the scope permissions: usable as an instance or, through ``of()``, as a class.

    DRF instantiates each entry of ``permission_classes``; an instance answers that call with
    itself, so ``[HasScope("x")]`` works as well as ``[HasScope.of("x")]``. Instances are stateless
    and shared by every request.
    """

    require_any = False

    def __init__(self, *scopes: str):
        self.scopes = _scope_tuple(scopes)

    def __call__(self) -> ScopePermission:
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.scopes))})"

    @classmethod
    def of(cls, *args: Any, **kwargs: Any) -> type[ScopePermission]:
        """A subclass with these arguments built in, for code that wants classes."""
        name = (
            f"{cls.__name__}.of({', '.join([*map(repr, args), *(f'{k}={v!r}' for k, v in kwargs.items())])})"
        )
        cls(*args, **kwargs)  # validate now, not on the first request

        def __init__(self: ScopePermission) -> None:
            cls.__init__(self, *args, **kwargs)

        return type(name, (cls,), {"__init__": __init__})

    def required_scopes(self, request, view) -> tuple[str, ...]:
        return self.scopes

    def has_permission(self, request, view) -> bool:
        claims = request.auth
        if not isinstance(claims, AccessTokenClaims):
            if request.user is not None and request.user.is_authenticated:
                return False  # signed in some other way (a session): scopes cannot apply
            raise BearerAPIException(attach(MissingToken(), _view_audience(request)))
        try:
            check_scopes(claims, self.required_scopes(request, view), any=self.require_any)
        except BearerError as exc:
            raise BearerAPIException(attach(exc, _view_audience(request))) from exc
        return True


class HasScope(ScopePermission):
    """The token must grant this scope (several names: all of them)."""


class HasAllScopes(ScopePermission):
    """The token must grant every one of these scopes."""


class HasAnyScope(ScopePermission):
    """The token must grant at least one of these scopes."""

    require_any = True


class ReadWriteScopes(ScopePermission):
    """``read`` for GET/HEAD/OPTIONS, ``write`` for every other method (each a name or a list, all needed)."""

    def __init__(self, read: Iterable[str] | str, write: Iterable[str] | str):
        self.read = _scope_tuple(read)
        self.write = _scope_tuple(write)
        self.scopes = self.read + self.write

    def __repr__(self) -> str:
        return f"ReadWriteScopes(read={self.read!r}, write={self.write!r})"

    def required_scopes(self, request, view) -> tuple[str, ...]:
        return self.read if request.method in SAFE_METHODS else self.write
