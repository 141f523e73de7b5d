"""Security profiles: one switch that turns on a set of rules for a client, or for the whole site.

A ``Profile`` says what its clients must do (FAPI 2.0 Security Profile: PAR, S256 PKCE, asymmetric
client authentication, DPoP, short codes, https redirect URIs, confidential clients only, a narrow
set of grants and signing algorithms). ``registry`` maps names to profiles; ``profile_of(client)``
combines the client's ``security_profile`` field with the site's ``OAUTH_SERVER["SECURITY_PROFILE"]``
(the client's wins when set; a client cannot opt out of the site's profile: there is one profile).

The enforcement points ask this module, never the fields and settings themselves:

- ``requires_par`` (the authorization view and the consent POST), ``requires_dpop`` (``dpop.py``),
  ``requires_pkce`` (the validator), ``requires_redirect_uri`` (the validator's default redirect URI);
- ``auth_method_allowed`` (the validator, the PAR endpoint through it), ``grant_type_allowed``;
- ``redirect_uri_allowed`` (the validator: http redirect URIs refused at request time too, for clients
  registered before the site turned the profile on);
- ``code_lifetime`` (the validator, when it saves a code), ``algorithms`` (DPoP proofs, client
  assertions);
- ``client_errors`` (``Client.clean``: the admin, the management API, ``create_oauth_client``);
- ``metadata`` (discovery, when the profile is site-wide).

docs/fapi.md says what each rule protects against. This module imports no model (the model imports
it) and reads the client-authentication and grant registries lazily.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.utils.translation import gettext_lazy as _

from .conf import settings

# ``Client`` (oauth_server.models); not imported: the model imports this module.
Client = Any


@dataclass(frozen=True)
class Profile:
    """The rules of one security profile; ``None`` for a rule means "the site's own setting"."""

    name: str
    #: Shown in the admin, the API's choices and the consent page ("This app uses the ... profile").
    title: str
    label: Any
    require_par: bool = False
    require_dpop: bool = False
    require_pkce: bool = False
    #: RFC 6749 2.1: only confidential clients (FAPI 2.0 5.3.2.1).
    confidential_only: bool = False
    #: Only client-authentication methods marked ``asymmetric`` in the client_auth registry.
    asymmetric_client_auth: bool = False
    #: The authorization request must name its redirect URI, even with one registered.
    require_redirect_uri: bool = False
    #: Redirect URIs must be https.
    https_redirect_uris: bool = False
    #: Upper bound of the authorization code's lifetime in seconds (the site's is used if shorter).
    max_code_lifetime: int | None = None
    #: The grant types a client may hold (None: any registered grant).
    grant_types: frozenset[str] | None = None
    #: JWS algorithms accepted from its clients (DPoP proofs, client assertions) and wanted for the
    #: server's own signatures (a system check warns when the site's signing key uses another).
    signing_algorithms: frozenset[str] | None = None

    def allows_algorithm(self, algorithm: str) -> bool:
        return self.signing_algorithms is None or algorithm in self.signing_algorithms


FAPI2 = Profile(
    name="fapi2",
    title="FAPI 2.0",
    label=_("FAPI 2.0 Security Profile"),
    require_par=True,
    require_dpop=True,
    require_pkce=True,
    confidential_only=True,
    asymmetric_client_auth=True,
    require_redirect_uri=True,
    https_redirect_uris=True,
    max_code_lifetime=60,
    # The code flow (+ refresh) and machine-to-machine tokens. The device grant cannot push its
    # request nor have a redirect URI; token exchange is outside the FAPI 2.0 profile.
    grant_types=frozenset({"authorization_code", "refresh_token", "client_credentials"}),
    # FAPI 2.0 5.4: PS256, ES256 or EdDSA (Ed25519); never RSASSA-PKCS1-v1_5 (RS256).
    signing_algorithms=frozenset({"PS256", "ES256", "EdDSA"}),
)


class ProfileRegistry:
    def __init__(self) -> None:
        self._profiles: dict[str, Profile] = {}

    def register(self, profile: Profile) -> Profile:
        if profile.name in self._profiles:
            raise ValueError(f"security profile {profile.name!r} is already registered")
        self._profiles[profile.name] = profile
        return profile

    def unregister(self, name: str) -> None:
        self._profiles.pop(name, None)

    def get(self, name: object) -> Profile | None:
        return self._profiles.get(name) if isinstance(name, str) else None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._profiles

    def __iter__(self) -> Iterator[Profile]:
        return iter(self._profiles.values())

    def names(self) -> list[str]:
        return list(self._profiles)

    def choices(self) -> list[tuple[str, Any]]:
        return [(p.name, p.label) for p in self._profiles.values()]


registry = ProfileRegistry()
registry.register(FAPI2)


# --- which profile applies ------------------------------------------------------------------------
def site_profile() -> Profile | None:
    """The site-wide profile (``OAUTH_SERVER["SECURITY_PROFILE"]``); an unknown name is reported by
    the system check ``oauth_server.E006`` and treated as the strictest profile meanwhile."""
    name = settings.SECURITY_PROFILE
    if not name:
        return None
    return registry.get(name) or FAPI2


def profile_of(client: Client | None) -> Profile | None:
    """The profile ``client`` is under: its own ``security_profile``, else the site's."""
    own = registry.get(getattr(client, "security_profile", "") or "")
    return own or site_profile()


def name_of(client: Client | None) -> str | None:
    """The profile's name, for audit details (None: no profile)."""
    profile = profile_of(client)
    return profile.name if profile is not None else None


