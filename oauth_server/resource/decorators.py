"""Protecting plain Django views: ``@require_scopes(...)`` and ``RequireScopesMixin``.

Both validate the bearer token, check scopes, set ``request.oauth_token`` (the
``AccessTokenClaims``) and answer RFC 6750 errors as JSON, naming the view's RFC 9728 metadata
(``resource_metadata``) when its audience is a configured protected resource. The views they protect are
CSRF-exempt and exempt from ``LoginRequiredMiddleware``: a bearer-token request carries no cookie
to forge, and an API client must get a 401 challenge, not a redirect to a login page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

from .conf import audience_set
from .errors import BearerError, error_response
from .metadata import attach
from .request import SAFE_METHODS, authenticate, check_scopes

# A view's own audience: identifier(s), or a callable taking the request and returning them.
Audience = str | Iterable[str] | Callable[[HttpRequest], str | Iterable[str]] | None


def _names(value: Iterable[str] | str) -> list[str]:
    """Scope names from a list, or from one string (never its characters)."""
    names = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(name, str) and name for name in names):
        raise ImproperlyConfigured(f"Scopes must be non-empty strings, not {value!r}.")
    return names


def _exempt(view: Callable) -> Callable:
    view.csrf_exempt = True
    view.login_required = False  # django.contrib.auth.middleware.LoginRequiredMiddleware
    return view


def _check_audience(audience: Any) -> None:
    """A fixed audience is checked when the view is defined, not on its first request."""
    if audience is not None and not callable(audience):
        audience_set(audience, "The view's audience")


def require_scopes(*scopes: Any, any: bool = False, audience: Audience = None) -> Callable:
    """Decorator: the view needs a valid access token granting all of ``scopes`` (one of, with ``any``).

    ``@require_scopes()`` (or bare ``@require_scopes``) only requires a valid token. ``audience``
    (a string, a list, or a callable taking the request and returning one) replaces the
    ``AUDIENCE`` setting for this view: for a site that serves several APIs.
    """
    if len(scopes) == 1 and callable(scopes[0]):
        return require_scopes(any=any, audience=audience)(scopes[0])
    needed = tuple(_names(scopes))
    _check_audience(audience)

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            view_audience = audience(request) if callable(audience) else audience
            try:
                claims = authenticate(request, audience=view_audience)
                check_scopes(claims, needed, any=any)
            except BearerError as exc:
                return error_response(attach(exc, view_audience))
            request.oauth_token = claims
            return view(request, *args, **kwargs)

        return _exempt(wrapper)

    return decorator


class RequireScopesMixin:
    """For class-based views: ``required_scopes`` for every method, plus ``read_scopes`` for
    GET/HEAD/OPTIONS and ``write_scopes`` for the others.

    Once either ``read_scopes`` or ``write_scopes`` is set the view is method-aware and a method
    whose set was left as None is a configuration error (never "any token will do"). With
    ``require_any_scope`` one of the scopes suffices. ``audience`` (or ``get_audience()``) replaces
    the ``AUDIENCE`` setting for this view, for a site that serves several APIs.
    """

    required_scopes: Iterable[str] = ()
    read_scopes: Iterable[str] | None = None
    write_scopes: Iterable[str] | None = None
    require_any_scope: bool = False
    audience: str | Iterable[str] | None = None

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable:
        _check_audience(initkwargs.get("audience", cls.audience))
        return _exempt(super().as_view(**initkwargs))

    def get_audience(self, request: HttpRequest) -> str | Iterable[str] | None:
        """This view's API identifier(s); None: the ``AUDIENCE`` setting. Override to compute it."""
        return self.audience

    def get_required_scopes(self, request: HttpRequest) -> tuple[str, ...]:
        scopes = _names(self.required_scopes)
        if self.read_scopes is not None or self.write_scopes is not None:
            read = request.method in SAFE_METHODS
            method_scopes = self.read_scopes if read else self.write_scopes
            if method_scopes is None:
                which = "read_scopes" if read else "write_scopes"
                raise ImproperlyConfigured(
                    f"{type(self).__name__} handles {request.method} but sets no {which}."
                )
            scopes += _names(method_scopes)
        return tuple(scopes)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        view_audience = self.get_audience(request)
        try:
            claims = authenticate(request, audience=view_audience)
            handler = getattr(self, request.method.lower(), None)
            if request.method.lower() in self.http_method_names and handler is not None:
                check_scopes(claims, self.get_required_scopes(request), any=self.require_any_scope)
        except BearerError as exc:
            return error_response(attach(exc, view_audience))
        request.oauth_token = claims
        return super().dispatch(request, *args, **kwargs)
