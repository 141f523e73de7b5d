"""Client secrets the server must be able to read again: encrypted at rest (``client_secret_jwt``).

Secrets are stored hashed (``hashers.py``), which is enough to check a secret the client sends. A
``client_secret_jwt`` client sends no secret: it sends an HMAC (HS256/384/512) keyed by it (RFC 7523,
OIDC Core 9), and the server can only check an HMAC by computing it, so it needs the secret itself.
For those clients only, the secret is also kept encrypted (``Client.encrypted_client_secret``), never
in clear; every other client keeps the hash alone (docs/client-authentication.md, "Why encrypted").

Encryption is Fernet (AES-128-CBC + HMAC-SHA256, authenticated, from ``cryptography``) through
``MultiFernet``: ``OAUTH_SERVER["CLIENT_SECRET_ENCRYPTION_KEYS"]`` is a list of Fernet keys, the
first encrypts and every one decrypts, so a key is rotated by putting a new one first and running
``manage.py rotate_secret_encryption_key`` (which re-encrypts every stored secret under it) before
the old one is removed. Left empty, the key is derived from ``SECRET_KEY`` with HKDF under a fixed
label; ``check --deploy`` recommends a dedicated key (``oauth_server.W013``); a malformed key is
``oauth_server.E007``. The keys derived from ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` always
decrypt (after the configured ones), so moving to a dedicated key is: set it, run the command.

This module imports only settings: the model imports it.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings as django_settings

from .conf import settings

_HKDF_INFO = b"oauth_server client-secret encryption v1"


class SecretDecryptionError(Exception):
    """No configured key decrypts a stored secret (a key was removed before re-encryption), or the
    keys are malformed.

    A configuration error, not the client's: authentication fails (audited ``secret_undecryptable``)
    and it is logged at ERROR level until the old key is listed again.
    """


def derived_key(secret: str) -> bytes:
    """A Fernet key derived from a Django secret (HKDF-SHA256, fixed info label)."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret.encode())
    return base64.urlsafe_b64encode(raw)


def key_problem(value: object) -> str | None:
    """Why ``value`` is not a Fernet key (32 bytes, url-safe base64), or None."""
    if not isinstance(value, str | bytes) or not value:
        return "must be a non-empty string"
    try:
        raw = base64.urlsafe_b64decode(value.encode() if isinstance(value, str) else value)
    except (binascii.Error, ValueError):
        return "is not url-safe base64"
    if len(raw) != 32:
        return f"decodes to {len(raw)} bytes, not 32"
    return None


def _derived_keys() -> list[bytes]:
    secrets = [django_settings.SECRET_KEY, *getattr(django_settings, "SECRET_KEY_FALLBACKS", [])]
    return [derived_key(secret) for secret in secrets if secret]


def configured_keys() -> list[bytes]:
    """The keys in use, the encrypting one first.

    The setting's keys, then (decrypting only) the keys derived from ``SECRET_KEY`` and its
    fallbacks, so that moving from the default to a dedicated key is: set it, run
    ``rotate_secret_encryption_key``. A malformed setting (check E007) is refused, never skipped:
    encrypting under some other key than the operator's first one would be a silent surprise.
    """
    keys = settings.CLIENT_SECRET_ENCRYPTION_KEYS
    if not keys:
        return _derived_keys()
    if not isinstance(keys, list | tuple) or any(key_problem(k) is not None for k in keys):
        raise SecretDecryptionError(
            "OAUTH_SERVER['CLIENT_SECRET_ENCRYPTION_KEYS'] is malformed (see `manage.py check`, E007)."
        )
    own = [k.encode() if isinstance(k, str) else k for k in keys]
    return list(dict.fromkeys([*own, *_derived_keys()]))


def uses_derived_key() -> bool:
    """Whether no dedicated key is configured (secrets are encrypted under SECRET_KEY's derivative)."""
    return not settings.CLIENT_SECRET_ENCRYPTION_KEYS


def _fernet() -> MultiFernet:
    keys = configured_keys()
    if not keys:
        raise SecretDecryptionError("No key to encrypt client secrets with: SECRET_KEY is empty.")
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(raw: str) -> str:
    """The secret encrypted under the first key (a Fernet token, ASCII); SecretDecryptionError if
    the keys are misconfigured."""
    return _fernet().encrypt(raw.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """The secret in ``token``, decrypted with any configured key."""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError, ValueError, TypeError) as exc:
        raise SecretDecryptionError(
            "No key of CLIENT_SECRET_ENCRYPTION_KEYS (or, by default, SECRET_KEY and its fallbacks) "
            "decrypts a stored client secret: was a key removed before "
            "`manage.py rotate_secret_encryption_key` re-encrypted the secrets?"
        ) from exc


def reencrypt(token: str) -> str:
    """``token`` re-encrypted under the first key (decrypted with any); SecretDecryptionError if none."""
    try:
        return _fernet().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError, ValueError, TypeError) as exc:
        raise SecretDecryptionError("No configured key decrypts this client secret.") from exc


def generate_key() -> str:
    """A new key for CLIENT_SECRET_ENCRYPTION_KEYS."""
    return Fernet.generate_key().decode("ascii")