# --- the rules, one question each ------------------------------------------------------------------
def requires_par(client: Client) -> bool:
    """RFC 9126: the client must push its authorization requests (the site, the client, or its profile)."""
    profile = profile_of(client)
    return bool(
        settings.REQUIRE_PUSHED_AUTHORIZATION_REQUESTS
        or getattr(client, "require_pushed_authorization_requests", False)
        or (profile is not None and profile.require_par)
    )


def requires_dpop(client: Client) -> bool:
    """RFC 9449: the client must send a DPoP proof to the token endpoint."""
    profile = profile_of(client)
    return bool(
        settings.REQUIRE_DPOP
        or getattr(client, "require_dpop", False)
        or (profile is not None and profile.require_dpop)
    )


def requires_pkce(client: Client | None) -> bool:
    """Whether the profile requires PKCE whatever ``REQUIRE_PKCE`` says (S256 is the only method)."""
    profile = profile_of(client)
    return profile is not None and profile.require_pkce


def requires_redirect_uri(client: Client | None) -> bool:
    profile = profile_of(client)
    return profile is not None and profile.require_redirect_uri


def asymmetric_methods() -> list[str]:
    """The registered client-authentication methods that prove a private key (``asymmetric``)."""
    from . import client_auth

    return [method.name for method in client_auth.registry if method.asymmetric]


def auth_method_allowed(client: Client, method_name: str) -> bool:
    """Whether ``client`` may authenticate with ``method_name`` under its profile (the registered
    method is checked separately)."""
    profile = profile_of(client)
    if profile is None or not profile.asymmetric_client_auth:
        return True
    return method_name in asymmetric_methods()


def grant_type_allowed(client: Client, grant_type: str) -> bool:
    profile = profile_of(client)
    return profile is None or profile.grant_types is None or grant_type in profile.grant_types


def redirect_uri_allowed(client: Client, uri: str) -> bool:
    profile = profile_of(client)
    return profile is None or not profile.https_redirect_uris or _is_https(uri)


def code_lifetime(client: Client | None, site_lifetime: int) -> int:
    """The authorization code's lifetime for ``client``: the site's, capped by its profile."""
    profile = profile_of(client)
    if profile is None or profile.max_code_lifetime is None:
        return site_lifetime
    return min(site_lifetime, profile.max_code_lifetime)


def algorithms(client: Client | None, allowed: Iterable[str]) -> list[str]:
    """``allowed`` (a site setting, in its order) narrowed to what the client's profile accepts."""
    profile = profile_of(client)
    return [alg for alg in allowed if profile is None or profile.allows_algorithm(alg)]


def _is_https(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "https" and bool(parts.netloc)


# --- registration ---------------------------------------------------------------------------------
def client_errors(client: Client) -> dict[str, list[Any]]:
    """What stops ``client`` from being registered under its profile, by field (``Client.clean``)."""
    own = getattr(client, "security_profile", "") or ""
    if own and own not in registry:
        return {"security_profile": [_("Unknown security profile: %s") % own]}
    profile = profile_of(client)
    if profile is None:
        return {}
    errors: dict[str, list[Any]] = {}
    title = profile.title
    if profile.confidential_only and not client.is_confidential:
        message = _("The %(profile)s profile allows confidential clients only.")
        errors["client_type"] = [message % {"profile": title}]
    method = client.token_endpoint_auth_method
    if profile.asymmetric_client_auth and client.is_confidential and method not in asymmetric_methods():
        errors["token_endpoint_auth_method"] = [
            _("The %(profile)s profile needs a client authentication method with a private key: %(methods)s.")
            % {"profile": title, "methods": ", ".join(asymmetric_methods()) or "-"}
        ]
    if profile.https_redirect_uris:
        insecure = [uri for uri in client.redirect_uri_list if not _is_https(uri)]
        if insecure:
            errors["redirect_uris"] = [
                _("The %(profile)s profile needs https redirect URIs: %(uris)s")
                % {"profile": title, "uris": " ".join(insecure)}
            ]
    if profile.grant_types is not None:
        refused = [g for g in client.grant_types or [] if g not in profile.grant_types]
        if refused:
            errors["grant_types"] = [
                _("The %(profile)s profile does not allow these grant types: %(grants)s")
                % {"profile": title, "grants": ", ".join(refused)}
            ]
    return errors


ID_TOKEN_ALGS = "id_token_signing_alg_values_supported"


# --- discovery --------------------------------------------------------------------------------------
def metadata(document: dict[str, Any]) -> dict[str, Any]:
    """The metadata document as it is true under the site-wide profile (unchanged without one)."""
    profile = site_profile()
    if profile is None:
        return document
    document = dict(document)
    if profile.require_par:
        document["require_pushed_authorization_requests"] = True
    if profile.asymmetric_client_auth:
        allowed = set(asymmetric_methods())
        for key, value in list(document.items()):
            if key.endswith("_auth_methods_supported"):
                document[key] = [name for name in value if name in allowed]
    if profile.signing_algorithms is not None:
        # What clients sign (assertions, DPoP proofs). The server's own ID_TOKEN_ALGS stays what its
        # key really uses (check W012 warns when the profile forbids it).
        for key in [k for k in document if k.endswith("_signing_alg_values_supported")]:
            if key != ID_TOKEN_ALGS:
                document[key] = [alg for alg in document[key] if profile.allows_algorithm(alg)]
    if profile.grant_types is not None:
        document["grant_types_supported"] = [
            g for g in document.get("grant_types_supported", []) if g in profile.grant_types
        ]
    document["code_challenge_methods_supported"] = ["S256"]
    return document
