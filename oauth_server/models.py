"""Data model: clients, scopes, consents, and DOT's grant/token models swapped into this app.

DOT's abstract models carry the protocol fields; we add what a product needs (several grant types
per client, DB scopes, remembered consent, per-client lifetimes, an enabled flag) and the indexes
the hot paths use. References stay one-directional (tokens -> client, consent -> client) so the
swappable-model migration problems of DOT (#634, #871, #1221) do not arise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import RegexValidator
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import (
    AbstractAccessToken,
    AbstractApplication,
    AbstractGrant,
    AbstractIDToken,
    AbstractRefreshToken,
)

from . import client_auth, grants, hashers, profiles, secret_encryption
from .client_keys import jwks_problems
from .conf import settings
from .validators import (
    EXACT_URI_MESSAGE,
    RESOURCE_URI_MESSAGE,
    invalid_resource_uris,
    is_exact_uri,
    is_https_url,
)

# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN_RE = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")
validate_scope_token = RegexValidator(
    SCOPE_TOKEN_RE,
    _("A scope name is printable ASCII without spaces, double quotes or backslashes (RFC 6749 3.3)."),
)


# Grant types a client may use, by their token-endpoint names: built from the grant registry
# (oauth_server/grants), so a registered grant is a choice of the admin, the API and the command.
# Not a model field's choices (``grant_types`` is a JSON list), so adding a grant makes no migration.
GrantType = models.TextChoices("GrantType", grants.registry.choices(), module=__name__)
GrantType.__doc__ = "Grant types a client may use, by their token-endpoint names (oauth_server.grants)."


def _split(value: str) -> list[str]:
    return value.split() if value else []


class Scope(models.Model):
    """A scope managed in the database; the scopes backend reads these, not settings."""

    name = models.CharField(
        _("name"),
        max_length=100,
        unique=True,
        validators=[validate_scope_token],
        help_text=_("e.g. files:read"),
    )
    description = models.CharField(
        _("description"), max_length=255, help_text=_("Shown to users on the consent screen.")
    )
    is_default = models.BooleanField(
        _("default"),
        default=False,
        help_text=_("Granted when a client asks for no scope and is allowed this one."),
    )
    created = models.DateTimeField(_("created"), auto_now_add=True)
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("scope")
        verbose_name_plural = _("scopes")

    def __str__(self) -> str:
        return self.name


def plausible_client_id(value: object) -> bool:
    """Whether ``value`` could be a client_id at all. Lookups skip the rest: a NUL byte, for one,
    makes PostgreSQL raise a DataError (a 500), and no client_id can hold one."""
    return isinstance(value, str) and bool(value) and "\x00" not in value


class AllowedScopeRows(models.Expression):
    """The client's allowed scopes as a JSON text ``[[name, is_default], ...]``, by a correlated
    subquery in the client's own SELECT: the token endpoint needs both, and one statement is cheaper
    than two. On a backend without a JSON aggregate it is NULL and the scopes are read apart."""

    output_field = models.TextField(null=True)

    def as_sql(self, compiler, connection):
        field = Client._meta.get_field("allowed_scopes")
        through = connection.ops.quote_name(field.remote_field.through._meta.db_table)
        scope_table = connection.ops.quote_name(Scope._meta.db_table)
        owner = connection.ops.quote_name(field.m2m_column_name())
        scope_id = connection.ops.quote_name(field.m2m_reverse_name())
        if connection.vendor == "postgresql":
            rows = "COALESCE(json_agg(json_build_array(s.name, s.is_default))::text, '[]')"
        elif connection.vendor == "sqlite":
            rows = "json_group_array(json_array(s.name, s.is_default))"
        else:
            return "NULL", []
        client = (
            f"{compiler.quote_name_unless_alias(compiler.query.base_table)}.{connection.ops.quote_name('id')}"
        )
        # Only quoted table and column names are interpolated: no value reaches this string.
        return (
            f"(SELECT {rows} FROM {scope_table} s INNER JOIN {through} t ON t.{scope_id} = s.id"  # noqa: S608
            f" WHERE t.{owner} = {client})",
            [],
        )


class ClientQuerySet(models.QuerySet):
    def with_scopes(self) -> ClientQuerySet:
        """Clients with their allowed scopes read in the same statement (``Client.scope_rows``)."""
        return self.annotate(_allowed_scope_rows=AllowedScopeRows())

    def enabled(self) -> ClientQuerySet:
        return self.filter(is_enabled=True)

    def by_client_id(self, client_id: object) -> ClientQuerySet:
        """The client with this client_id; hostile input matches nothing without a query."""
        return self.filter(client_id=client_id) if plausible_client_id(client_id) else self.none()


class ClientManager(models.Manager.from_queryset(ClientQuerySet)):  # type: ignore[misc]
    def get_by_natural_key(self, client_id: str) -> Client:
        return self.get(client_id=client_id)

    def create_client(
        self,
        *,
        name: str,
        client_type: str,
        grant_types: Iterable[str],
        redirect_uris: Iterable[str] = (),
        scopes: Iterable[str] = (),
        client_secret: str | None = None,
        **fields,
    ) -> tuple[Client, str | None]:
        """Create a validated client; return it with the clear secret (None for public clients).

        The clear secret exists only in this return value: it is stored hashed.
        """
        client = self.model(
            name=name,
            client_type=client_type,
            grant_types=list(dict.fromkeys(grant_types)),
            redirect_uris=" ".join(redirect_uris),
            **fields,
        )
        secret = None
        if client.uses_secret:
            secret = client.set_secret(client_secret)
        elif client_secret:
            raise ValidationError({"client_secret": _("Public clients have no secret.")})
        scope_objs = list(Scope.objects.filter(name__in=list(scopes)))
        missing = set(scopes) - {s.name for s in scope_objs}
        if missing:
            raise ValidationError({"allowed_scopes": _("Unknown scopes: %s") % " ".join(sorted(missing))})
        client.full_clean()
        with transaction.atomic():
            client.save()
            client.allowed_scopes.set(scope_objs)
        return client, secret


class Client(AbstractApplication):
    """An OAuth client (DOT's Application), with several grant types and DB-managed scopes."""

    # DOT keeps one grant type per application; ours is a list (grant_types). The DOT column is
    # kept, filled with the primary grant, because DOT code and forms still read it.
    authorization_grant_type = models.CharField(
        _("primary grant type"),
        max_length=44,
        choices=AbstractApplication.GRANT_TYPES,
        blank=True,
        editable=False,
    )
    grant_types = models.JSONField(
        _("grant types"),
        default=list,
        blank=True,
        help_text=_(
            "Any of authorization_code, refresh_token, client_credentials, "
            "urn:ietf:params:oauth:grant-type:device_code."
        ),
    )
    # Stored as a hash (hashers.py); the clear value is shown once, when created or rotated.
    client_secret = models.CharField(_("client secret (hashed)"), max_length=255, blank=True, default="")
    # We always hash; the DOT flag is kept for its code paths but is not editable.
    hash_client_secret = models.BooleanField(default=True, editable=False)
    # client_secret_jwt only: the secret again, encrypted (a Fernet token, secret_encryption.py), since
    # the server must compute the client's HMAC with it. Empty for every other method (save() clears it).
    encrypted_client_secret = models.TextField(
        _("client secret (encrypted)"), blank=True, default="", editable=False
    )
    # DOT's "skip_authorization" under the name the product uses.
    skip_authorization = None
    skip_consent = models.BooleanField(
        _("skip consent"),
        default=False,
        help_text=_("Trusted first-party client: users are never shown the consent screen."),
    )
    allowed_scopes = models.ManyToManyField(
        Scope, blank=True, related_name="clients", verbose_name=_("allowed scopes")
    )
    logo_uri = models.URLField(_("logo URI"), blank=True, max_length=500)
    client_uri = models.URLField(_("home page URI"), blank=True, max_length=500)
    policy_uri = models.URLField(_("privacy policy URI"), blank=True, max_length=500)
    tos_uri = models.URLField(_("terms of service URI"), blank=True, max_length=500)
    access_token_lifetime = models.PositiveIntegerField(
        _("access token lifetime (seconds)"),
        null=True,
        blank=True,
        help_text=_("Leave empty for the site default."),
    )
    refresh_token_lifetime = models.PositiveIntegerField(
        _("refresh token lifetime (seconds)"),
        null=True,
        blank=True,
        help_text=_("Leave empty for the site default."),
    )
    is_enabled = models.BooleanField(
        _("enabled"),
        default=True,
        help_text=_("A disabled client gets invalid_client everywhere and its tokens stop working."),
    )
    audiences = models.JSONField(
        _("audiences"),
        default=list,
        blank=True,
        help_text=_(
            "APIs (resource URIs) this client's access tokens are for. A token's aud is the requested "
            "resource (RFC 8707) if listed here, else all of these, else the site default."
        ),
    )
    resource_identifiers = models.JSONField(
        _("resource server identifiers"),
        default=list,
        blank=True,
        help_text=_(
            "If this client is an API: the audiences it serves. It may introspect tokens issued for them."
        ),
    )
    # RFC 7591 2: how the client authenticates at the token, introspection and revocation endpoints;
    # one of client_auth.registry (empty: chosen from client_type on save).
    token_endpoint_auth_method = models.CharField(
        _("client authentication method"),
        max_length=40,
        blank=True,
        default="",
        help_text=_(
            "How the client proves who it is at the token endpoint. Leave empty for the usual one: "
            "a secret for confidential clients, none for public ones."
        ),
    )
    # RFC 7591 2: the client's public keys, inline or published at a URL (private_key_jwt).
    jwks = models.JSONField(
        _("public keys (JWKS)"),
        null=True,
        blank=True,
        default=None,
        help_text=_('The client\'s public keys as a JWK Set ({"keys": [...]}), for private_key_jwt.'),
    )
    jwks_uri = models.URLField(
        _("public keys URL (jwks_uri)"),
        blank=True,
        max_length=500,
        help_text=_("Or: an https URL where the client publishes its JWK Set (fetched and cached)."),
    )
    require_pushed_authorization_requests = models.BooleanField(
        _("require pushed authorization requests"),
        default=False,
        help_text=_(
            "The client must push its authorization requests (RFC 9126, PAR): parameters never travel "
            "through the browser."
        ),
    )
    # RFC 8628: how long a device code lives and how often the device may poll; empty: the site's
    # DEVICE_CODE_LIFETIME / DEVICE_POLL_INTERVAL (docs/device.md).
    device_code_lifetime = models.PositiveIntegerField(
        _("device code lifetime (seconds)"),
        null=True,
        blank=True,
        help_text=_("Device authorization grant only. Leave empty for the site default."),
    )
    device_poll_interval = models.PositiveIntegerField(
        _("device polling interval (seconds)"),
        null=True,
        blank=True,
        help_text=_("Device authorization grant only. Leave empty for the site default."),
    )
    # RFC 8693 1.1: with token exchange, a client gets tokens that say it acts for the user (``act``);
    # only a client trusted with this flag gets tokens that are the user's own (no ``act``).
    token_exchange_impersonation = models.BooleanField(
        _("may impersonate users (token exchange)"),
        default=False,
        help_text=_(
            "Token exchange normally issues delegation tokens that name this client as the actor (act "
            "claim). Allow only for a fully trusted service: its exchanged tokens look like the user's own."
        ),
    )
    # RFC 9101 10.5 (client metadata ``require_signed_request_object``): the authorization request
    # must come as a request object signed with one of the client's keys (request_objects.py).
    require_signed_request_object = models.BooleanField(
        _("require signed request objects"),
        default=False,
        help_text=_(
            "The client must send its authorization requests as a JWT signed with one of its keys "
            "(RFC 9101, the request parameter, directly or pushed): plain parameters are refused."
        ),
    )
    require_dpop = models.BooleanField(
        _("require DPoP"),
        default=False,
        help_text=_(
            "The client must prove possession of a key (RFC 9449, DPoP) at the token endpoint: its "
            "tokens are bound to that key and useless to a thief."
        ),
    )
    # A security profile (oauth_server/profiles.py, docs/fapi.md): "" or a registered name ("fapi2").
    # Not a field with choices: a profile registered later needs no migration (as auth methods).
    security_profile = models.CharField(
        _("security profile"),
        max_length=20,
        blank=True,
        default="",
        help_text=_(
            "FAPI 2.0: the client must push its requests (PAR), use PKCE (S256), authenticate with "
            "private_key_jwt and bind its tokens with DPoP. Empty: the site's profile, if any."
        ),
    )
    access_token_format = models.CharField(
        _("access token format"),
        max_length=10,
        choices=[("", _("Site default")), ("jwt", _("JWT (RFC 9068)")), ("opaque", _("Opaque"))],
        blank=True,
        default="",
    )

    objects = ClientManager()

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        verbose_name = _("client")
        verbose_name_plural = _("clients")
        ordering = ["name", "id"]
        # Powers beyond change_client, checked by the management API (docs/management-api.md).
        permissions = [
            ("manage_trusted_client", _("Can create and change clients that skip the consent screen")),
            ("issue_client_secret", _("Can issue and rotate the secret of an existing client")),
        ]

    def natural_key(self) -> tuple[str]:
        return (self.client_id,)

    # --- secrets --------------------------------------------------------------------------------
    def set_secret(self, raw: str | None = None) -> str:
        """Set a new secret (generated unless given) and return it in clear; save() persists it."""
        if raw is None:
            raw = hashers.generate_secret()
        elif len(raw) < settings.CLIENT_SECRET_MIN_LENGTH:
            raise ValidationError(
                {
                    "client_secret": _("A client secret must be at least %(n)d characters long.")
                    % {"n": settings.CLIENT_SECRET_MIN_LENGTH}
                }
            )
        self.client_secret = hashers.make_secret_hash(raw)
        self.encrypted_client_secret = secret_encryption.encrypt(raw) if self.keeps_secret_encrypted else ""
        return raw

    def check_secret(self, raw: str | None) -> bool:
        return hashers.check_secret(raw, self.client_secret)

    @property
    def keeps_secret_encrypted(self) -> bool:
        """Whether the method needs the secret itself (client_secret_jwt): it is then kept encrypted."""
        method = self.auth_method
        return self.is_confidential and method is not None and method.secret_kept_encrypted

    @property
    def needs_new_secret(self) -> bool:
        """A secret must be issued: none yet, or only its hash while the method needs the secret
        itself (a client switched to client_secret_jwt; a hash cannot be turned back into it)."""
        if not self.uses_secret:
            return False
        return not self.client_secret or (self.keeps_secret_encrypted and not self.encrypted_client_secret)

    def save(self, *args, **kwargs):
        if self.client_secret and not hashers.is_hashed(self.client_secret):
            # A clear value assigned directly (DOT's way): hashed, and encrypted if the method needs it.
            if self.keeps_secret_encrypted:
                self.encrypted_client_secret = secret_encryption.encrypt(self.client_secret)
            self.client_secret = hashers.make_secret_hash(self.client_secret)
        self.authorization_grant_type = self._primary_dot_grant()
        if not self.token_endpoint_auth_method:
            self.token_endpoint_auth_method = client_auth.default_method(self)
        if not self.keeps_secret_encrypted or not self.client_secret:
            self.encrypted_client_secret = ""  # the method changed away: only the hash stays
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"client_secret", "token_endpoint_auth_method", "client_type"} & set(
            update_fields
        ):
            kwargs["update_fields"] = {*update_fields, "encrypted_client_secret"}
        super().save(*args, **kwargs)

    # --- grants and URIs ------------------------------------------------------------------------
    def _primary_dot_grant(self) -> str:
        return grants.registry.primary_dot_grant(self.grant_types)

    def has_grant_type(self, grant_type: str) -> bool:
        """Whether the client holds the grant and its security profile (if any) allows it."""
        return grant_type in (self.grant_types or []) and profiles.grant_type_allowed(self, grant_type)

    def allows_grant_type(self, *grant_types: str) -> bool:
        """DOT's check, answered from our list (DOT passes its own constants)."""
        return any(self.has_grant_type(grants.registry.from_dot_grant(g)) for g in grant_types)

    @property
    def redirect_uri_list(self) -> list[str]:
        return _split(self.redirect_uris)

    def redirect_uri_allowed(self, uri: str) -> bool:
        """Exact string match only (RFC 9700 2.1): no wildcards, no loopback port leniency."""
        return uri in self.redirect_uri_list

    def post_logout_redirect_uri_allowed(self, uri: str) -> bool:
        return uri in _split(self.post_logout_redirect_uris)

    @property
    def default_redirect_uri(self) -> str:
        from oauthlib.oauth2.rfc6749 import errors

        uris = self.redirect_uri_list
        if len(uris) == 1:
            return uris[0]
        raise errors.MissingRedirectURIError()

    def scope_rows(self) -> list[tuple[str, bool]]:
        """(name, is_default) of the allowed scopes, read once per instance: from the
        ``with_scopes()`` annotation when the client was loaded with it, else by one query."""
        cached = self.__dict__.get("_scope_rows_cache")
        if cached is None:
            raw = self.__dict__.pop("_allowed_scope_rows", None)
            if raw is not None:
                cached = [(str(name), bool(is_default)) for name, is_default in json.loads(raw)]
            else:
                cached = list(self.allowed_scopes.values_list("name", "is_default"))
            self._scope_rows_cache = cached
        return cached

    def is_usable(self, request) -> bool:
        return self.is_enabled

    @property
    def is_confidential(self) -> bool:
        return self.client_type == self.CLIENT_CONFIDENTIAL

    @property
    def auth_method(self) -> client_auth.ClientAuthMethod | None:
        """The registered method object (``client_auth.registry``) this client authenticates with."""
        return client_auth.registry.get(self.token_endpoint_auth_method or client_auth.default_method(self))

    @property
    def uses_secret(self) -> bool:
        """Whether this client holds a shared secret (not a public or a private_key_jwt client)."""
        method = self.auth_method
        return self.is_confidential and (method is None or method.uses_secret)

    def _auth_method_errors(self) -> dict[str, list]:
        """A public client authenticates with ``none``, a confidential one with a real method; a
        method with keys needs exactly one of ``jwks`` and ``jwks_uri``."""
        name = self.token_endpoint_auth_method
        method = client_auth.registry.get(name) if name else self.auth_method
        if method is None:
            return {"token_endpoint_auth_method": [_("Unsupported client authentication method: %s") % name]}
        if method.confidential != self.is_confidential:
            if self.is_confidential:
                message = _("A confidential client must authenticate: choose a method other than none.")
            else:
                message = _("A public client has no credential: its method must be none.")
            return {"token_endpoint_auth_method": [message]}
        errors: dict[str, list] = {}
        if self.jwks and self.jwks_uri:
            errors["jwks_uri"] = [_("Register keys inline (jwks) or by URL (jwks_uri), not both.")]
        if self.jwks:
            problems = jwks_problems(self.jwks)
            if problems:
                errors["jwks"] = problems
        if self.jwks_uri and not is_https_url(self.jwks_uri):
            errors["jwks_uri"] = [_("jwks_uri must be an https URL.")]
        if method.uses_keys and not (self.jwks or self.jwks_uri):
            errors["jwks"] = [_("%s needs the client's public keys: jwks or jwks_uri.") % method.name]
        elif self.require_signed_request_object and not (self.jwks or self.jwks_uri):
            errors["jwks"] = [
                _("Signed request objects are verified with the client's keys: jwks or jwks_uri.")
            ]
        return errors

    def clean(self) -> None:
        errors: dict[str, list] = {}
        unknown = {g for g in self.grant_types or [] if g not in grants.registry}
        if unknown:
            errors["grant_types"] = [_("Unsupported grant types: %s") % ", ".join(sorted(unknown))]
        if not self.grant_types:
            errors.setdefault("grant_types", []).append(_("Choose at least one grant type."))
        # Each grant's rules (confidential clients only, needs a grant that issues refresh tokens).
        rules = grants.registry.client_errors(self.grant_types, self.client_type == self.CLIENT_CONFIDENTIAL)
        if rules:
            errors.setdefault("grant_types", []).extend(rules)
        for uri in self.redirect_uri_list + _split(self.post_logout_redirect_uris):
            if not is_exact_uri(uri):
                field = "redirect_uris" if uri in self.redirect_uri_list else "post_logout_redirect_uris"
                errors.setdefault(field, []).append(EXACT_URI_MESSAGE % uri)
        # RFC 8707 2 (the admin form, the management API and create_oauth_client refuse them first).
        for field in ("audiences", "resource_identifiers"):
            value = getattr(self, field)
            bad = invalid_resource_uris(
                value if isinstance(value, list | tuple) else [value] if value else []
            )
            if bad:
                errors.setdefault(field, []).append(
                    ValidationError(
                        RESOURCE_URI_MESSAGE, code="invalid_uri", params={"uris": ", ".join(map(str, bad))}
                    )
                )
        if self.uses_secret and not self.client_secret:
            errors.setdefault("client_secret", []).append(_("Confidential clients need a secret."))
        elif self.needs_new_secret:
            errors.setdefault("client_secret", []).append(
                _("%s needs a new secret (only a hash of the current one is stored): rotate it.")
                % self.token_endpoint_auth_method
            )
        for field, messages in self._auth_method_errors().items():
            errors.setdefault(field, []).extend(messages)
        # The security profile's rules (its own, or the site's): profiles.client_errors.
        for field, messages in profiles.client_errors(self).items():
            errors.setdefault(field, []).extend(messages)
        if errors:
            raise ValidationError(errors)
        # DOT validates URI schemes and origins; its grant checks read authorization_grant_type.
        self.authorization_grant_type = self._primary_dot_grant()
        super().clean()


