"""This app's signal receivers: policy (session sign-in data, revoking on deactivation) and the audit
trail (docs/audit.md). Imported, and so connected, by ``apps.OAuthServerConfig.ready()``; the signals
this app sends are declared in ``signals.py``.
"""

import secrets
import time

from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.signals import setting_changed
from django.db.models.signals import post_delete, post_init, post_save, pre_save
from django.dispatch import receiver

from . import audit, published
from .models import Scope, SigningKey
from .revocation import revoke_tokens
from .session_keys import SESSION_AUTH_TIME_KEY, SESSION_SIGN_IN_KEY
from .signals import (
    authorization_code_replayed,
    client_registered,
    client_registration_deleted,
    client_registration_updated,
    client_secret_rotated,
    consent_granted,
    consent_revoked,
    signing_key_rotated,
)


@receiver(user_logged_in)
def remember_auth_time(sender, request, user, **kwargs) -> None:
    """The session's authentication time, for max_age, prompt=login and the ID token's auth_time.

    Django's login() flushes the session when another user signs in and cycles the key of an
    anonymous one, but keeps the key when the signed-in user signs in again (prompt=login, max_age):
    a fresh sign-in gets a fresh session key here too.
    """
    if request is not None and hasattr(request, "session"):
        if SESSION_AUTH_TIME_KEY in request.session or SESSION_SIGN_IN_KEY in request.session:
            request.session.cycle_key()
        request.session[SESSION_AUTH_TIME_KEY] = int(time.time())
        request.session[SESSION_SIGN_IN_KEY] = secrets.token_urlsafe(16)


# --- a disabled client or a deactivated user loses its tokens and codes ---------------------------------
# The flag's value as loaded is remembered at post_init (a dict read, no query; nothing for a deferred
# field), so post_save acts only on a True -> False change that was actually written. A queryset
# ``update()`` sends no signals: callers that bulk-disable revoke themselves (the admin action does).
_LOADED = "_oauth_server_loaded_{}"


def _remember(instance, field: str) -> None:
    if field in instance.__dict__:
        instance.__dict__[_LOADED.format(field)] = instance.__dict__[field]


def _turned_off(instance, field: str, created: bool, update_fields) -> bool:
    if update_fields is not None and field not in update_fields:
        return False  # not written: the database keeps the old value, and so do we
    before = instance.__dict__.get(_LOADED.format(field))
    now = instance.__dict__.get(field)
    _remember(instance, field)
    return not created and now is False and before is not False


@receiver(post_init, sender=django_settings.AUTH_USER_MODEL)
def _remember_user_active(sender, instance, **kwargs) -> None:
    _remember(instance, "is_active")


@receiver(post_save, sender=django_settings.AUTH_USER_MODEL)
def revoke_tokens_of_deactivated_user(sender, instance, created, update_fields=None, **kwargs) -> None:
    """``is_active`` went False: revoke the user's tokens and delete their codes, so re-activating
    the account does not bring old sessions back (AccessToken.is_valid() refuses them meanwhile)."""
    if _turned_off(instance, "is_active", created, update_fields):
        revoke_tokens(user=instance)


@receiver(post_init, sender=django_settings.OAUTH2_PROVIDER_APPLICATION_MODEL)
def _remember_client_enabled(sender, instance, **kwargs) -> None:
    _remember(instance, "is_enabled")


@receiver(post_save, sender=django_settings.OAUTH2_PROVIDER_APPLICATION_MODEL)
def revoke_tokens_of_disabled_client(sender, instance, created, update_fields=None, **kwargs) -> None:
    """``is_enabled`` went False (admin form, API, shell): revoke the client's tokens and codes."""
    if _turned_off(instance, "is_enabled", created, update_fields):
        revoke_tokens(client=instance)


# --- audit trail (docs/audit.md): receivers that turn signals into audit events -----------------------
_CLIENT_MODEL = django_settings.OAUTH2_PROVIDER_APPLICATION_MODEL
# Not worth an event of their own: bookkeeping, or covered by client_secret_rotated.
# cimd_expires_at moves on every metadata-document refresh (cimd.py audits real changes itself).
_CLIENT_UNAUDITED_FIELDS = {
    "created",
    "updated",
    "client_secret",
    "encrypted_client_secret",  # changes with client_secret (its own event, client_secret_rotated)
    "authorization_grant_type",
    "cimd_expires_at",
}
_CLIENT_CHANGES = "_oauth_server_audit_changes"


@receiver(user_logged_in, dispatch_uid="oauth_server.audit.login")
def audit_login(sender, request, user, **kwargs) -> None:
    audit.record(audit.Event.LOGIN, request=request, user=user)


