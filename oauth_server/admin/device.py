"""Admin for device authorizations (RFC 8628): read only, pending ones first to hand.

Staff see which client asked, for which scopes, its state, who decided and when it expires; never a
code (both are stored hashed and are not listed). Nothing can be added or changed here: a request is
created by its device and decided by its user.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..models import DeviceAuthorization


class PendingFilter(admin.SimpleListFilter):
    title = _("waiting")
    parameter_name = "waiting"

    def lookups(self, request, model_admin):
        return [("yes", _("Waiting for the user")), ("expired", _("Expired unanswered"))]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        pending = queryset.filter(status=DeviceAuthorization.Status.PENDING)
        if self.value() == "yes":
            return pending.filter(expires__gt=timezone.now())
        if self.value() == "expired":
            return pending.filter(expires__lte=timezone.now())
        return queryset


@admin.register(DeviceAuthorization)
class DeviceAuthorizationAdmin(admin.ModelAdmin):
    list_display = ("pk", "client", "status", "user", "scope", "created", "expires", "interval")
    list_filter = (PendingFilter, "status")
    list_select_related = ("client", "user")
    search_fields = ("client__name", "client__client_id")
    date_hierarchy = "created"
    fields = (
        "client",
        "scope",
        "status",
        "user",
        "created",
        "expires",
        "interval",
        "last_polled",
        "decided_at",
        "redeemed_at",
        "auth_time",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
