"""Pieces shared by the oauth_server admin classes: filters, links, permissions, styles."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _


def user_search_fields() -> tuple[str, ...]:
    """Search credentials by who holds them (username, and email when the user model has one)."""
    user_model = get_user_model()
    fields = (f"user__{user_model.USERNAME_FIELD}",)
    if user_model.USERNAME_FIELD != "email" and hasattr(user_model, "email"):
        fields += ("user__email",)
    return fields


CLIENT_SEARCH_FIELDS = ("application__name", "application__client_id")


def admin_url(model_admin: admin.ModelAdmin, name: str, *args: Any) -> str:
    """Reverse one of this model's admin URLs on the admin site it is registered with."""
    opts = model_admin.model._meta
    return reverse(f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_{name}", args=args)


class UserFilter(admin.SimpleListFilter):
    """Filter by one user (``?user=<pk>``), reached from the user links in the list.

    A sidebar listing every user would not scale; this filter only appears while it is active, so
    staff can see which user is selected and clear it.
    """

    title = _("user")
    parameter_name = "user"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        value = self.value()
        if not value:
            return []
        # Always offered while active: Django only applies filters that have choices.
        pk = user_pk(value)
        user = get_user_model().objects.filter(pk=pk).first() if pk is not None else None
        return [(value, str(user) if user else _("unknown user"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        pk = user_pk(value)
        return queryset.none() if pk is None else queryset.filter(user_id=pk)


def user_pk(value: str) -> Any:
    """``value`` as a primary key of the user model, or None: ``str.isdigit()`` accepts "²", which
    ``int()`` refuses, and a UUID or NUL byte must not reach the database (a 500 on PostgreSQL)."""
    field = get_user_model()._meta.pk
    try:
        pk = field.to_python(value)
        field.run_validators(pk)
    except (ValidationError, ValueError, TypeError, OverflowError):
        return None
    if isinstance(pk, int) and not -(2**63) <= pk < 2**63:
        return None
    return pk


class ExpiryFilter(admin.SimpleListFilter):
    """Live (not yet expired) or expired, by the ``expires`` column."""

    title = _("expiry")
    parameter_name = "expired"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("no", _("Not expired")), ("yes", _("Expired"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "no":
            return queryset.filter(expires__gt=timezone.now())
        if self.value() == "yes":
            return queryset.filter(expires__lte=timezone.now())
        return queryset


class CredentialAdmin(admin.ModelAdmin):
    """Tokens and codes are minted by the protocol flows: staff look and revoke, never add or edit.

    Every subclass lists its ``fields`` explicitly so a token value, checksum or code can never
    reach a page through a default field list.
    """

    list_select_related = ("application", "user")
    search_fields = CLIENT_SEARCH_FIELDS + user_search_fields()
    list_per_page = 50
    show_full_result_count = False  # COUNT(*) over a large token table on every page is wasteful
    actions = ["revoke_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Revocation goes through the model's revoke path (which keeps reuse-detection tombstones
        # and removes bound tokens); a raw delete would bypass it.
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        """Staff holding the model's delete or change permission may revoke."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.delete_{opts.model_name}") or request.user.has_perm(
            f"{opts.app_label}.change_{opts.model_name}"
        )

    @admin.display(description=_("user"), ordering="user")
    def user_link(self, obj: Model) -> str:
        """The holder, linked to this list filtered on them."""
        if obj.user_id is None:
            return "-"
        url = admin_url(self, "changelist") + f"?{UserFilter.parameter_name}={obj.user_id}"
        return format_html('<a href="{}">{}</a>', url, obj.user)

    @admin.display(description=_("client"), ordering="application__name")
    def client_name(self, obj: Model) -> str:
        return str(obj.application) if obj.application_id else "-"
