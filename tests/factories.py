"""factory-boy factories for every model the tests touch."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import set_token_value

from oauth_server import hashers
from oauth_server.models import AccessToken, Client, Consent, GrantType, RefreshToken, Scope

DEFAULT_PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    first_name = "Ada"
    last_name = "Lovelace"
    password = factory.django.Password(DEFAULT_PASSWORD)


class ScopeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Scope
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"scope{n}:read")
    description = factory.LazyAttribute(lambda s: f"Use {s.name}")
    is_default = False


class ClientFactory(factory.django.DjangoModelFactory):
    """A confidential web client with authorization_code + refresh_token.

    The clear secret is on ``client.raw_secret`` (the database holds only its hash).
    """

    class Meta:
        model = Client
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Client {n}")
    client_type = Client.CLIENT_CONFIDENTIAL
    grant_types = factory.LazyFunction(lambda: [GrantType.AUTHORIZATION_CODE, GrantType.REFRESH_TOKEN])
    redirect_uris = "https://client.example.com/callback"
    raw_secret = factory.LazyFunction(lambda: secrets.token_urlsafe(48))
    client_secret = factory.LazyAttribute(
        lambda c: hashers.make_secret_hash(c.raw_secret) if c.raw_secret else ""
    )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        raw_secret = kwargs.pop("raw_secret", None)
        obj = super()._create(model_class, *args, **kwargs)
        obj.raw_secret = raw_secret if obj.client_type == Client.CLIENT_CONFIDENTIAL else None
        return obj

    @factory.post_generation
    def scopes(self, create, extracted, **kwargs):
        """``ClientFactory(scopes=["a", "b"])`` creates the scopes if needed and allows them."""
        if not create or not extracted:
            return
        self.allowed_scopes.set(
            [ScopeFactory(name=name) if isinstance(name, str) else name for name in extracted]
        )


class PublicClientFactory(ClientFactory):
    client_type = Client.CLIENT_PUBLIC
    raw_secret = None
    client_secret = ""


class MachineClientFactory(ClientFactory):
    grant_types = factory.LazyFunction(lambda: [GrantType.CLIENT_CREDENTIALS])
    redirect_uris = ""


class ConsentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Consent

    user = factory.SubFactory(UserFactory)
    client = factory.SubFactory(ClientFactory)
    scope = ""


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge) per RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class _StoredTokenFactory(factory.django.DjangoModelFactory):
    """Saves the token's checksum only (``set_token_value``); the clear value goes on ``raw_token``
    (``raw_token=`` chooses it)."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        raw = kwargs.pop("raw_token", None) or secrets.token_urlsafe(32)
        obj = model_class(*args, **kwargs)
        set_token_value(obj, raw)
        obj.save()
        obj.raw_token = raw
        return obj


class AccessTokenFactory(_StoredTokenFactory):
    """An issued access token stored the way the server stores it (checksum only).

    The clear (opaque) value is on ``token.raw_token``; nothing in the database holds it.
    """

    class Meta:
        model = AccessToken
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    application = factory.SubFactory(ClientFactory)
    scope = "files:read"
    expires = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))
    jti = factory.LazyFunction(lambda: secrets.token_urlsafe(18))


class RefreshTokenFactory(_StoredTokenFactory):
    """A refresh token with its access token; the clear value is on ``raw_token``."""

    class Meta:
        model = RefreshToken
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    application = factory.SubFactory(ClientFactory)
    access_token = factory.SubFactory(
        AccessTokenFactory,
        user=factory.SelfAttribute("..user"),
        application=factory.SelfAttribute("..application"),
    )


class DemoFileFactory(factory.django.DjangoModelFactory):
    """A file of the demo's files API (example_project.demo)."""

    class Meta:
        model = "demo.File"

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"file-{n}.txt")
    content = "hello"
