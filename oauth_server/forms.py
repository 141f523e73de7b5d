"""Admin forms.

The client form edits what a staff member reasons about (grant types as checkboxes, one redirect URI
per line) and stores it in the shapes the model and DOT expect (a JSON list, space-separated URIs).
It never carries the client secret: the secret is generated server-side and only its hash is stored.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from . import client_auth, profiles
from .models import Client, GrantType
from .validators import (
    ORIGINS_PUBLIC_ONLY_MESSAGE,
    RESOURCE_URI_MESSAGE,
    clean_origins,
    invalid_resource_uris,
    may_list_origins,
)


class URIListField(forms.CharField):
    """A list of URIs edited one per line and stored space-separated (DOT's format).

    Normalising in ``to_python`` also makes ``has_changed`` compare lists rather than raw text, so
    re-saving a form whose browser sent CRLF line ends does not log a spurious change.
    """

    widget = forms.Textarea(attrs={"rows": 3, "cols": 80})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return "\n".join(value.split())
        return value

    def to_python(self, value: Any) -> str:
        value = super().to_python(value)
        return " ".join(dict.fromkeys(value.split()))


class OriginListField(URIListField):
    """CORS origins (``scheme://host[:port]``), one per line; a trailing slash is dropped, since
    browsers never send one and DOT's validation would refuse it as a path."""

    def to_python(self, value: Any) -> str:
        return " ".join(clean_origins(super().to_python(value).split()))


class ResourceURIListField(forms.CharField):
    """A JSON list of resource URIs (RFC 8707 audiences), edited one per line.

    Each entry must be an absolute URI without a fragment (RFC 8707 2): a token's ``aud`` is
    compared by exact string, so a typo here silently locks a client out of its API.
    """

    widget = forms.Textarea(attrs={"rows": 3, "cols": 80})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(str(v) for v in value)
        return value

    def to_python(self, value: Any) -> list[str]:
        value = super().to_python(value)
        return list(dict.fromkeys(value.split()))

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        bad = invalid_resource_uris(value)
        if bad:
            raise ValidationError(
                RESOURCE_URI_MESSAGE,
                code="invalid_uri",
                params={"uris": ", ".join(bad)},
            )


def https_url_formfield(db_field: models.Field, **kwargs: Any) -> forms.Field | None:
    """Model form fields, with URL fields completing a scheme-less entry to https (not http)."""
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return db_field.formfield(**kwargs)


class ClientAdminForm(forms.ModelForm):
    """Create or edit a client; model validation (``Client.clean``) runs through the form.

    ``new_secret`` holds the clear secret when saving this form creates one (a new confidential
    client, or a public client turned confidential), so the admin can show it exactly once.
    """

    grant_types = forms.MultipleChoiceField(
        label=_("grant types"),
        choices=GrantType.choices,
        widget=forms.CheckboxSelectMultiple,
        # Left optional so the model's own message ("Choose at least one grant type.") is the one shown.
        required=False,
        help_text=_(
            "refresh_token needs authorization_code; client_credentials needs a confidential client."
        ),
    )
    redirect_uris = URIListField(
        label=_("redirect URIs"),
        required=False,
        help_text=_("One URI per line. Matched exactly: no wildcards, no fragments."),
    )
    post_logout_redirect_uris = URIListField(
        label=_("post-logout redirect URIs"),
        required=False,
        help_text=_("One URI per line. Matched exactly."),
    )
    allowed_origins = OriginListField(
        label=_("allowed origins (CORS)"),
        required=False,
        help_text=_(
            "Public clients only: one origin per line (https://app.example.com) of a browser "
            "application that calls the token, revocation and UserInfo endpoints itself."
        ),
    )
    token_endpoint_auth_method = forms.ChoiceField(
        label=_("client authentication method"),
        required=False,
        choices=lambda: [("", _("The usual one for the client type")), *client_auth.registry.choices()],
        help_text=_(
            "How the client proves who it is at the token endpoint (RFC 7591). Empty: a secret for "
            "confidential clients, none for public ones. client_secret_basic and client_secret_post "
            "accept each other."
        ),
    )
    security_profile = forms.ChoiceField(
        label=_("security profile"),
        required=False,
        choices=lambda: [("", _("None (the site's profile, if any)")), *profiles.registry.choices()],
        help_text=_(
            "FAPI 2.0: the client must push its requests (PAR), use PKCE (S256), authenticate with "
            "private_key_jwt, bind its tokens with DPoP, and use https redirect URIs (docs/fapi.md)."
        ),
    )
    audiences = ResourceURIListField(
        label=_("audiences"),
        required=False,
        help_text=_(
            "One URI per line: the APIs this client's access tokens are for. A token's aud is the "
            "requested resource (RFC 8707) if listed here, else all of these, else the site default."
        ),
    )
    resource_identifiers = ResourceURIListField(
        label=_("resource server identifiers"),
        required=False,
        help_text=_(
            "One URI per line, if this client is an API: the audiences it serves. It may introspect "
            "tokens issued for them."
        ),
    )

    class Meta:
        model = Client
        formfield_callback = https_url_formfield
        fields = [
            "name",
            "client_type",
            "is_enabled",
            "user",
            "grant_types",
            "redirect_uris",
            "post_logout_redirect_uris",
            "allowed_origins",
            "allowed_scopes",
            "skip_consent",
            "access_token_lifetime",
            "refresh_token_lifetime",
            "access_token_format",
            "token_endpoint_auth_method",
            "jwks",
            "jwks_uri",
            "require_pushed_authorization_requests",
            "require_dpop",
            "security_profile",
            "require_signed_request_object",
            "audiences",
            "resource_identifiers",
            "token_exchange_impersonation",
            "logo_uri",
            "client_uri",
            "policy_uri",
            "tos_uri",
        ]
        labels = {"user": _("owner")}
        help_texts = {"user": _("The user responsible for this client (optional).")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.new_secret: str | None = None

    def clean_grant_types(self) -> list[str]:
        selected = set(self.cleaned_data.get("grant_types") or [])
        # A stable order keeps the stored JSON (and the change log) independent of the browser.
        return [value for value in GrantType.values if value in selected]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        client_type = cleaned.get("client_type")
        method_chosen = cleaned.get("token_endpoint_auth_method") and (
            "token_endpoint_auth_method" in self.changed_data
        )
        if "client_type" in self.changed_data and not method_chosen:
            # The method follows a change of type unless chosen in the same edit.
            cleaned["token_endpoint_auth_method"] = ""
        if "token_endpoint_auth_method" in cleaned:
            self.instance.token_endpoint_auth_method = cleaned["token_endpoint_auth_method"]
        # The secret follows the client type and method, so Client.clean's "confidential clients
        # need a secret" can never block a form a staff member has no way to fix.
        self.instance.client_type = client_type or self.instance.client_type
        if self.instance.needs_new_secret:  # none yet, or client_secret_jwt with only a hash
            self.new_secret = self.instance.set_secret()
        elif not self.instance.uses_secret and self.instance.client_secret:
            self.instance.client_secret = ""
            self.new_secret = None
        if client_type and not may_list_origins(client_type) and cleaned.get("allowed_origins"):
            self.add_error("allowed_origins", ORIGINS_PUBLIC_ONLY_MESSAGE)
        return cleaned

    def _update_errors(self, errors: ValidationError) -> None:
        """Report model errors on fields this form does not show as form-wide errors.

        ``Client.clean`` (and DOT's ``AbstractApplication.clean``) key errors on fields such as
        ``client_secret`` or ``algorithm`` that the admin form leaves out; Django's ``add_error``
        raises ``ValueError`` for those, which would turn a validation problem into a 500.
        """
        if hasattr(errors, "error_dict"):
            remapped: dict[str, list[ValidationError]] = {}
            for field, messages in errors.error_dict.items():
                key = field if field == NON_FIELD_ERRORS or field in self.fields else NON_FIELD_ERRORS
                remapped.setdefault(key, []).extend(messages)
            errors = ValidationError(remapped)
        super()._update_errors(errors)
