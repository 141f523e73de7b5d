from django.contrib import admin
from oauth2_provider.admin import AccessTokenAdmin, GrantAdmin, IDTokenAdmin, RefreshTokenAdmin  # noqa: F401


class ClientAdmin(admin.ModelAdmin):
    list_display = ["name", "client_id"]
