"""Client admin: create and edit clients, show a new secret once, rotate secrets, enable/disable.

The clear client secret exists only in the response to the request that created it: it is
rendered straight into that response (never a message, session or cookie, which would persist it)
and sent with ``Cache-Control: no-store``. The database, the change page, the list and the change
history only ever see the hash.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import connections, models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from .. import cimd, permissions, registration
from ..flows import clients as client_flows
from ..forms import ClientAdminForm
from ..models import Client, GrantType
from ..registration import SELF_REGISTERED_SOURCES
from .common import admin_url


class GrantTypeFilter(admin.SimpleListFilter):
    """Clients allowed a grant type; ``grant_types`` is a JSON list, which SQLite cannot search.

    PostgreSQL (and any backend with JSON containment) filters in SQL; elsewhere the client table,
    which is small, is filtered in Python so the result is the same on every database.
    """

    title = _("grant type")
    parameter_name = "grant_type"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(GrantType.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        if value not in GrantType.values:
            return queryset.none()
        if connections[queryset.db].features.supports_json_field_contains:
            return queryset.filter(grant_types__contains=[value])
        ids = [pk for pk, grants in queryset.values_list("pk", "grant_types") if value in (grants or [])]
        return queryset.filter(pk__in=ids)


class SelfRegisteredFilter(admin.SimpleListFilter):
    """Clients an operator registered, or that registered themselves (DCR, metadata document):
    the ones nobody vetted, which open registration may fill the table with."""

    title = _("registered by")
    parameter_name = "registered_by"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("self", _("Themselves (DCR or metadata document)")),
            (Client.RegistrationSource.DCR, _("Themselves, by dynamic registration (RFC 7591)")),
            (Client.RegistrationSource.CIMD, _("Themselves, by a client ID metadata document")),
            (Client.RegistrationSource.MANUAL, _("An operator")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        if value == "self":
            return queryset.filter(registration_source__in=SELF_REGISTERED_SOURCES)
        if value in Client.RegistrationSource.values:
            return queryset.filter(registration_source=value)
        return queryset.none()


class ClientAdmin(admin.ModelAdmin):
    form = ClientAdminForm
    list_display = [
        "name",
        "client_id",
        "client_type",
        "grant_type_list",
        "is_enabled",
        "skip_consent",
        "registration_source",
        "created",
    ]
    list_filter = ["client_type", "is_enabled", "skip_consent", GrantTypeFilter, SelfRegisteredFilter]
    search_fields = ["name", "=client_id"]
    filter_horizontal = ["allowed_scopes"]
    raw_id_fields = ["user"]
    radio_fields = {"client_type": admin.HORIZONTAL}
    # DOT's Client.get_absolute_url points at DOT's own management views, which are not mounted.
    view_on_site = False
    # The admin builds form fields itself (ignoring the form's formfield_callback).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = [
        "client_id",
        "secret_status",
        "created",
        "updated",
        "registration_source",
        "registration_details",
        "document_host",
        "cimd_expires_at",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "client_id",
                    "client_type",
                    "token_endpoint_auth_method",
                    "secret_status",
                    "jwks",
                    "jwks_uri",
                    "is_enabled",
                    "user",
                ]
            },
        ),
        (
            _("Grants and redirects"),
            {
                "fields": [
                    "grant_types",
                    "redirect_uris",
                    "post_logout_redirect_uris",
                    "allowed_origins",
                    "require_pushed_authorization_requests",
                    "require_dpop",
                    "security_profile",
                    "require_signed_request_object",
                ]
            },
        ),
        (_("Scopes and consent"), {"fields": ["allowed_scopes", "skip_consent"]}),
        (
            _("Tokens"),
            {
                "fields": [
                    "access_token_lifetime",
                    "refresh_token_lifetime",
                    "access_token_format",
                    "audiences",
                    "resource_identifiers",
                    "token_exchange_impersonation",
                ]
            },
        ),
        (
            _("Shown on the consent screen"),
            {"fields": ["logo_uri", "client_uri", "policy_uri", "tos_uri"], "classes": ["collapse"]},
        ),
        (
            _("Registration"),
            {"fields": ["registration_source", "registration_details", "document_host", "cimd_expires_at"]},
        ),
        (_("History"), {"fields": ["created", "updated"]}),
    ]
    actions = ["enable_clients", "disable_clients", "rotate_secrets", "revoke_tokens", "block_hosts"]
    change_form_template = "admin/oauth_server/client/change_form.html"
    secret_template = "admin/oauth_server/client/secret.html"

    def get_readonly_fields(self, request: HttpRequest, obj: Client | None = None) -> list[str]:
        """Fields whose change is a power beyond ``change_client`` (oauth_server/permissions.py).

        The owner (``user``) is the service account a machine token with the admin scope acts as in
        the management API: setting it delegates that user's permissions, so only superusers may.
        ``skip_consent`` needs ``manage_trusted_client``; turning an existing public client
        confidential gives it a secret, which needs ``issue_client_secret``.
        """
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields.append("user")
        if not permissions.may_set_skip_consent(request.user):
            fields.append("skip_consent")
            fields.append("token_exchange_impersonation")  # as trusting: tokens that are the user's own
        if (
            obj is not None
            and obj.client_type != Client.CLIENT_CONFIDENTIAL
            and not permissions.may_issue_secret(request.user, obj)
        ):
            fields.append("client_type")
        return fields

    def has_change_permission(self, request: HttpRequest, obj: Client | None = None) -> bool:
        """A client that skips consent changes only with ``manage_trusted_client`` too (else its
        page is read-only): a new redirect URI on it would get codes for any user without asking."""
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or not obj.skip_consent or permissions.may_set_skip_consent(request.user)

    def has_issue_secret_permission(self, request: HttpRequest) -> bool:
        """For the rotate-secrets action (``permissions=["issue_secret"]``)."""
        return permissions.may_issue_secret(request.user, None)

    # --- list ---------------------------------------------------------------------------------
    @admin.display(description=_("grant types"))
    def grant_type_list(self, obj: Client) -> str:
        return ", ".join(obj.grant_types or []) or "-"

    @admin.display(description=_("registration"))
    def registration_details(self, obj: Client) -> str:
        """What a dynamically registered client told about itself (RFC 7591 contacts, software)."""
        registration = getattr(obj, "registration", None) if obj is not None and obj.pk else None
        if registration is None:
            return "-"
        meta = registration.metadata or {}
        parts = [
            gettext("Registered %(when)s") % {"when": registration.created.isoformat(timespec="seconds")}
        ]
        if meta.get("contacts"):
            parts.append(gettext("contacts: %s") % ", ".join(meta["contacts"]))
        if meta.get("software_id"):
            parts.append(
                gettext("software: %s")
                % " ".join(filter(None, [meta["software_id"], meta.get("software_version")]))
            )
        if registration.initial_access_token_id:
            parts.append(gettext("initial access token #%d") % registration.initial_access_token_id)
        return "; ".join(parts)

    @admin.display(description=_("client secret"))
    def secret_status(self, obj: Client) -> str:
        if obj is None or not obj.pk:
            return gettext("Generated when you save a confidential client, and shown once.")
        if obj.client_type != Client.CLIENT_CONFIDENTIAL:
            return gettext("None (public client).")
        if not obj.uses_secret:
            return (
                gettext("None: the client authenticates with its keys (%s).") % obj.token_endpoint_auth_method
            )
        if obj.client_secret and obj.encrypted_client_secret:
            return gettext(
                "Set (stored hashed, and encrypted for client_secret_jwt; it cannot be shown). "
                "Use “Rotate secret” to issue a new one."
            )
        if obj.client_secret:
            return gettext("Set (stored hashed; it cannot be shown). Use “Rotate secret” to issue a new one.")
        return gettext("Not set.")

    # --- the secret page ------------------------------------------------------------------------
    def render_secrets(
        self, request: HttpRequest, secrets: list[tuple[Client, str]], *, next_url: str, title: str
    ) -> HttpResponse:
        """The one page that ever shows clear secrets; uncacheable, and not kept anywhere."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "secrets": secrets,
            "next_url": next_url,
            "changelist_url": admin_url(self, "changelist"),
        }
        response = TemplateResponse(request, self.secret_template, context)
        add_never_cache_headers(response)
        return response

    def save_model(self, request: HttpRequest, obj: Client, form: ClientAdminForm, change: bool) -> None:
        if change and form.new_secret and not permissions.may_issue_secret(request.user, obj):
            # A change of method that issues a secret (to client_secret_jwt, or from keys to a
            # secret) is as strong as rotating it; the type's change is guarded by a read-only field.
            raise PermissionDenied
        super().save_model(request, obj, form, change)
        # Kept on the request (for response_add/response_change), never on anything persisted.
        request._oauth_new_secret = form.new_secret  # type: ignore[attr-defined]
        if change and form.new_secret:
            client_flows.secret_rotated(obj)

    def _secret_response(self, request: HttpRequest, obj: Client, message: str) -> HttpResponse | None:
        raw = getattr(request, "_oauth_new_secret", None)
        if not raw:
            return None
        self.message_user(request, message, messages.SUCCESS)
        return self.render_secrets(
            request,
            [(obj, raw)],
            next_url=admin_url(self, "change", obj.pk),
            title=gettext("Copy the client secret now"),
        )

    def response_add(self, request: HttpRequest, obj: Client, post_url_continue: str | None = None):
        response = self._secret_response(
            request, obj, gettext("The client “%(name)s” was added.") % {"name": obj}
        )
        return response or super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: Client):
        response = self._secret_response(
            request, obj, gettext("The client “%(name)s” was changed and now has a secret.") % {"name": obj}
        )
        return response or super().response_change(request, obj)

    # --- rotate-secret button ---------------------------------------------------------------------
    def get_urls(self) -> list:
        opts = self.opts
        return [
            path(
                "<path:object_id>/rotate-secret/",
                self.admin_site.admin_view(require_POST(self.rotate_secret_view)),
                name=f"{opts.app_label}_{opts.model_name}_rotate_secret",
            ),
            *super().get_urls(),
        ]

    def rotate_secret_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = self.get_object(request, object_id)
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not permissions.may_issue_secret(request.user, obj):
            raise PermissionDenied
        if not obj.uses_secret:
            message = (
                gettext("Public clients have no secret to rotate.")
                if obj.client_type != Client.CLIENT_CONFIDENTIAL
                else gettext("This client authenticates with its keys: it has no secret to rotate.")
            )
            self.message_user(request, message, messages.ERROR)
            return HttpResponseRedirect(admin_url(self, "change", obj.pk))
        with transaction.atomic():
            raw = client_flows.rotate_secret(obj)
            self.log_change(request, obj, gettext("Rotated the client secret."))
        self.message_user(
            request,
            gettext("The secret of “%(name)s” was rotated: the old one no longer works.") % {"name": obj},
            messages.SUCCESS,
        )
        return self.render_secrets(
            request,
            [(obj, raw)],
            next_url=admin_url(self, "change", obj.pk),
            title=gettext("Copy the new client secret now"),
        )

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any):
        obj = context.get("original")
        context["can_rotate_secret"] = bool(
            obj is not None and obj.pk and obj.uses_secret and permissions.may_issue_secret(request.user, obj)
        )
        if context["can_rotate_secret"]:
            context["rotate_secret_url"] = admin_url(self, "rotate_secret", obj.pk)
        return super().render_change_form(request, context, *args, **kwargs)

    @admin.display(description=_("metadata document host"))
    def document_host(self, obj: Client) -> str:
        """Where a metadata-document client comes from (its client_id is the document's URL)."""
        origin = registration.client_origin(obj)
        return (origin.host or "-") if origin is not None else "-"

    # --- actions ------------------------------------------------------------------------------------
    @admin.action(
        description=_("Block the metadata document host of selected clients (and disable its clients)"),
        permissions=["change"],
    )
    def block_hosts(self, request: HttpRequest, queryset: QuerySet) -> None:
        hosts = sorted(
            filter(
                None,
                {
                    cimd.host_of(client_id)
                    for client_id in queryset.filter(
                        registration_source=Client.RegistrationSource.CIMD
                    ).values_list("client_id", flat=True)
                },
            )
        )
        if not hosts:
            self.message_user(
                request,
                gettext("None of the selected clients came from a metadata document."),
                messages.WARNING,
            )
            return
        disabled = 0
        for host in hosts:
            _block, n = cimd.block_host(host, gettext("Blocked from the client list."))
            disabled += n
        self.message_user(
            request,
            gettext("Blocked %(hosts)s; disabled %(n)d client(s).")
            % {"hosts": ", ".join(hosts), "n": disabled},
        )

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet, enabled: bool) -> int:
        with transaction.atomic():
            changed = client_flows.set_enabled(queryset, enabled, request=request)
            for client in changed:
                self.log_change(request, client, gettext("Enabled.") if enabled else gettext("Disabled."))
        return len(changed)

    def _without_trusted(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """The clients ``request.user`` may change: those that skip consent need
        ``manage_trusted_client``; the others are left out, with a message."""
        if permissions.may_set_skip_consent(request.user):
            return queryset
        skipped = queryset.filter(skip_consent=True).count()
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "Skipped %d client that skips the consent screen (changing it needs the "
                    "“manage trusted client” permission).",
                    "Skipped %d clients that skip the consent screen (changing them needs the "
                    "“manage trusted client” permission).",
                    skipped,
                )
                % skipped,
                messages.WARNING,
            )
        return queryset.filter(skip_consent=False)

    @admin.action(description=_("Enable selected clients"), permissions=["change"])
    def enable_clients(self, request: HttpRequest, queryset: QuerySet) -> None:
        n = self._set_enabled(request, self._without_trusted(request, queryset), True)
        self.message_user(request, ngettext("Enabled %d client.", "Enabled %d clients.", n) % n)

    @admin.action(
        description=_("Disable selected clients (their tokens are revoked)"), permissions=["change"]
    )
    def disable_clients(self, request: HttpRequest, queryset: QuerySet) -> None:
        n = self._set_enabled(request, queryset, False)
        self.message_user(
            request,
            ngettext(
                "Disabled %d client: it gets invalid_client and its tokens and codes are revoked.",
                "Disabled %d clients: they get invalid_client and their tokens and codes are revoked.",
                n,
            )
            % n,
        )

    @admin.action(description=_("Rotate the secret of selected clients"), permissions=["issue_secret"])
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        queryset = self._without_trusted(request, queryset)
        selected = list(queryset)
        confidential = [client for client in selected if client.uses_secret]
        keyed = [c for c in selected if c.client_type == Client.CLIENT_CONFIDENTIAL and not c.uses_secret]
        skipped = len(selected) - len(confidential) - len(keyed)
        if keyed:
            self.message_user(
                request,
                ngettext(
                    "Skipped %d client that authenticates with its keys (it has no secret).",
                    "Skipped %d clients that authenticate with their keys (they have no secret).",
                    len(keyed),
                )
                % len(keyed),
                messages.WARNING,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "Skipped %d public client (public clients have no secret).",
                    "Skipped %d public clients (public clients have no secret).",
                    skipped,
                )
                % skipped,
                messages.WARNING,
            )
        if not confidential:
            return None
        rotated = []
        with transaction.atomic():
            for client in confidential:
                rotated.append((client, client_flows.rotate_secret(client)))
                self.log_change(request, client, gettext("Rotated the client secret."))
        n = len(rotated)
        self.message_user(
            request,
            ngettext("Rotated the secret of %d client.", "Rotated the secrets of %d clients.", n) % n,
            messages.SUCCESS,
        )
        return self.render_secrets(
            request,
            rotated,
            next_url=admin_url(self, "changelist"),
            title=ngettext("Copy the new client secret now", "Copy the new client secrets now", n),
        )

    @admin.action(description=_("Revoke all tokens of selected clients"), permissions=["change"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        clients = list(queryset)
        with transaction.atomic():
            n = client_flows.revoke_client_tokens(clients, via="admin", request=request)
            for client in clients:
                self.log_change(request, client, gettext("Revoked all tokens and authorization codes."))
        self.message_user(
            request,
            ngettext(
                "Revoked %(n)d token or authorization code of %(clients)d client(s).",
                "Revoked %(n)d tokens and authorization codes of %(clients)d client(s).",
                n,
            )
            % {"n": n, "clients": len(clients)},
        )


class InitialAccessTokenAdmin(admin.ModelAdmin):
    """RFC 7591 initial access tokens: listed and revocable (deleted) here; issued only by
    ``manage.py create_registration_token``, which prints the value once (the table keeps a hash)."""

    list_display = ["__str__", "created", "expires_at", "max_uses", "use_count", "last_used_at"]
    readonly_fields = ["created", "expires_at", "max_uses", "use_count", "last_used_at"]
    fields = ["description", *readonly_fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
