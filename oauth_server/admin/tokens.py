"""Admin for issued credentials: access, refresh and ID tokens, and authorization codes (grants).

DOT registers these models with these classes (``*_ADMIN_CLASS`` in ``conf.dot_defaults``). This
module must not import ``oauth2_provider.admin``: that module imports these classes while it
registers, and importing it from here would make the result depend on INSTALLED_APPS order.

Nothing here can show a token value, a token checksum, an authorization code or a PKCE challenge:
``fields`` are listed explicitly, nothing is searchable by them, and ``__str__`` of these models
prints only the primary key.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ..flows import tokens as token_flows
from ..models import AccessToken, Grant
from .common import CredentialAdmin, ExpiryFilter, UserFilter


class RefreshStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", _("Not revoked")), ("revoked", _("Revoked"))]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked__isnull=False)
        return queryset


def _report(model_admin: admin.ModelAdmin, request: HttpRequest, message: str, skipped: int = 0) -> None:
    model_admin.message_user(request, message, messages.SUCCESS)
    if skipped:
        model_admin.message_user(
            request,
            ngettext(
                "%(n)d was already revoked and was left alone.",
                "%(n)d were already revoked and were left alone.",
                skipped,
            )
            % {"n": skipped},
            messages.INFO,
        )


def _revoke_each(model_admin: admin.ModelAdmin, request: HttpRequest, queryset, revoke) -> int:
    """Revoke each selected credential with ``revoke`` (a flow of ``flows/tokens.py``, which records
    the audit event) in its own transaction, with a change-log entry; returns how many."""
    done = 0
    for credential in queryset:
        with transaction.atomic():
            model_admin.log_change(request, credential, gettext("Revoked."))
            revoke(credential, via="admin", request=request)
        done += 1
    return done


class AccessTokenAdmin(CredentialAdmin):
    list_display = [
        "id",
        "user_link",
        "client_name",
        "scope",
        "jti",
        "audience",
        "created",
        "expires",
        "valid",
    ]
    list_filter = [("application", admin.RelatedOnlyFieldListFilter), ExpiryFilter, UserFilter]
    search_fields = [*CredentialAdmin.search_fields, "jti"]
    fields = [
        "user",
        "application",
        "scope",
        "jti",
        "audience",
        "resource",
        "created",
        "expires",
        "valid",
        "source_refresh_token",
        "id_token",
    ]
    readonly_fields = fields

    @admin.display(description=_("valid"), boolean=True)
    def valid(self, obj: AccessToken) -> bool:
        """Not expired, client enabled, user active: what introspection reports as ``active``."""
        return obj.is_valid()

    @admin.action(description=_("Revoke selected access tokens"), permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = _revoke_each(self, request, queryset, token_flows.revoke_access_token)
        _report(self, request, ngettext("Revoked %d access token.", "Revoked %d access tokens.", done) % done)


class RefreshTokenAdmin(CredentialAdmin):
    list_display = ["id", "user_link", "client_name", "created", "revoked", "token_family", "access_token"]
    list_filter = [("application", admin.RelatedOnlyFieldListFilter), RefreshStateFilter, UserFilter]
    fields = [
        "user",
        "application",
        "access_token",
        "token_family",
        "resource",
        "created",
        "updated",
        "revoked",
    ]
    readonly_fields = fields

    @admin.action(description=_("Revoke selected refresh tokens"), permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        # revoke() keeps the row as a tombstone (reuse detection) and deletes its access token.
        skipped = queryset.filter(revoked__isnull=False).count()
        live = queryset.filter(revoked__isnull=True)
        done = _revoke_each(self, request, live, token_flows.revoke_refresh_token)
        _report(
            self,
            request,
            ngettext("Revoked %d refresh token.", "Revoked %d refresh tokens.", done) % done,
            skipped,
        )


class IDTokenAdmin(CredentialAdmin):
    list_display = ["jti", "user_link", "client_name", "scope", "created", "expires"]
    list_filter = [("application", admin.RelatedOnlyFieldListFilter), ExpiryFilter, UserFilter]
    search_fields = [*CredentialAdmin.search_fields, "=jti"]
    fields = ["jti", "user", "application", "scope", "created", "expires"]
    readonly_fields = fields

    @admin.action(description=_("Revoke selected ID tokens"), permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = _revoke_each(self, request, queryset, token_flows.revoke_id_token)
        _report(self, request, ngettext("Revoked %d ID token.", "Revoked %d ID tokens.", done) % done)


def _delete_code(grant: Grant, **kwargs: object) -> None:
    grant.delete()


class GrantAdmin(CredentialAdmin):
    """Authorization codes. ``code`` (the code's SHA-256) is never a field here."""

    list_display = ["id", "user_link", "client_name", "scope", "created", "expires", "pending"]
    list_filter = [("application", admin.RelatedOnlyFieldListFilter), ExpiryFilter, UserFilter]
    fields = [
        "user",
        "application",
        "scope",
        "redirect_uri",
        "resource",
        "code_challenge_method",
        "auth_time",
        "created",
        "expires",
        "pending",
    ]
    readonly_fields = fields

    @admin.display(description=_("pending"), boolean=True)
    def pending(self, obj: Grant) -> bool:
        """Still exchangeable: not yet exchanged (exchanged codes are kept as tombstones), not expired."""
        return obj.redeemed_at is None and obj.expires > timezone.now()

    @admin.action(description=_("Revoke selected authorization codes"), permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        # Codes are deleted with a change-log entry but no audit event, as they always were.
        done = _revoke_each(self, request, queryset, _delete_code)
        _report(
            self,
            request,
            ngettext("Revoked %d authorization code.", "Revoked %d authorization codes.", done) % done,
        )
