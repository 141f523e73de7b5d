"""The device grant's token handler, endpoints and metadata (spec: ``grants/device_code.py``).

Imported only when the server is built (``GrantSpec.build`` is an import path), so the grant
registry, which the model and settings read, never imports the models through it.
"""

from __future__ import annotations

import json
from typing import Any

from oauthlib.oauth2.rfc6749 import errors
from oauthlib.oauth2.rfc6749.grant_types.base import GrantTypeBase

from ... import device
from ...views import device as views
from ...views.discovery import endpoint_url
from ..device_code import NAME


class DeviceCodeGrant(GrantTypeBase):
    """RFC 8628 3.4: exchange an approved device code for tokens, once."""

    def create_token_response(self, request, token_handler) -> tuple[dict, str, int]:
        headers = self._get_default_headers()
        try:
            self.validate_token_request(request)
            token = token_handler.create_token(request, refresh_token=self.refresh_token)
            for modifier in self._token_modifiers:
                token = modifier(token, token_handler, request)
            self.request_validator.save_token(token, request)
            # After the save, as codes are: a concurrent winner makes this raise, and TokenView
            # rolls back the tokens just written.
            device.redeem(request.device_authorization, request)
        except errors.OAuth2Error as e:
            device.described(e)
            headers.update(e.headers)
            return headers, e.json, e.status_code
        return headers, json.dumps(token), 200

    def validate_token_request(self, request) -> None:
        if request.grant_type != NAME:
            raise errors.UnsupportedGrantTypeError(request=request)
        for validator in self.custom_validators.pre_token:
            validator(request)
        for param in ("client_id", "grant_type", "device_code"):
            if param in request.duplicate_params:
                raise errors.InvalidRequestError(description=f"Duplicate {param} parameter.", request=request)
        device_code = dict(request.decoded_body or []).get("device_code")
        if not device_code:
            raise errors.InvalidRequestError(description="Missing device_code parameter.", request=request)
        if self.request_validator.client_authentication_required(request):
            if not self.request_validator.authenticate_client(request):
                raise errors.InvalidClientError(request=request)
        elif not self.request_validator.authenticate_client_id(request.client_id, request):
            raise errors.InvalidClientError(request=request)
        request.client_id = request.client_id or request.client.client_id
        self.validate_grant_type(request)
        authorization = device.redeemable(device_code, request.client, request)
        request.device_authorization = authorization
        request.user = authorization.user
        request.scopes = authorization.scopes
        request.auth_time = authorization.auth_time
        for validator in self.custom_validators.post_token:  # tokens.resolve_audience, added by the server
            validator(request)


def build(request_validator: Any) -> DeviceCodeGrant:
    return DeviceCodeGrant(request_validator)


def urls() -> list:
    return views.urlpatterns()


def metadata(request: Any) -> dict[str, str]:
    return {"device_authorization_endpoint": endpoint_url(request, "device-authorization")}