class Grant(AbstractGrant):
    """An authorization code (DOT's Grant).

    ``code`` holds the SHA-256 of the code, never the code (the validator hashes on every lookup),
    so a database dump yields no exchangeable code. An exchanged code is kept as a tombstone
    (``redeemed_at``) until ``cleartokens`` purges it after ``expires``: a second presentation is
    then recognised as a replay and revokes the tokens issued from it (RFC 6749 4.1.2).
    """

    # When the user last authenticated in the session that approved this code: the ID token's
    # auth_time (OIDC Core 2), which max_age and prompt=login are about.
    auth_time = models.DateTimeField(_("authentication time"), null=True, blank=True)
    redeemed_at = models.DateTimeField(_("exchanged at"), null=True, blank=True, editable=False)
    # RFC 9449 10: the thumbprint of the DPoP key the code is bound to (the authorization request's
    # dpop_jkt, or the key of a DPoP proof sent to the PAR endpoint); "" when unbound. The code
    # exchange must then carry a proof by that key.
    dpop_jkt = models.CharField(
        _("DPoP key thumbprint"), max_length=64, blank=True, default="", editable=False
    )

    class Meta(AbstractGrant.Meta):
        swappable = "OAUTH2_PROVIDER_GRANT_MODEL"
        indexes = [models.Index(fields=["expires"], name="oauth_grant_expires_idx")]


