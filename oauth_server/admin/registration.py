"""Blocked hosts of client ID metadata documents (oauth_server.cimd): staff block a host here, or
from the client list's "Block the host" action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import ngettext

from .. import cimd
from ..models import BlockedClientHost


@admin.register(BlockedClientHost)
class BlockedClientHostAdmin(admin.ModelAdmin):
    list_display = ["host", "reason", "created"]
    search_fields = ["host", "reason"]
    readonly_fields = ["created"]

    def save_model(self, request: HttpRequest, obj: BlockedClientHost, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        _block, disabled = cimd.block_host(obj.host, obj.reason)
        if disabled:
            self.message_user(
                request,
                ngettext(
                    "Disabled %d client registered from this host.",
                    "Disabled %d clients registered from this host.",
                    disabled,
                )
                % disabled,
                messages.WARNING,
            )
