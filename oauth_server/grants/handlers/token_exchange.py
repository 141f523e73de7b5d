"""The token-exchange grant's oauthlib handler (spec and constants: ``grants/token_exchange.py``).

Imported only when the server is built (``GrantSpec.build`` is an import path), so the grant
registry, which the model and settings read, never imports the models through it.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from django.utils import timezone
from oauth2_provider.oauth2_validators import is_valid_resource_uri
from oauth2_provider.scopes import get_scopes_backend
from oauthlib.oauth2.rfc6749 import errors
from oauthlib.oauth2.rfc6749.grant_types.base import GrantTypeBase
from oauthlib.oauth2.rfc6749.utils import scope_to_list

from ... import audit
from ...claims import loaded_subject
from ...codes import locked
from ...models import AccessToken
from ...request_state import TokenExchange, state_of
from ...scopes import describe_refused_scopes
from ...tokens import token_checksum
from ..token_exchange import (
    ACCESS_TOKEN_TYPE,
    MAX_ACT_DEPTH,
    MAX_TOKEN_LENGTH,
    NAME,
    SINGLE_PARAMETERS,
    SUBJECT_REFUSED,
    SUPPORTED_REQUESTED_TOKEN_TYPES,
    SUPPORTED_SUBJECT_TOKEN_TYPES,
)

log = logging.getLogger(__name__)


def act_depth(act: Any) -> int:
    depth = 0
    while isinstance(act, dict) and depth <= MAX_ACT_DEPTH:
        depth += 1
        act = act.get("act")
    return depth


class InvalidTargetError(errors.OAuth2Error):
    """RFC 8693 2.2.2: the server will not issue a token for the requested resource or audience."""

    error = "invalid_target"
    status_code = 400


def _refuse_token(request, reason: str, description: str) -> errors.OAuth2Error:
    """RFC 8693 2.2.2: an invalid or unacceptable subject or actor token is ``invalid_request``.

    The refusal is audited (``token_exchanged``, failure, with ``reason``): a stolen or forged token
    presented to the exchange is an event a security team wants to see.
    """

    audit.token_exchange_refused(request, reason)
    return errors.InvalidRequestError(description=description, request=request)


def _params(request) -> dict[str, list[str]]:
    """Every body parameter by name (oauthlib keeps only the ones it knows as attributes)."""
    values: dict[str, list[str]] = {}
    for key, value in getattr(request, "decoded_body", None) or []:
        values.setdefault(key, []).append(value)
    return values


def _active_token(value: str):
    """The live access-token row whose value this is (by checksum), with its user and client; None
    for anything else: a refresh token, an ID token, a foreign or forged JWT, garbage."""

    if not value or len(value) > MAX_TOKEN_LENGTH or "\x00" in value:
        return None
    # Locked (TokenView's transaction, PostgreSQL): a revocation running now either finishes first
    # (the token is then gone) or waits for the new token's row, which it then deletes with this one.
    rows = AccessToken.objects.select_related("user", "application", "user__oauth_subject").filter(
        token_checksum=token_checksum(value)
    )
    token = locked(rows, of=("self",)).first()
    if token is None or token.expires <= timezone.now():
        return None
    if not token.application.is_enabled or (token.user_id and not token.user.is_active):
        return None
    return token


def _token_subject(token) -> str:
    return loaded_subject(token.user) if token.user_id else token.application.client_id


class TokenExchangeGrant(GrantTypeBase):
    """RFC 8693 2.1 token-exchange requests at the token endpoint."""

    def create_token_response(self, request, token_handler):
        headers = self._get_default_headers()
        try:
            self.validate_token_request(request)
        except errors.OAuth2Error as e:
            headers.update(e.headers)
            return headers, e.json, e.status_code
        token = token_handler.create_token(request, refresh_token=False)
        token["issued_token_type"] = ACCESS_TOKEN_TYPE  # RFC 8693 2.2.1
        for modifier in self._token_modifiers:
            token = modifier(token)
        self.request_validator.save_token(token, request)
        return headers, json.dumps(token), 200

    def validate_token_request(self, request) -> None:
        for validator in self.custom_validators.pre_token:
            validator(request)
        if request.grant_type != NAME:
            raise errors.UnsupportedGrantTypeError(request=request)
        for param in SINGLE_PARAMETERS:
            if param in request.duplicate_params:
                raise errors.InvalidRequestError(description=f"Duplicate {param} parameter.", request=request)

        # Confidential clients only, by any registered method (RFC 8693 2.1 / RFC 6749 3.2.1).
        if not self.request_validator.authenticate_client(request):
            raise errors.InvalidClientError(description="Client authentication failed.", request=request)
        if not self.request_validator.validate_grant_type(
            request.client.client_id, request.grant_type, request.client, request
        ):
            raise errors.UnauthorizedClientError(
                description="This client is not allowed to use token exchange.", request=request
            )
        request.client_id = request.client.client_id
        client = request.client

        params = {key: values[0] for key, values in _params(request).items()}
        subject_value = params.get("subject_token", "")
        subject_type = params.get("subject_token_type", "")
        if not subject_value:
            raise errors.InvalidRequestError(description="subject_token is required.", request=request)
        if not subject_type:
            raise errors.InvalidRequestError(description="subject_token_type is required.", request=request)
        if subject_type not in SUPPORTED_SUBJECT_TOKEN_TYPES:
            raise errors.InvalidRequestError(
                description=(
                    f"Unsupported subject_token_type; this server exchanges {ACCESS_TOKEN_TYPE} only "
                    "(access tokens it issued)."
                ),
                request=request,
            )
        requested_type = params.get("requested_token_type") or ACCESS_TOKEN_TYPE
        if requested_type not in SUPPORTED_REQUESTED_TOKEN_TYPES:
            raise errors.InvalidRequestError(
                description=f"Unsupported requested_token_type; this server issues {ACCESS_TOKEN_TYPE}.",
                request=request,
            )
        actor_value = params.get("actor_token", "")
        actor_type = params.get("actor_token_type", "")
        if bool(actor_value) != bool(actor_type):
            raise errors.InvalidRequestError(
                description="actor_token_type is required with actor_token, and only with it (RFC 8693 2.1).",
                request=request,
            )
        if actor_type and actor_type not in SUPPORTED_SUBJECT_TOKEN_TYPES:
            raise errors.InvalidRequestError(
                description=f"Unsupported actor_token_type; use {ACCESS_TOKEN_TYPE}.", request=request
            )

        subject = _active_token(subject_value)
        if subject is None:
            raise _refuse_token(
                request,
                "invalid_subject_token",
                SUBJECT_REFUSED,
            )
        if subject.user_id is None:
            raise _refuse_token(request, "subject_not_a_user", SUBJECT_REFUSED)
        serves = set(client.resource_identifiers or []) & set(subject.audience.split())
        if subject.application_id != client.pk and not serves:
            raise _refuse_token(
                request,
                "subject_token_not_for_client",
                SUBJECT_REFUSED,
            )
        request.user = subject.user
        _token_subject(subject)  # the user's sub, from the row just loaded: the JWT's sub, no query

        actor = None
        if actor_value:
            actor = _active_token(actor_value)
            if actor is None or actor.application_id != client.pk:
                raise _refuse_token(
                    request,
                    "invalid_actor_token",
                    "actor_token is not an active access token issued to this client.",
                )

        targets = self._targets(request, client)
        scopes = self._scopes(request, client, subject)
        request.scopes = scopes

        remaining = math.floor((subject.expires - timezone.now()).total_seconds())
        if remaining < 1:
            raise _refuse_token(request, "invalid_subject_token", SUBJECT_REFUSED)

        if client.token_exchange_impersonation and actor is None:
            act = None
        else:
            act = {"sub": _token_subject(actor) if actor is not None else client.client_id}
            if act["sub"] != client.client_id:
                act["client_id"] = client.client_id
            if subject.act:
                if act_depth(subject.act) >= MAX_ACT_DEPTH:
                    raise _refuse_token(
                        request,
                        "delegation_chain_too_long",
                        f"subject_token's delegation chain is already {MAX_ACT_DEPTH} actors long.",
                    )
                act["act"] = subject.act  # RFC 8693 4.1: the chain, most recent actor outermost
        state = state_of(request)
        state.exchange = TokenExchange(
            subject=subject,
            act=act,
            lifetime_cap=remaining,
            actor=actor,
            requested_token_type=requested_type,
        )

        for validator in self.custom_validators.post_token:
            validator(request)  # tokens.resolve_audience, for the resource parameters
        state.audience = targets

    def _targets(self, request, client) -> list[str]:
        """The new token's ``aud``: the requested resources and audiences, each registered for the
        acting client (RFC 8693 2.1, 2.2.2); none requested: all the client's audiences."""

        params = _params(request)
        allowed = list(client.audiences or [])
        requested = list(dict.fromkeys(params.get("resource", []) + params.get("audience", [])))
        for target in requested:
            if target not in allowed or not is_valid_resource_uri(target):
                raise InvalidTargetError(
                    description=f"This client may not exchange tokens for the target {target[:200]!r}.",
                    request=request,
                )
        if not (requested or allowed):
            raise InvalidTargetError(
                description="This client has no audience registered for token exchange.", request=request
            )
        return requested or allowed

    def _scopes(self, request, client, subject) -> list[str]:
        """Scopes only shrink: within the subject token's and the acting client's allowed scopes."""

        granted = subject.scope.split()
        allowed = set(get_scopes_backend().get_available_scopes(application=client, request=request))
        permitted = [scope for scope in granted if scope in allowed]
        requested = scope_to_list(request.scope) if request.scope is not None else None
        if requested is None:
            if not permitted:
                raise errors.InvalidScopeError(
                    description="The subject token has no scope this client may use.", request=request
                )
            return permitted
        if not requested:
            raise errors.InvalidScopeError(description="scope is empty.", request=request)
        description = describe_refused_scopes(requested, allowed, granted)
        if description is not None:
            raise errors.InvalidScopeError(description=description, request=request)
        return list(dict.fromkeys(requested))


def build(request_validator: Any) -> TokenExchangeGrant:
    return TokenExchangeGrant(request_validator)