class AccessTokenQuerySet(models.QuerySet):
    def active(self) -> AccessTokenQuerySet:
        return self.filter(expires__gt=timezone.now())


class AccessToken(AbstractAccessToken):
    """An issued access token. Only a SHA-256 checksum of the value is stored (RFC 9700)."""

    # JWT access tokens: their jti and audience, so introspection, revocation checks and the admin
    # work without the token value (which is never stored).
    jti = models.CharField(_("JWT ID"), max_length=64, blank=True, default="", db_index=True)
    audience = models.TextField(_("audience"), blank=True, default="", help_text=_("Space-separated."))
    # RFC 9449: the RFC 7638 thumbprint of the DPoP key the token is bound to ("" for bearer tokens).
    dpop_jkt = models.CharField(
        _("DPoP key thumbprint"), max_length=64, blank=True, default="", editable=False
    )
    # The authorization code this token was issued from (null for refresh and client_credentials
    # tokens): a replayed code revokes what it issued (RFC 6749 4.1.2).
    grant = models.ForeignKey(
        Grant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )

    # Token exchange (RFC 8693): the actor chain of a delegation token (the JWT's ``act`` claim, kept
    # for opaque tokens, introspection and the next exchange), and the access token it was exchanged
    # from: deleting (revoking) that one deletes this one, so every revocation of the user's grant
    # (refresh-token family, consent, a user's tokens at a client) reaches exchanged tokens too.
    act = models.JSONField(_("actor (act)"), null=True, blank=True, default=None, editable=False)
    exchanged_from = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="exchanged_tokens",
        editable=False,
        verbose_name=_("exchanged from"),
    )

    objects = AccessTokenQuerySet.as_manager()

    class Meta(AbstractAccessToken.Meta):
        swappable = "OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL"
        indexes = [
            models.Index(fields=["user", "application"], name="oauth_at_user_client_idx"),
            models.Index(fields=["expires"], name="oauth_at_expires_idx"),
        ]

    def is_valid(self, scopes=None) -> bool:
        if self.application_id and not self.application.is_enabled:
            return False
        if self.user_id and not self.user.is_active:
            return False
        return super().is_valid(scopes)


