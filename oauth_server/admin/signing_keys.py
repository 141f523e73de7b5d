"""Signing keys: see the public parts, rotate, purge. Keys are never added, edited or deleted by hand.

Rotation and purge are buttons on the list page that POST (with CSRF) to their own admin URLs:
they act on the key set as a whole, which Django's selection-based actions do not fit.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path
from django.utils import timezone
from django.utils.formats import localize
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from .. import keys
from ..conf import settings
from ..models import SigningKey
from .common import admin_url


class PublishedFilter(admin.SimpleListFilter):
    title = _("published in the JWKS")
    parameter_name = "published"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        published = Q(state__in=[SigningKey.State.ACTIVE, SigningKey.State.NEXT]) | Q(
            state=SigningKey.State.RETIRED, retire_after__gt=timezone.now()
        )
        if self.value() == "yes":
            return queryset.filter(published)
        if self.value() == "no":
            return queryset.exclude(published)
        return queryset


class SigningKeyAdmin(admin.ModelAdmin):
    list_display = [
        "kid",
        "algorithm",
        "state",
        "created",
        "activated_at",
        "retired_at",
        "retire_after",
        "published",
    ]
    list_filter = ["state", "algorithm", PublishedFilter]
    search_fields = ["=kid"]
    # Only public parts: private_key (encrypted) is deliberately absent.
    fields = [
        "kid",
        "algorithm",
        "state",
        "published",
        "created",
        "activated_at",
        "retired_at",
        "retire_after",
        "public_key",
    ]
    readonly_fields = fields
    change_list_template = "admin/oauth_server/signingkey/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SigningKey | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: SigningKey | None = None) -> bool:
        # Deleting a published key breaks verification of the tokens it signed: use purge, which
        # only removes retired keys past their publication window.
        return False

    def has_rotate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("oauth_server.change_signingkey")

    @admin.display(description=_("published"), boolean=True)
    def published(self, obj: SigningKey) -> bool:
        if obj.state == SigningKey.State.RETIRED:
            return bool(obj.retire_after and obj.retire_after > timezone.now())
        return True

    @admin.display(description=_("public key (JWK)"))
    def public_key(self, obj: SigningKey) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.public_jwk, indent=2, sort_keys=True))

    # --- rotate / purge ------------------------------------------------------------------------
    def get_urls(self) -> list:
        opts = self.opts
        prefix = f"{opts.app_label}_{opts.model_name}"
        return [
            path(
                "rotate/", self.admin_site.admin_view(require_POST(self.rotate_view)), name=f"{prefix}_rotate"
            ),
            path("purge/", self.admin_site.admin_view(require_POST(self.purge_view)), name=f"{prefix}_purge"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra_context = extra_context or {}
        if self.has_rotate_permission(request):
            extra_context.update(
                can_rotate=True,
                rotate_url=admin_url(self, "rotate"),
                purge_url=admin_url(self, "purge"),
                algorithms=SigningKey.Algorithm.choices,
                default_algorithm=settings.SIGNING_KEY_ALGORITHM,
            )
        return super().changelist_view(request, extra_context)

    def rotate_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_rotate_permission(request):
            raise PermissionDenied
        algorithm = request.POST.get("algorithm") or None
        if algorithm is not None and algorithm not in SigningKey.Algorithm.values:
            self.message_user(request, gettext("Unknown signing algorithm."), messages.ERROR)
            return HttpResponseRedirect(admin_url(self, "changelist"))
        rotation = keys.rotate(algorithm)
        self.log_change(request, rotation.activated, gettext("Rotated: now the active signing key."))
        self.log_change(request, rotation.next, gettext("Rotated: created as the next signing key."))
        if rotation.retired is not None:
            self.log_change(request, rotation.retired, gettext("Rotated: retired."))
            message = gettext(
                "Signing keys rotated: %(active)s now signs, %(retired)s is retired and stays published "
                "until %(until)s, %(next)s is the next key."
            ) % {
                "active": rotation.activated.kid,
                "retired": rotation.retired.kid,
                "until": localize(timezone.localtime(rotation.retire_after)),
                "next": rotation.next.kid,
            }
        else:
            message = gettext("Signing keys created: %(active)s now signs, %(next)s is the next key.") % {
                "active": rotation.activated.kid,
                "next": rotation.next.kid,
            }
        self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(admin_url(self, "changelist"))

    def purge_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_rotate_permission(request):
            raise PermissionDenied
        n = keys.purge_expired()
        self.message_user(
            request,
            ngettext(
                "Deleted %d retired key that was no longer published.",
                "Deleted %d retired keys that were no longer published.",
                n,
            )
            % n,
            messages.SUCCESS if n else messages.INFO,
        )
        return HttpResponseRedirect(admin_url(self, "changelist"))
