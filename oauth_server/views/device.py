"""RFC 8628: the device authorization endpoint (3.1-3.2) and the verification page (3.3).

The endpoint authenticates the client as the token endpoint does (the client-authentication
registry through our validator: a public client names itself, ``none``; a confidential one proves
itself), checks that it holds the device grant and may ask for the scopes, and answers the codes.
Errors are RFC 6749 5.2 JSON, never a 500 (DOT's view needs ``client_id`` in the body and answers
500 otherwise).

The verification page needs a signed-in user. They type the user code (``verification_uri``) or find
it filled in (``verification_uri_complete``: filled in only, never submitted for them, RFC 8628 5.4),
then see the code flow's consent screen with a warning to continue only if they started this on
their own device. Wrong codes are throttled per address and per user (``user_code_failures``,
``ratelimit.FailureLimiter``) and audited. The authorization the code found is kept in the session
(not in the form), so the decision cannot be redirected to another device's request.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.common import Request as OAuthlibRequest
from oauthlib.common import urlencode
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors
from oauthlib.oauth2.rfc6749.utils import scope_to_list

from .. import audit, consent, device, ratelimit
from ..conf import settings
from ..flows.consents import record_consent
from ..grants.device_code import NAME as GRANT_TYPE
from ..models import DeviceAuthorization, Scope
from ..validators import is_web_url
from .authorize import no_frames, session_auth_time
from .token import CLIENT_AUTH_CHALLENGE

logger = logging.getLogger(__name__)

SESSION_KEY = "oauth_server.device_authorization"
VERIFY_TEMPLATE = "oauth_server/device_verify.html"
CONSENT_TEMPLATE = "oauth_server/device_consent.html"
DONE_TEMPLATE = "oauth_server/device_done.html"


def _json_error(error: str, description: str, status: int = 400, headers: dict | None = None) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def verification_uri(request: HttpRequest) -> str:
    """``DEVICE_VERIFICATION_URI``, else this server's page on the pinned issuer's origin: a forged Host
    header must not send users to type their code on another site."""
    from .discovery import endpoint_url

    return settings.DEVICE_VERIFICATION_URI or endpoint_url(request, "device")


@method_decorator([csrf_exempt, login_not_required], name="dispatch")
class DeviceAuthorizationView(OAuthLibMixin, View):
    """``POST client_id [scope]`` (+ client authentication) -> device_code, user_code, URIs."""

    http_method_names = ["post", "options"]

    def http_method_not_allowed(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        description = _("The %(method)s method is not allowed here; send a POST.") % {
            "method": request.method
        }
        response = _json_error("invalid_request", description, status=405)
        response["Allow"] = "POST, OPTIONS"
        return _no_store(response)

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return _no_store(self._answer(request))

    def _answer(self, request: HttpRequest) -> HttpResponse:
        try:
            request.POST  # noqa: B018 -- a broken body is the client's error
        except (MultiPartParserError, RequestDataTooBig, TooManyFieldsSent, SuspiciousOperation, BadRequest):
            return _json_error("invalid_request", _("The request body could not be read."))
        core = self.get_oauthlib_core()
        try:
            oauthlib_request = OAuthlibRequest(
                request.build_absolute_uri(),
                http_method="POST",
                body=urlencode(core.extract_body(request)),
                headers=core.extract_headers(request),
            )
        except ValueError as exc:  # oauthlib refuses some characters in the body
            return _json_error("invalid_request", str(exc))
        validator = core.server.request_validator
        try:
            client, scopes = self._validate(oauthlib_request, validator)
        except oauth2_errors.OAuth2Error as error:
            device.described(error)
            headers = {"WWW-Authenticate": CLIENT_AUTH_CHALLENGE} if error.status_code == 401 else {}
            return JsonResponse(json.loads(error.json), status=error.status_code, headers=headers)
        issued = device.start(client, scopes)
        audit.record(
            audit.Event.DEVICE_AUTHORIZATION_REQUESTED,
            request=request,
            client=client,
            scopes=scopes,
            device_authorization_id=issued.authorization.pk,
        )
        uri = verification_uri(request)
        complete = f"{uri}{'&' if '?' in uri else '?'}{urlencode([('user_code', issued.user_code)])}"
        return JsonResponse(
            {
                "device_code": issued.device_code,
                "user_code": issued.user_code,
                "verification_uri": uri,
                "verification_uri_complete": complete,
                "expires_in": issued.expires_in,
                "interval": issued.authorization.interval,
            }
        )

    @staticmethod
    def _validate(request: OAuthlibRequest, validator: Any) -> tuple[Any, list[str]]:
        """RFC 8628 3.1 / RFC 6749 5.2: the client, its grant, the scopes; else an OAuth2Error."""
        for param in ("client_id", "scope"):
            if param in request.duplicate_params:
                raise oauth2_errors.InvalidRequestError(
                    description=f"Duplicate {param} parameter.", request=request
                )
        if validator.client_authentication_required(request):
            if not validator.authenticate_client(request):
                raise oauth2_errors.InvalidClientError(request=request)
        elif not request.client_id:
            raise oauth2_errors.InvalidRequestError(
                description="Missing client_id parameter.", request=request
            )
        elif not validator.authenticate_client_id(request.client_id, request):
            raise oauth2_errors.InvalidClientError(request=request)
        client = request.client
        request.client_id = client.client_id
        if not client.has_grant_type(GRANT_TYPE):
            raise oauth2_errors.UnauthorizedClientError(
                description="The client may not use the device authorization grant.", request=request
            )
        requested = scope_to_list(request.scope) if request.scope else None
        if requested and any("\x00" in s for s in requested):
            raise oauth2_errors.InvalidScopeError(request=request)
        scopes = list(
            dict.fromkeys(requested or validator.get_default_scopes(client.client_id, request) or [])
        )
        if not validator.validate_scopes(client.client_id, scopes, client, request):
            raise oauth2_errors.InvalidScopeError(request=request)
        return client, scopes


# --- the verification page ------------------------------------------------------------------------
class UserCodeForm(forms.Form):
    user_code = forms.CharField(
        label=gettext_lazy("Code shown on your device"),
        max_length=device.MAX_USER_CODE_INPUT,
    )  # rendered by device_verify.html itself (hint, error and ARIA attributes)


class UserCodeThrottle(ratelimit.AttemptThrottle):
    """``user_code_failures``: one attempt reserved before the lookup, given back if the code was
    right, per address and per signed-in user and address, with a per-user ceiling."""

    limit_name = ratelimit.USER_CODE_FAILURES
    label = "User-code throttling"

    def __init__(self, request: HttpRequest):
        super().__init__(request, f"user:{request.user.pk}")

    def audit_refusal(self, counter: ratelimit.Counter, retry_after: int) -> None:
        audit.record(
            audit.Event.USER_CODE_THROTTLED,
            request=self.request,
            user=self.request.user,
            outcome=audit.FAILURE,
            scope=counter.scope,
            limit=counter.rate.limit,
            period=counter.rate.period,
            retry_after=retry_after,
        )


@method_decorator(login_not_required, name="dispatch")  # it sends anonymous users to sign in itself
class SignedInView(View):
    """Anonymous users go to the sign-in page and come back to this URL (its query included)."""

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return no_frames(redirect_to_login(request.get_full_path()))
        return no_frames(super().dispatch(request, *args, **kwargs))


@method_decorator(never_cache, name="dispatch")
class DeviceVerificationView(SignedInView):
    """Enter the user code (RFC 8628 3.3); ``?user_code=`` fills the field in, nothing more."""

    http_method_names = ["get", "post", "head"]

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        initial = request.GET.get("user_code", "")
        code = device.normalize_user_code(initial)
        form = UserCodeForm(initial={"user_code": device.format_user_code(code) if code else ""})
        return render(request, VERIFY_TEMPLATE, {"form": form})

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        form = UserCodeForm(request.POST)
        if not form.is_valid():
            return render(request, VERIFY_TEMPLATE, {"form": form}, status=400)
        throttle = UserCodeThrottle(request)
        if throttle.refused is not None:
            return throttle.refusal()
        authorization = device.find_by_user_code(form.cleaned_data["user_code"])
        throttle.finish(succeeded=authorization is not None)
        if authorization is None:
            audit.record(
                audit.Event.USER_CODE_FAILED, request=request, user=request.user, outcome=audit.FAILURE
            )
            form.add_error(
                "user_code",
                _("This code is not valid. Check the code on your device; it may have expired or been used."),
            )
            return render(request, VERIFY_TEMPLATE, {"form": form}, status=400)
        request.session[SESSION_KEY] = authorization.pk
        return redirect("oauth2_provider:device-confirm")


@method_decorator(never_cache, name="dispatch")
class DeviceConfirmView(SignedInView):
    """The code flow's consent screen for the authorization the session's code found; allow or deny."""

    http_method_names = ["get", "post", "head"]

    def _authorization(self, request: HttpRequest) -> DeviceAuthorization | None:
        pk = request.session.get(SESSION_KEY)
        if not isinstance(pk, int):
            return None
        return (
            DeviceAuthorization.objects.pending()
            .select_related("client")
            .filter(pk=pk, client__is_enabled=True)
            .first()
        )

    def _gone(self, request: HttpRequest) -> HttpResponse:
        request.session.pop(SESSION_KEY, None)
        notice = _("This request has expired or was already answered. Enter the code again.")
        return render(request, VERIFY_TEMPLATE, {"form": UserCodeForm(), "notice": notice}, status=400)

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        authorization = self._authorization(request)
        if authorization is None:
            return self._gone(request)
        client = authorization.client
        scopes = authorization.scopes
        decision = consent.decide(request.user, client, scopes)
        descriptions = dict(Scope.objects.filter(name__in=scopes).values_list("name", "description"))
        # Always asked, even for a remembered consent or a trusted client: the user must confirm
        # the request comes from their own device (RFC 8628 5.4, remote phishing).
        granted = set(decision.granted)
        context = {
            "form": forms.Form(),
            "client": client,
            "application": client,
            "scopes": scopes,
            "new_scopes": [(n, descriptions.get(n, n)) for n in scopes if n not in granted],
            "granted_scopes": [(n, descriptions.get(n, n)) for n in scopes if n in granted],
            "redirect_origin": "",
            "client_links": {
                field: url
                for field in ("logo_uri", "client_uri", "policy_uri", "tos_uri")
                if (url := getattr(client, field, "")) and is_web_url(url)
            },
        }
        return render(request, CONSENT_TEMPLATE, context)

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        authorization = self._authorization(request)
        if authorization is None:
            return self._gone(request)
        allow = request.POST.get("allow") == "true"
        auth_time = datetime.fromtimestamp(session_auth_time(request), tz=UTC)
        if not device.decide(authorization, request.user, allow=allow, auth_time=auth_time):
            return self._gone(request)
        request.session.pop(SESSION_KEY, None)
        client = authorization.client
        if allow:
            record_consent(request.user, client, authorization.scopes)
        else:
            audit.record(
                audit.Event.CONSENT_DENIED,
                request=request,
                user=request.user,
                client=client,
                outcome=audit.FAILURE,
                scopes=authorization.scopes,
                device_authorization_id=authorization.pk,
            )
        return render(request, DONE_TEMPLATE, {"client": client, "allowed": allow})


def urlpatterns() -> list:
    """Mounted by the grant registry (``GrantSpec.urls``), each view with its headers and limits."""
    from ..cors import client_cors
    from ..headers import page_headers, token_headers
    from ..ratelimit import rate_limit

    endpoint = token_headers(
        client_cors(["POST", "OPTIONS"])(
            rate_limit("device_authorization")(DeviceAuthorizationView.as_view())
        )
    )
    return [
        path("device_authorization/", endpoint, name="device-authorization"),
        path("device/", page_headers(DeviceVerificationView.as_view()), name="device"),
        path("device/confirm/", page_headers(DeviceConfirmView.as_view()), name="device-confirm"),
    ]
