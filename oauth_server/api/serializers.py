"""Serializers of the management API.

JSON is taken strictly: a string is not a boolean, ``"3600"`` is not a number, an unknown field is
an error (a typo such as ``redirect_uri`` must not look like success), and every list is bounded.
Model rules (``Client.clean``, DOT's redirect URI checks) stay the single source of truth: the
serializers check shapes, then the model validates and Django errors become field errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings
from rest_framework.validators import UniqueValidator

from .. import client_auth, profiles
from ..conf import settings
from ..flows import clients as client_flows
from ..models import Client, Consent, GrantType, Scope, validate_scope_token
from ..validators import RESOURCE_URI_MESSAGE, has_whitespace, invalid_resource_uris

MAX_URIS = 50
MAX_SCOPES = 500
MAX_URI_LENGTH = 2000
MAX_LIFETIME = 2**31 - 1  # PositiveIntegerField on every database


# --- strict JSON fields ------------------------------------------------------------------------------
class StrictCharField(serializers.CharField):
    """Only JSON strings (DRF's CharField turns 12 into "12")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """Only JSON true/false (DRF's BooleanField also takes "yes", "on", 1...)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictIntegerField(serializers.IntegerField):
    """Only JSON integers (DRF's IntegerField also takes "10", 10.0 and true)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class BoundedListField(serializers.ListField):
    """A JSON list whose length is checked before any item is (a huge list costs nothing)."""

    def to_internal_value(self, data: Any) -> list:
        if isinstance(data, str | Mapping) or not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        values = super().to_internal_value(data)
        return list(dict.fromkeys(values))  # duplicates are dropped, order kept


class URIListField(BoundedListField):
    """Redirect URIs, stored space-separated (DOT's format): no whitespace inside a URI."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", StrictCharField(max_length=MAX_URI_LENGTH, allow_blank=False))
        kwargs.setdefault("max_length", MAX_URIS)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        values = super().to_internal_value(data)
        bad = [uri for uri in values if has_whitespace(uri)]
        if bad:
            raise serializers.ValidationError(_("A URI cannot contain whitespace."))
        return values

    def to_representation(self, value: Any) -> list[str]:
        return value.split() if isinstance(value, str) else list(value or [])


class ResourceURIListField(BoundedListField):
    """RFC 8707 resource URIs: absolute, no fragment, no wildcard (compared by exact string)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", StrictCharField(max_length=MAX_URI_LENGTH, allow_blank=False))
        kwargs.setdefault("max_length", MAX_URIS)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        values = super().to_internal_value(data)
        bad = invalid_resource_uris(values)
        if bad:
            raise serializers.ValidationError(RESOURCE_URI_MESSAGE % {"uris": ", ".join(bad[:5])})
        return values


class ScopeNamesField(BoundedListField):
    """Scope names, each of which must exist; represented from the prefetched ``allowed_scopes``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", StrictCharField(max_length=100, allow_blank=False))
        kwargs.setdefault("max_length", MAX_SCOPES)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        names = super().to_internal_value(data)
        known = set(Scope.objects.filter(name__in=names).values_list("name", flat=True))
        missing = [name for name in names if name not in known]
        if missing:
            raise serializers.ValidationError(_("Unknown scopes: %s") % " ".join(missing[:20]))
        return names

    def to_representation(self, value: Any) -> list[str]:
        return [scope.name for scope in value.all()]


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not know instead of silently dropping them."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in self.fields)
            if unknown:
                raise serializers.ValidationError({key: [_("Unknown field.")] for key in unknown[:20]})
        return super().to_internal_value(data)


def drf_errors(exc: DjangoValidationError, field_map: Mapping[str, str], fields: Any) -> dict[str, list[str]]:
    """A Django ``ValidationError`` as DRF field errors; fields the API does not show go to non-field."""
    non_field = api_settings.NON_FIELD_ERRORS_KEY
    if not hasattr(exc, "error_dict"):
        return {non_field: list(exc.messages)}
    errors: dict[str, list[str]] = {}
    for field, messages in exc.message_dict.items():
        key = field_map.get(field, field)
        if key == NON_FIELD_ERRORS or key not in fields:
            key = non_field
        errors.setdefault(key, []).extend(messages)
    return errors


# --- clients ---------------------------------------------------------------------------------------
CLIENT_FIELD_MAP = {"allowed_scopes": "scopes"}


class ClientSerializer(StrictSerializer):
    """A client as operators see it; the secret (or its hash) is never part of it."""

    client_id = serializers.CharField(read_only=True)
    name = StrictCharField(max_length=255)
    client_type = serializers.ChoiceField(choices=Client.CLIENT_TYPES)
    grant_types = BoundedListField(child=serializers.ChoiceField(choices=GrantType.choices), max_length=10)
    redirect_uris = URIListField()
    post_logout_redirect_uris = URIListField()
    scopes = ScopeNamesField(source="allowed_scopes")
    skip_consent = StrictBooleanField(required=False)
    token_exchange_impersonation = StrictBooleanField(
        required=False,
        help_text=_("Token exchange (RFC 8693): issue impersonation tokens (no act claim). Trusted clients."),
    )
    is_enabled = StrictBooleanField(required=False)
    logo_uri = serializers.URLField(max_length=500, required=False, allow_blank=True)
    client_uri = serializers.URLField(max_length=500, required=False, allow_blank=True)
    policy_uri = serializers.URLField(max_length=500, required=False, allow_blank=True)
    tos_uri = serializers.URLField(max_length=500, required=False, allow_blank=True)
    access_token_lifetime = StrictIntegerField(
        min_value=1,
        max_value=MAX_LIFETIME,
        required=False,
        allow_null=True,
        help_text=_("Seconds; null: site default."),
    )
    refresh_token_lifetime = StrictIntegerField(
        min_value=1,
        max_value=MAX_LIFETIME,
        required=False,
        allow_null=True,
        help_text=_("Seconds; null: site default."),
    )
    audiences = ResourceURIListField()
    resource_identifiers = ResourceURIListField()
    access_token_format = serializers.ChoiceField(
        choices=[("", _("Site default")), ("jwt", "jwt"), ("opaque", "opaque")],
        required=False,
        allow_blank=True,
    )
    token_endpoint_auth_method = serializers.ChoiceField(
        choices=client_auth.registry.choices(),
        required=False,
        allow_blank=True,
        help_text=_(
            "RFC 7591: how the client authenticates at the token endpoint. Omitted or empty: "
            "client_secret_basic for confidential clients, none for public ones."
        ),
    )
    require_pushed_authorization_requests = StrictBooleanField(required=False)
    require_dpop = StrictBooleanField(required=False)
    security_profile = serializers.ChoiceField(
        choices=profiles.registry.choices(),
        required=False,
        allow_blank=True,
        help_text=_(
            "A security profile (docs/fapi.md): fapi2 requires PAR, S256 PKCE, private_key_jwt, DPoP "
            "and https redirect URIs. Empty: the site's profile, if any."
        ),
    )
    require_signed_request_object = StrictBooleanField(required=False)
    jwks = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text=_("The client's public keys (a JWK Set), for private_key_jwt."),
    )
    jwks_uri = serializers.URLField(
        max_length=500,
        required=False,
        allow_blank=True,
        help_text=_("Or an https URL where the client publishes its JWK Set."),
    )
    created = serializers.DateTimeField(read_only=True)
    updated = serializers.DateTimeField(read_only=True)

    def validate_grant_types(self, value: list[str]) -> list[str]:
        # A stable order, as the admin form stores it.
        return [grant for grant in GrantType.values if grant in value]

    def _model_fields(self, data: dict[str, Any]) -> dict[str, Any]:
        fields = dict(data)
        for name in ("redirect_uris", "post_logout_redirect_uris"):
            if name in fields:
                fields[name] = " ".join(fields[name])
        return fields

    def create(self, validated_data: dict[str, Any]) -> Client:
        fields = self._model_fields(validated_data)
        scopes = fields.pop("allowed_scopes", [])
        redirect_uris = fields.pop("redirect_uris", "").split()
        try:
            client, secret = Client.objects.create_client(
                redirect_uris=redirect_uris, scopes=scopes, **fields
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError(drf_errors(exc, CLIENT_FIELD_MAP, self.fields)) from None
        client.new_secret = secret
        return client

    def update(self, client: Client, validated_data: dict[str, Any]) -> Client:
        fields = self._model_fields(validated_data)
        scopes = fields.pop("allowed_scopes", None)
        if fields.get("client_type", client.client_type) != client.client_type:
            # Like the secret, the method follows a change of type unless given in the same request.
            fields.setdefault("token_endpoint_auth_method", "")
        for name, value in fields.items():
            setattr(client, name, value)
        # The secret follows the client type and method (as in the admin): a public client turned
        # confidential gets a generated secret, shown in this response only; the other way round drops it.
        new_secret = None
        if client.needs_new_secret:  # none yet, or client_secret_jwt with only a hash
            new_secret = client.set_secret()
        elif not client.uses_secret:
            client.client_secret = ""
        try:
            client.full_clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(drf_errors(exc, CLIENT_FIELD_MAP, self.fields)) from None
        with transaction.atomic():
            client.save()
            if scopes is not None:
                client.allowed_scopes.set(Scope.objects.filter(name__in=scopes))
            if new_secret:
                client_flows.secret_rotated(client)
        client.new_secret = new_secret
        return client


class ClientWithSecretSerializer(ClientSerializer):
    """The response that creates a secret: the only one that ever carries it (null for public clients)."""

    client_secret = serializers.CharField(
        source="new_secret",
        read_only=True,
        allow_null=True,
        help_text=_("The clear client secret. Shown in this response only: store it now."),
    )


class ClientSecretSerializer(serializers.Serializer):
    client_id = serializers.CharField(read_only=True)
    client_secret = serializers.CharField(
        source="new_secret", read_only=True, help_text=_("The new secret. Shown in this response only.")
    )


# --- scopes ----------------------------------------------------------------------------------------
class ScopeSerializer(StrictSerializer):
    name = StrictCharField(
        max_length=100,
        validators=[validate_scope_token, UniqueValidator(queryset=Scope.objects.all())],
        help_text=_("Immutable once created: tokens and consents store scope names."),
    )
    description = StrictCharField(max_length=255)
    is_default = StrictBooleanField(required=False)
    created = serializers.DateTimeField(read_only=True)
    updated = serializers.DateTimeField(read_only=True)

    def validate_name(self, value: str) -> str:
        if self.instance is not None and value != self.instance.name:
            raise serializers.ValidationError(
                _(
                    "A scope cannot be renamed: tokens and consents store its name. "
                    "Create a new scope instead."
                )
            )
        return value

    def create(self, validated_data: dict[str, Any]) -> Scope:
        return Scope.objects.create(**validated_data)

    def update(self, scope: Scope, validated_data: dict[str, Any]) -> Scope:
        for name, value in validated_data.items():
            setattr(scope, name, value)
        scope.save()
        return scope


# --- users' consents and tokens ----------------------------------------------------------------------
class ConsentSerializer(serializers.ModelSerializer):
    client_id = serializers.CharField(source="client.client_id", read_only=True)
    client_name = serializers.CharField(source="client.name", read_only=True)
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = Consent
        fields = ["client_id", "client_name", "scope", "active", "created", "updated", "revoked_at"]
        read_only_fields = fields


TOKEN_TYPES = ("access_token", "refresh_token")


class TokenSerializer(serializers.Serializer):
    """One issued token, without its value or checksum (a row of ``views._access_rows``/``_refresh_rows``)."""

    type = serializers.ChoiceField(choices=TOKEN_TYPES, source="t_type", read_only=True)
    id = serializers.IntegerField(source="t_id", read_only=True)
    client_id = serializers.CharField(source="t_client_id", read_only=True)
    scope = serializers.CharField(
        source="t_scope",
        read_only=True,
        help_text=_(
            "Space-separated. Empty for a refresh token whose access token is gone (rotated or revoked)."
        ),
    )
    created = serializers.DateTimeField(source="t_created", read_only=True)
    expires = serializers.SerializerMethodField(
        help_text=_(
            "Refresh tokens: issue time plus the client's (or the site's) refresh lifetime; null: never."
        )
    )
    revoked = serializers.DateTimeField(source="t_revoked", read_only=True, allow_null=True)

    @extend_schema_field({"type": "string", "format": "date-time", "nullable": True})
    def get_expires(self, row: Mapping[str, Any]) -> Any:
        if row["t_type"] == "access_token":
            value = row["t_expires"]
        else:
            lifetime = row["t_rt_lifetime"] or settings.REFRESH_TOKEN_LIFETIME
            value = row["t_created"] + timedelta(seconds=lifetime) if lifetime else None
        return serializers.DateTimeField().to_representation(value) if value else None


class ErrorSerializer(serializers.Serializer):
    """Every error response (for the OpenAPI document)."""

    error = serializers.CharField()
    error_description = serializers.CharField()
    errors = serializers.DictField(required=False, help_text=_("Validation errors by field (400 only)."))