@receiver(user_login_failed, dispatch_uid="oauth_server.audit.login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    """Django passes the credentials with secrets masked; only the username is kept."""
    username = credentials.get(get_user_model().USERNAME_FIELD) or credentials.get("username") or ""
    audit.record(audit.Event.LOGIN_FAILED, request=request, outcome=audit.FAILURE, username=str(username))


@receiver(user_logged_out, dispatch_uid="oauth_server.audit.logout")
def audit_logout(sender, request, user, **kwargs) -> None:
    """Any sign-out; RP-initiated logout (views/logout.py) adds the client and the tokens it revoked."""
    if user is None:
        return
    rp = getattr(request, "oauth_server_logout", None) or {}
    details = {"rp_initiated": True, "tokens_revoked": rp.get("tokens_revoked", 0)} if rp else {}
    audit.record(audit.Event.LOGOUT, request=request, user=user, client=rp.get("client"), **details)


@receiver(consent_granted, dispatch_uid="oauth_server.audit.consent_granted")
def audit_consent_granted(sender, user, client, scopes, **kwargs) -> None:
    audit.record(audit.Event.CONSENT_GRANTED, user=user, client=client, scopes=list(scopes))


@receiver(consent_revoked, dispatch_uid="oauth_server.audit.consent_revoked")
def audit_consent_revoked(sender, consent, **kwargs) -> None:
    audit.record(audit.Event.CONSENT_REVOKED, user=consent.user, client=consent.client, scopes=consent.scopes)


@receiver(client_secret_rotated, dispatch_uid="oauth_server.audit.client_secret_rotated")
def audit_client_secret_rotated(sender, client, **kwargs) -> None:
    audit.record(audit.Event.CLIENT_SECRET_ROTATED, client=client)


@receiver(client_registered, dispatch_uid="oauth_server.audit.client_registered")
def audit_client_registered(sender, client, registration, **kwargs) -> None:
    audit.record(
        audit.Event.CLIENT_REGISTERED,
        client=client,
        name=client.name,
        client_type=client.client_type,
        grant_types=client.grant_types,
        redirect_uris=client.redirect_uri_list,
        initial_access_token=registration.initial_access_token_id,
    )


@receiver(client_registration_updated, dispatch_uid="oauth_server.audit.client_registration_updated")
def audit_client_registration_updated(sender, client, changed, **kwargs) -> None:
    audit.record(audit.Event.CLIENT_REGISTRATION_UPDATED, client=client, changed=changed)


@receiver(client_registration_deleted, dispatch_uid="oauth_server.audit.client_registration_deleted")
def audit_client_registration_deleted(sender, client_id, name, via, **kwargs) -> None:
    audit.record(audit.Event.CLIENT_REGISTRATION_DELETED, client_id=client_id, name=name, via=via)


@receiver(signing_key_rotated, dispatch_uid="oauth_server.audit.signing_key_rotated")
def audit_signing_key_rotated(sender, rotation, **kwargs) -> None:
    audit.record(
        audit.Event.SIGNING_KEY_ROTATED,
        kid=rotation.activated.kid,
        algorithm=rotation.activated.algorithm,
        retired_kid=rotation.retired.kid if rotation.retired else None,
        retired_published_until=rotation.retire_after,
        next_kid=rotation.next.kid,
    )


@receiver(authorization_code_replayed, dispatch_uid="oauth_server.audit.code_replay")
def audit_code_replay(sender, grant=None, client=None, user=None, request=None, **kwargs) -> None:
    audit.record(
        audit.Event.CODE_REPLAY_DETECTED,
        request=request,
        user=user,
        client=client,
        outcome=audit.FAILURE,
        grant_id=getattr(grant, "pk", None),
    )


@receiver(pre_save, sender=_CLIENT_MODEL, dispatch_uid="oauth_server.audit.client_pre_save")
def _audit_client_changes(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    """Which fields a save changes (names only, never values): one query, on saves only."""
    if raw or instance.pk is None or instance._state.adding:
        return
    fields = [f for f in sender._meta.concrete_fields if not f.primary_key]
    if update_fields is not None:
        changed = {f.name for f in fields if f.name in update_fields or f.attname in update_fields}
    else:
        old = sender._default_manager.filter(pk=instance.pk).values(*[f.attname for f in fields]).first()
        if old is None:
            return
        changed = {f.name for f in fields if old[f.attname] != getattr(instance, f.attname)}
    instance.__dict__[_CLIENT_CHANGES] = changed


@receiver(post_save, sender=_CLIENT_MODEL, dispatch_uid="oauth_server.audit.client_saved")
def audit_client_saved(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:
        return
    if created:
        audit.record(
            audit.Event.CLIENT_CREATED,
            client=instance,
            name=instance.name,
            client_type=instance.client_type,
            grant_types=instance.grant_types,
        )
        return
    changed = instance.__dict__.pop(_CLIENT_CHANGES, None)
    if changed is None:
        return
    changed = sorted(changed - _CLIENT_UNAUDITED_FIELDS)
    if changed:
        audit.record(audit.Event.CLIENT_UPDATED, client=instance, changed=changed)


@receiver(post_delete, sender=_CLIENT_MODEL, dispatch_uid="oauth_server.audit.client_deleted")
def audit_client_deleted(sender, instance, **kwargs) -> None:
    """The row is gone: the event keeps the client_id and name, not a foreign key to it."""
    audit.record(audit.Event.CLIENT_DELETED, client_id=instance.client_id, name=instance.name)


# --- the cached public documents (published.py): what they show changed --------------------------------
def _documents_changed(sender, **kwargs) -> None:
    published.invalidate()


def _discovery_setting_changed(sender, setting, **kwargs) -> None:
    """Settings shape the documents (issuer, policies, algorithms); tests change them at run time."""
    if setting in ("OAUTH_SERVER", "OAUTH2_PROVIDER", "CACHES", "ROOT_URLCONF"):
        published.replace_version()  # no transaction involved (nor, maybe, any database)


for _model in (SigningKey, Scope):
    post_save.connect(
        _documents_changed, sender=_model, dispatch_uid=f"oauth_server.published.{_model.__name__}.save"
    )
    post_delete.connect(
        _documents_changed, sender=_model, dispatch_uid=f"oauth_server.published.{_model.__name__}.delete"
    )
setting_changed.connect(_discovery_setting_changed, dispatch_uid="oauth_server.published.setting_changed")
