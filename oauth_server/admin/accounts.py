"""Admin for scopes, consents and subject identifiers."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ..flows.consents import revoke_consent
from ..models import Consent, Scope, Subject
from .common import user_search_fields


class ScopeAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "is_default", "client_count"]
    list_filter = ["is_default"]
    search_fields = ["name", "description"]
    fields = ["name", "description", "is_default", "created", "updated"]
    readonly_fields = ["created", "updated"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(client_count=Count("clients", distinct=True))

    def get_readonly_fields(self, request: HttpRequest, obj: Scope | None = None) -> list[str]:
        # Tokens and consents hold scope *names*: renaming one would silently change what every
        # issued token and remembered consent means. Add a new scope instead.
        if obj is not None:
            return ["name", *self.readonly_fields]
        return list(self.readonly_fields)

    @admin.display(description=_("clients"), ordering="client_count")
    def client_count(self, obj: Scope) -> int:
        return obj.client_count


class ActiveConsentFilter(admin.SimpleListFilter):
    title = _("active")
    parameter_name = "active"

    def lookups(self, request, model_admin):
        return [("yes", _("Active")), ("no", _("Revoked"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class ConsentAdmin(admin.ModelAdmin):
    """Consents are given by users on the consent screen; staff can only look and revoke."""

    list_display = ["user", "client", "scope", "created", "updated", "revoked_at", "active"]
    list_filter = [("client", admin.RelatedOnlyFieldListFilter), ActiveConsentFilter]
    list_select_related = ["user", "client"]
    search_fields = [*user_search_fields(), "client__name", "=client__client_id"]
    fields = ["user", "client", "scope", "created", "updated", "revoked_at", "active"]
    readonly_fields = fields
    actions = ["revoke_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Consent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Consent | None = None) -> bool:
        # Deleting would forget the consent but leave its tokens working; revoking does both.
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("oauth_server.delete_consent") or request.user.has_perm(
            "oauth_server.change_consent"
        )

    @admin.display(description=_("active"), boolean=True)
    def active(self, obj: Consent) -> bool:
        return obj.is_active

    @admin.action(
        description=_("Revoke selected consents (and the client's tokens for that user)"),
        permissions=["revoke"],
    )
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = skipped = 0
        for consent in queryset.select_related("user", "client"):
            if not revoke_consent(consent):
                skipped += 1
                continue
            self.log_change(request, consent, gettext("Revoked (the client's tokens for this user too)."))
            done += 1
        self.message_user(
            request,
            ngettext(
                "Revoked %d consent; the client's tokens and codes for that user were revoked too.",
                "Revoked %d consents; the clients' tokens and codes for those users were revoked too.",
                done,
            )
            % done,
            messages.SUCCESS,
        )
        if skipped:
            self.message_user(
                request,
                ngettext("%d consent was already revoked.", "%d consents were already revoked.", skipped)
                % skipped,
                messages.INFO,
            )


class SubjectAdmin(admin.ModelAdmin):
    """Read-only: answers "which user is this ``sub``?" when a client or log names one."""

    list_display = ["sub", "user", "created"]
    list_select_related = ["user"]
    search_fields = ["=sub", *user_search_fields()]
    fields = ["sub", "user", "created"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Subject | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Subject | None = None) -> bool:
        # A sub must stay stable for the user's lifetime; deleting it would give them a new one.
        return False
