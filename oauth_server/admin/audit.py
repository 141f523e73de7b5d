"""The audit trail in the admin: read-only for everyone, superusers included.

Events are evidence: nobody adds, edits or deletes them by hand; ``purge_audit_events`` applies
the retention period (docs/audit.md). Filters and search use the copied ``username`` and
``client_id``, so events of deleted users and clients stay findable.
"""

from __future__ import annotations

import ipaddress
import json

from django.contrib import admin
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from ..models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created", "event", "outcome", "username", "client_id", "ip", "summary"]
    # RelatedFieldListFilter lists the (few) clients; RelatedOnly would scan the event table for them.
    list_filter = ["event", "outcome", ("application", admin.RelatedFieldListFilter)]
    date_hierarchy = "created"
    search_fields = ["username", "=client_id"]
    search_help_text = _("Username, exact client ID, or an exact IP address.")
    list_per_page = 100
    show_full_result_count = False  # COUNT(*) over a large event table on every page is wasteful
    fields = [
        "created",
        "event",
        "outcome",
        "user",
        "username",
        "application",
        "client_id",
        "ip",
        "user_agent",
        "details_pretty",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        """Also an exact IP; only a valid address reaches the IP column (PostgreSQL's inet would
        reject anything else with an error)."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        try:
            address = str(ipaddress.ip_address(term))
        except ValueError:
            return results, may_have_duplicates
        return results | queryset.filter(Q(ip=address)), may_have_duplicates

    @admin.display(description=_("details"))
    def summary(self, obj: AuditEvent) -> str:
        details = obj.details or {}
        parts = [f"{key}={value}" for key, value in details.items() if isinstance(value, (str, int, bool))]
        if isinstance(details.get("scopes"), list):
            parts.insert(0, "scopes=" + " ".join(map(str, details["scopes"])))
        text = ", ".join(parts)
        return text if len(text) <= 120 else text[:119] + "…"

    @admin.display(description=_("details"))
    def details_pretty(self, obj: AuditEvent) -> str:
        return format_html(
            '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
            json.dumps(obj.details or {}, indent=2, sort_keys=True, ensure_ascii=False),
        )