class RefreshToken(AbstractRefreshToken):
    # The authentication time of the session that approved the original code, carried to every
    # rotated refresh token: refreshed ID tokens must repeat it (OIDC Core 12.2).
    auth_time = models.DateTimeField(_("authentication time"), null=True, blank=True)
    # The authorization code that started this token's family (first refresh token only): a
    # replayed code revokes the family through it.
    grant = models.ForeignKey(
        Grant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    # RFC 9449 5: a public client's refresh token is bound to its DPoP key (thumbprint; "" unbound).
    dpop_jkt = models.CharField(
        _("DPoP key thumbprint"), max_length=64, blank=True, default="", editable=False
    )

    class Meta(AbstractRefreshToken.Meta):
        swappable = "OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL"
        indexes = [
            *AbstractRefreshToken.Meta.indexes,
            models.Index(fields=["user", "application"], name="oauth_rt_user_client_idx"),
            # cleartokens (DOT's clear_expired) deletes revoked refresh tokens by ``revoked <= t``
            # once OAUTH2_PROVIDER["REFRESH_TOKEN_EXPIRE_SECONDS"] is set (docs/settings.md).
            models.Index(fields=["revoked"], name="oauth_rt_revoked_idx"),
        ]


class IDToken(AbstractIDToken):
    class Meta(AbstractIDToken.Meta):
        swappable = "OAUTH2_PROVIDER_ID_TOKEN_MODEL"
        # cleartokens deletes expired ID tokens by ``expires < now`` (without it: a full scan).
        indexes = [models.Index(fields=["expires"], name="oauth_idt_expires_idx")]


class ConsentQuerySet(models.QuerySet):
    def active(self) -> ConsentQuerySet:
        return self.filter(revoked_at__isnull=True)


class Consent(models.Model):
    """What a user has approved for a client; remembered so they are asked only for new scopes."""

    user = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="oauth_consents",
        verbose_name=_("user"),
    )
    client = models.ForeignKey(
        Client,
        on_delete=models.CASCADE,
        related_name="consents",
        verbose_name=_("client"),
    )
    scope = models.TextField(_("granted scopes"), blank=True, help_text=_("Space-separated scope names."))
    created = models.DateTimeField(_("created"), auto_now_add=True)
    updated = models.DateTimeField(_("updated"), auto_now=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    objects = ConsentQuerySet.as_manager()

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["-updated"]
        constraints = [
            models.UniqueConstraint(fields=["user", "client"], name="oauth_consent_user_client_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.user} -> {self.client}"

    @property
    def scopes(self) -> list[str]:
        return _split(self.scope)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Subject(models.Model):
    """The per-site opaque ``sub`` of a user (OIDC Core 8): stable, random, never the database id."""

    user = models.OneToOneField(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oauth_subject"
    )
    sub = models.CharField(_("subject identifier"), max_length=64, unique=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("subject identifier")
        verbose_name_plural = _("subject identifiers")

    def __str__(self) -> str:
        return self.sub


class SigningKey(models.Model):
    """A key that signs ID tokens and JWT access tokens; the private part is stored encrypted.

    Life cycle: ``next`` (published in the JWKS, not yet signing) -> ``active`` (the one signing
    key) -> ``retired`` (still published until ``retire_after``, when every token it signed has
    expired). ``keys.rotate()`` moves every key one step.
    """

    class State(models.TextChoices):
        NEXT = "next", _("next")
        ACTIVE = "active", _("active")
        RETIRED = "retired", _("retired")

    class Algorithm(models.TextChoices):
        RS256 = "RS256", "RS256"
        ES256 = "ES256", "ES256"
        EDDSA = "EdDSA", "EdDSA"

    kid = models.CharField(_("key ID"), max_length=64, unique=True, editable=False)
    algorithm = models.CharField(
        _("algorithm"), max_length=10, choices=Algorithm.choices, default=Algorithm.RS256
    )
    state = models.CharField(_("state"), max_length=10, choices=State.choices, db_index=True)
    # A JWE (dir + A256GCM) of the private JWK, under a key derived from SIGNING_KEY_ENCRYPTION_SECRET.
    private_key = models.TextField(_("private key (encrypted)"), editable=False)
    public_jwk = models.JSONField(_("public key"), editable=False)
    created = models.DateTimeField(_("created"), auto_now_add=True)
    activated_at = models.DateTimeField(_("activated"), null=True, blank=True)
    retired_at = models.DateTimeField(_("retired"), null=True, blank=True)
    retire_after = models.DateTimeField(
        _("published until"),
        null=True,
        blank=True,
        help_text=_("Retired keys leave the JWKS after this time."),
    )

    class Meta:
        verbose_name = _("signing key")
        verbose_name_plural = _("signing keys")
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["state"], condition=models.Q(state="active"), name="oauth_signingkey_one_active"
            ),
            models.UniqueConstraint(
                fields=["state"], condition=models.Q(state="next"), name="oauth_signingkey_one_next"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({self.algorithm}, {self.state})"


class PushedAuthorizationRequest(models.Model):
    """An authorization request a client pushed (RFC 9126), waiting for the browser to bring its
    ``request_uri``. Only a SHA-256 of the reference is stored; consumed by the authorization
    response it leads to; expired rows are deleted when the client pushes again (par.py)."""

    reference_checksum = models.CharField(max_length=64, unique=True)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="pushed_requests")
    parameters = models.JSONField(default=dict)
    expires = models.DateTimeField(db_index=True)
    created = models.DateTimeField(auto_now_add=True)
    # The parameters came from a verified request object (RFC 9101), pushed or sent by the browser.
    signed = models.BooleanField(default=False)
    # False: stored by the authorization endpoint from a request object the browser brought (the
    # flow then goes on with a request_uri), not pushed by the client: it does not satisfy a PAR
    # requirement.
    pushed = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("pushed authorization request")
        verbose_name_plural = _("pushed authorization requests")


class AuditEvent(models.Model):
    """One security-relevant event (a login, a token, a client change): who, which client, from where.

    Written by ``oauth_server.audit.record``, which also sends it as a signal and a log record. The
    user and client are copied as strings so the trail outlives them; ``details`` never holds a
    secret, code or token value (docs/audit.md).
    """

    class Event(models.TextChoices):
        LOGIN = "login", _("login")
        LOGIN_FAILED = "login_failed", _("login failed")
        LOGIN_THROTTLED = "login_throttled", _("login throttled")
        LOGOUT = "logout", _("logout")
        CONSENT_GRANTED = "consent_granted", _("consent granted")
        CONSENT_DENIED = "consent_denied", _("consent denied")
        CONSENT_REVOKED = "consent_revoked", _("consent revoked")
        AUTHORIZATION_CODE_ISSUED = "authorization_code_issued", _("authorization code issued")
        TOKEN_ISSUED = "token_issued", _("token issued")
        TOKEN_REFRESHED = "token_refreshed", _("token refreshed")
        TOKEN_REVOKED = "token_revoked", _("token revoked")
        TOKEN_EXCHANGED = "token_exchanged", _("token exchanged")
        REFRESH_TOKEN_REUSE_DETECTED = "refresh_token_reuse_detected", _("refresh token reuse detected")
        CODE_REPLAY_DETECTED = "code_replay_detected", _("authorization code replay detected")
        CLIENT_AUTH_FAILED = "client_auth_failed", _("client authentication failed")
        CLIENT_CREATED = "client_created", _("client created")
        CLIENT_UPDATED = "client_updated", _("client updated")
        CLIENT_DELETED = "client_deleted", _("client deleted")
        CLIENT_SECRET_ROTATED = "client_secret_rotated", _("client secret rotated")
        SIGNING_KEY_ROTATED = "signing_key_rotated", _("signing key rotated")
        CLIENT_REGISTERED = "client_registered", _("client registered")
        CIMD_FETCH_FAILED = "cimd_fetch_failed", _("client metadata document refused")
        CLIENT_REGISTRATION_UPDATED = "client_registration_updated", _("client registration updated")
        CLIENT_REGISTRATION_DELETED = "client_registration_deleted", _("client registration deleted")
        CLIENT_REGISTRATION_REFUSED = "client_registration_refused", _("client registration refused")
        DEVICE_AUTHORIZATION_REQUESTED = "device_authorization_requested", _("device authorization requested")
        DEVICE_CODE_REPLAYED = "device_code_replayed", _("device code presented again")
        USER_CODE_FAILED = "user_code_failed", _("wrong device user code")
        USER_CODE_THROTTLED = "user_code_throttled", _("device user code entry throttled")
        REQUEST_OBJECT_REFUSED = "request_object_refused", _("request object refused")

    class Outcome(models.TextChoices):
        SUCCESS = "success", _("success")
        FAILURE = "failure", _("failure")

    created = models.DateTimeField(_("time"), default=timezone.now, db_index=True, editable=False)
    event = models.CharField(_("event"), max_length=64, choices=Event.choices, db_index=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    user = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    # Named like the token models' foreign key (``application``): ``client_id`` is the string copy.
    application = models.ForeignKey(
        Client,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("client"),
    )
    # Copies, kept when the user or client is deleted (the foreign keys then become NULL).
    # As long as Client.client_id: a metadata document's URL is the client_id.
    client_id = models.CharField(_("client ID"), max_length=255, blank=True, default="", db_index=True)
    username = models.CharField(_("username"), max_length=150, blank=True, default="")
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True, default="")
    details = models.JSONField(_("details"), default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        who = self.username or self.client_id or "-"
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.event} ({self.outcome}) {who}"


class BlockedClientHost(models.Model):
    """A host whose client ID metadata documents are refused (oauth_server.cimd).

    The clients already registered from it stop working too: loading one checks the block list.
    """

    host = models.CharField(
        _("host"),
        max_length=255,
        unique=True,
        help_text=_('A host name ("mcp.example.com"), or a domain and its subdomains (".example.com").'),
    )
    reason = models.CharField(_("reason"), max_length=255, blank=True, default="")
    created = models.DateTimeField(_("blocked at"), auto_now_add=True)

    class Meta:
        ordering = ["host"]
        verbose_name = _("blocked client host")
        verbose_name_plural = _("blocked client hosts")

    def __str__(self) -> str:
        return self.host

    def save(self, *args, **kwargs):
        self.host = self.host.strip().lower()
        super().save(*args, **kwargs)


class InitialAccessTokenQuerySet(models.QuerySet):
    def usable(self) -> InitialAccessTokenQuerySet:
        """Not expired, and with uses left."""
        return self.filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now()),
            models.Q(max_uses__isnull=True) | models.Q(use_count__lt=models.F("max_uses")),
        )


class InitialAccessToken(models.Model):
    """An RFC 7591 initial access token: lets its bearer register clients while the policy is
    ``initial_access_token`` (``manage.py create_registration_token``).

    Only the SHA-256 of the value is stored: the clear value is printed once, by the command.
    """

    token_checksum = models.CharField(_("token checksum"), max_length=64, unique=True, editable=False)
    description = models.CharField(_("description"), max_length=255, blank=True, default="")
    created = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    # None: any number of registrations until it expires; 1 (the command's default): single use.
    max_uses = models.PositiveIntegerField(_("maximum uses"), null=True, blank=True, default=1)
    use_count = models.PositiveIntegerField(_("uses"), default=0, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)

    objects = InitialAccessTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("initial access token")
        verbose_name_plural = _("initial access tokens")
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.description or f"#{self.pk}"


class ClientRegistration(models.Model):
    """What RFC 7591/7592 adds to a dynamically registered client: its registration access token
    (SHA-256 only), the initial access token it was registered with, and the metadata the client
    sent that has no column on ``Client`` (contacts, software_id, software_version)."""

    client = models.OneToOneField(
        Client, on_delete=models.CASCADE, related_name="registration", verbose_name=_("client")
    )
    access_token_checksum = models.CharField(
        _("registration access token checksum"), max_length=64, unique=True, editable=False
    )
    token_issued_at = models.DateTimeField(_("registration access token issued"), default=timezone.now)
    initial_access_token = models.ForeignKey(
        InitialAccessToken,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="registrations",
        verbose_name=_("initial access token"),
    )
    metadata = models.JSONField(_("other metadata"), default=dict, blank=True)
    created = models.DateTimeField(_("created"), auto_now_add=True)
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("client registration")
        verbose_name_plural = _("client registrations")

    def __str__(self) -> str:
        return str(self.client)


class DeviceAuthorizationQuerySet(models.QuerySet):
    def pending(self) -> DeviceAuthorizationQuerySet:
        """Waiting for the user's decision and not expired."""
        return self.filter(status=DeviceAuthorization.Status.PENDING, expires__gt=timezone.now())


class DeviceAuthorization(models.Model):
    """One device authorization request (RFC 8628 3.1-3.5): the device polls with ``device_code``,
    the user enters ``user_code`` at the verification page and decides.

    Both codes are stored as SHA-256 (``tokens.token_checksum``; the user code after normalisation,
    ``device.normalize_user_code``), never in clear, as authorization codes are. Status moves once
    from ``pending`` to ``approved`` or ``denied`` (conditional updates, ``device.py``), and from
    ``approved`` to ``redeemed`` when the device gets its tokens (single use). Not DOT's
    ``DeviceGrant``: that model stores both codes in clear, names the client by a string and writes
    on read (docs/device.md).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting for the user")
        APPROVED = "approved", _("approved")
        DENIED = "denied", _("denied")
        REDEEMED = "redeemed", _("tokens issued")

    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, related_name="device_authorizations", verbose_name=_("client")
    )
    device_code = models.CharField(_("device code (hashed)"), max_length=64, unique=True, editable=False)
    user_code = models.CharField(_("user code (hashed)"), max_length=64, unique=True, editable=False)
    scope = models.TextField(_("scopes"), blank=True, default="", help_text=_("Space-separated scope names."))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    user = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    expires = models.DateTimeField(_("expires"), db_index=True)
    # RFC 8628 3.5: the current minimum polling interval, grown by 5 s on every slow_down.
    interval = models.PositiveIntegerField(_("polling interval (seconds)"))
    last_polled = models.DateTimeField(_("last polled"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    redeemed_at = models.DateTimeField(_("tokens issued at"), null=True, blank=True)
    # When the approving user authenticated (OIDC Core auth_time), carried to the refresh tokens.
    auth_time = models.DateTimeField(_("authentication time"), null=True, blank=True)

    objects = DeviceAuthorizationQuerySet.as_manager()

    class Meta:
        verbose_name = _("device authorization")
        verbose_name_plural = _("device authorizations")
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.client} ({self.get_status_display()})"

    @property
    def scopes(self) -> list[str]:
        return _split(self.scope)

    def is_expired(self) -> bool:
        return self.expires <= timezone.now()
