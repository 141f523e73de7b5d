"""The Django admin of oauth_server: one "OAuth server" section for staff.

DOT's ``oauth2_provider.admin`` registers the swapped models (Client, AccessToken, RefreshToken,
IDToken, Grant) with the classes ``conf.dot_defaults`` names (``APPLICATION_ADMIN_CLASS`` etc.,
all defined here), so a site that sets its own class keeps that hook. This module registers the
models DOT does not know. Each model is registered once, whichever of the two apps comes first in
INSTALLED_APPS, because nothing here imports ``oauth2_provider.admin``. See docs/admin.md.
"""

from django.contrib import admin

from ..models import Consent, InitialAccessToken, Scope, SigningKey, Subject
from . import audit, device, registration  # noqa: F401  (register AuditEvent, DeviceAuthorization, BlockedClientHost)
from .accounts import ConsentAdmin, ScopeAdmin, SubjectAdmin
from .clients import ClientAdmin, GrantTypeFilter, InitialAccessTokenAdmin, SelfRegisteredFilter
from .signing_keys import SigningKeyAdmin
from .tokens import AccessTokenAdmin, GrantAdmin, IDTokenAdmin, RefreshTokenAdmin

admin.site.register(Scope, ScopeAdmin)
admin.site.register(Consent, ConsentAdmin)
admin.site.register(SigningKey, SigningKeyAdmin)
admin.site.register(Subject, SubjectAdmin)
admin.site.register(InitialAccessToken, InitialAccessTokenAdmin)

__all__ = [
    "AccessTokenAdmin",
    "ClientAdmin",
    "ConsentAdmin",
    "GrantAdmin",
    "GrantTypeFilter",
    "IDTokenAdmin",
    "InitialAccessTokenAdmin",
    "RefreshTokenAdmin",
    "ScopeAdmin",
    "SelfRegisteredFilter",
    "SigningKeyAdmin",
    "SubjectAdmin",
]
