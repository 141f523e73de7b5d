from django.contrib import admin

from .models import File


@admin.register(File)
class FileAdmin(admin.ModelAdmin):
    """The files API's rows, so the demo's admin shows what the API stored for whom."""

    list_display = ["name", "owner", "created"]
    list_filter = ["owner"]
    search_fields = ["name", "owner__username"]
    list_select_related = ["owner"]
    readonly_fields = ["created"]
