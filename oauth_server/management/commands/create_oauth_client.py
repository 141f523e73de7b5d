"""``manage.py create_oauth_client``: register a client from a shell, a deploy script or CI.

Everything goes through ``Client.objects.create_client`` (the model validation the admin also uses),
so the command cannot create a client the admin would refuse. The clear secret is printed once.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError, transaction

from oauth_server import client_auth, profiles
from oauth_server.conf import settings
from oauth_server.models import Client, GrantType, Scope
from oauth_server.validators import (
    clean_origins,
    is_resource_uri,
    may_list_origins,
    post_logout_uri_validator,
)

# RFC 6749 appendix A.1: client_id = *VSCHAR. We also refuse the space, which would split the id in
# space-separated lists and logs.
CLIENT_ID_RE = re.compile(r"^[\x21-\x7E]+$")

# Model field -> the option that sets it, so an error names what the operator typed.
OPTION_FOR_FIELD = {
    "name": "--name",
    "client_type": "--type",
    "grant_types": "--grant-type",
    "redirect_uris": "--redirect-uri",
    "post_logout_redirect_uris": "--post-logout-redirect-uri",
    "allowed_origins": "--allowed-origin",
    "allowed_scopes": "--scope",
    "client_id": "--client-id",
    "user": "--owner",
    "client_secret": "--client-secret",
    "audiences": "--audience",
    "resource_identifiers": "--resource-identifier",
    "access_token_format": "--access-token-format",
    "token_exchange_impersonation": "--token-exchange-impersonation",
    "token_endpoint_auth_method": "--auth-method",
    "jwks": "--jwks-file",
    "require_pushed_authorization_requests": "--require-par",
    "require_dpop": "--dpop",
    "require_signed_request_object": "--require-signed-request-object",
    "jwks_uri": "--jwks-uri",
    "security_profile": "--profile",
}


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem, prefixed with the option that caused it."""
    if not hasattr(exc, "error_dict"):
        return "; ".join(exc.messages)
    lines = []
    for field, messages in exc.message_dict.items():
        label = OPTION_FOR_FIELD.get(field, field)
        lines.extend(f"{label}: {message}" for message in messages)
    return "\n".join(lines)


def _unique(values: list[str] | None) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values or [] if v.strip()))


def _check_resource_uris(option: str, values: list[str]) -> list[str]:
    """RFC 8707 2: a resource is an absolute URI without a fragment (``validators.is_resource_uri``)."""
    problems = []
    for value in values:
        if not is_resource_uri(value):
            problems.append(f"{option}: {value!r} is not an absolute URI without a fragment (RFC 8707).")
    return problems


def _check_scope_lists(values: list[str]) -> list[str]:
    """``--scope openid,profile`` or ``--scope "openid profile"``: one option per scope.

    A comma may be part of a scope name (RFC 6749 3.3), so a value is split only to explain the
    refusal, and only when no scope has that exact name.
    """
    suspects = [v for v in values if re.search(r"[,\s]", v)]
    if not suspects:
        return []
    existing = set(Scope.objects.filter(name__in=suspects).values_list("name", flat=True))
    problems = []
    for value in suspects:
        if value in existing:
            continue
        parts = [part for part in re.split(r"[,\s]+", value) if part]
        repeated = " ".join(f"--scope {part}" for part in parts)
        problems.append(
            f"--scope: {value!r} is not one scope name. Repeat --scope for each scope: {repeated}"
        )
    return problems


class Command(BaseCommand):
    help = (
        "Create an OAuth client. The client secret (confidential clients) is printed once: only its "
        "hash is stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="Name shown to users on the consent screen.")
        parser.add_argument(
            "--type",
            dest="client_type",
            required=True,
            choices=[Client.CLIENT_PUBLIC, Client.CLIENT_CONFIDENTIAL],
            help="confidential: has a secret (server-side apps, services); public: SPA or native app.",
        )
        parser.add_argument(
            "--auth-method",
            dest="token_endpoint_auth_method",
            choices=[name for name, _label in client_auth.registry.choices()],
            help="How the client authenticates at the token endpoint (RFC 7591 token_endpoint_auth_method). "
            "Default: client_secret_basic for confidential clients (client_secret_post is accepted too), "
            "none for public ones.",
        )
        parser.add_argument(
            "--require-par",
            action="store_true",
            help="The client must push its authorization requests (RFC 9126, PAR).",
        )
        parser.add_argument(
            "--dpop",
            action="store_true",
            help="The client must send DPoP proofs (RFC 9449): its tokens are bound to its key.",
        )
        parser.add_argument(
            "--profile",
            dest="security_profile",
            choices=profiles.registry.names(),
            help="A security profile (docs/fapi.md). fapi2: the FAPI 2.0 Security Profile (PAR, S256 "
            "PKCE, --auth-method private_key_jwt with --jwks-file or --jwks-uri, DPoP, https redirect "
            "URIs, 60-second codes).",
        )
        parser.add_argument(
            "--require-signed-request-object",
            action="store_true",
            help="The client must send its authorization requests as request objects signed with its "
            "keys (RFC 9101; needs --jwks-file or --jwks-uri).",
        )
        parser.add_argument(
            "--jwks-file",
            help="private_key_jwt: a file holding the client's public keys as a JWK Set.",
        )
        parser.add_argument(
            "--jwks-uri",
            help="private_key_jwt: the https URL where the client publishes its JWK Set.",
        )
        parser.add_argument(
            "--grant-type",
            dest="grant_types",
            action="append",
            required=True,
            choices=GrantType.values,
            metavar="{" + ",".join(GrantType.values) + "}",
            help="A grant type the client may use. Repeat for several.",
        )
        parser.add_argument(
            "--redirect-uri",
            dest="redirect_uris",
            action="append",
            default=[],
            metavar="URI",
            help="An exact redirect URI (no wildcards, no fragment). Repeat for several.",
        )
        parser.add_argument(
            "--post-logout-redirect-uri",
            dest="post_logout_redirect_uris",
            action="append",
            default=[],
            metavar="URI",
            help="A URI allowed after RP-initiated logout. Repeat for several.",
        )
        parser.add_argument(
            "--allowed-origin",
            dest="allowed_origins",
            action="append",
            default=[],
            metavar="ORIGIN",
            help="Public clients: a browser app's origin (https://app.example.com) allowed to call the "
            "token, revocation and UserInfo endpoints (CORS). Repeat for several.",
        )
        parser.add_argument(
            "--scope",
            dest="scopes",
            action="append",
            default=[],
            metavar="SCOPE",
            help="A scope the client may request (must exist, see create_oauth_scope). Repeat for several: "
            "--scope openid --scope profile.",
        )
        parser.add_argument(
            "--audience",
            dest="audiences",
            action="append",
            default=[],
            metavar="URI",
            help="An API (RFC 8707 resource URI) the client's access tokens are for. Repeat for several.",
        )
        parser.add_argument(
            "--resource-identifier",
            dest="resource_identifiers",
            action="append",
            default=[],
            metavar="URI",
            help="If the client is an API: an audience it serves (it may introspect those tokens).",
        )
        parser.add_argument(
            "--skip-consent",
            action="store_true",
            help="Trusted first-party client: users are never shown the consent screen.",
        )
        parser.add_argument(
            "--token-exchange-impersonation",
            action="store_true",
            help="Token exchange: issue impersonation tokens (no act claim) instead of delegation "
            "tokens. Only for a fully trusted service.",
        )
        parser.add_argument(
            "--owner",
            metavar="USERNAME",
            help="The user who owns the client. For a client allowed the admin scope (ADMIN_API_SCOPE) "
            "this is required: the service account whose Django permissions its tokens use in the "
            "management API.",
        )
        parser.add_argument("--client-id", help="Use this client_id instead of a generated one.")
        parser.add_argument(
            "--client-secret",
            help="Use this secret instead of a generated one (confidential clients; at least "
            "CLIENT_SECRET_MIN_LENGTH characters).",
        )
        parser.add_argument(
            "--access-token-format",
            choices=["jwt", "opaque"],
            help="Override the site's ACCESS_TOKEN_FORMAT for this client.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object (and nothing else) on stdout."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"].strip()
        problems = [] if name else ["--name: must not be empty."]
        client_id = options["client_id"]
        if client_id is not None and not CLIENT_ID_RE.match(client_id):
            problems.append("--client-id: printable ASCII characters without spaces only (RFC 6749 A.1).")
        audiences = _unique(options["audiences"])
        resource_identifiers = _unique(options["resource_identifiers"])
        problems += _check_resource_uris("--audience", audiences)
        problems += _check_resource_uris("--resource-identifier", resource_identifiers)
        post_logout = _unique(options["post_logout_redirect_uris"])
        problems += self._check_post_logout_uris(post_logout)
        problems += _check_scope_lists(_unique(options["scopes"]))
        allowed_origins = clean_origins(options["allowed_origins"] or [])
        if allowed_origins and not may_list_origins(options["client_type"]):
            problems.append("--allowed-origin: only public clients may list origins (CORS).")
        jwks, jwks_problem = _read_jwks(options["jwks_file"])
        if jwks_problem:
            problems.append(jwks_problem)
        owner, owner_problems = self._owner(options["owner"], _unique(options["scopes"]))
        problems += owner_problems
        if problems:
            raise CommandError("\n".join(problems))

        fields: dict[str, Any] = {
            "user": owner,
            "skip_consent": options["skip_consent"],
            "token_exchange_impersonation": options["token_exchange_impersonation"],
            "audiences": audiences,
            "resource_identifiers": resource_identifiers,
            "post_logout_redirect_uris": " ".join(post_logout),
            "allowed_origins": " ".join(allowed_origins),
            "access_token_format": options["access_token_format"] or "",
            "token_endpoint_auth_method": options["token_endpoint_auth_method"] or "",
            "jwks": jwks,
            "jwks_uri": options["jwks_uri"] or "",
            "require_pushed_authorization_requests": options["require_par"],
            "require_dpop": options["dpop"],
            "security_profile": options["security_profile"] or "",
            "require_signed_request_object": options["require_signed_request_object"],
        }
        if client_id is not None:
            fields["client_id"] = client_id
        try:
            with transaction.atomic():
                client, secret = Client.objects.create_client(
                    name=name,
                    client_type=options["client_type"],
                    grant_types=options["grant_types"],
                    redirect_uris=_unique(options["redirect_uris"]),
                    scopes=_unique(options["scopes"]),
                    client_secret=options["client_secret"],
                    **fields,
                )
        except ValidationError as exc:
            raise CommandError(format_validation_error(exc)) from exc
        except IntegrityError as exc:
            # Lost a race with another creation of the same client_id (full_clean saw none).
            raise CommandError(f"--client-id: a client with client_id {client_id!r} already exists.") from exc

        data = describe(client, secret)
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2))
        else:
            self._print_summary(data)

    def _owner(self, username: str | None, scopes: list[str]) -> tuple[Any, list[str]]:
        """The owning user, and what is wrong with it. A client allowed the admin scope must have an
        active owner: the management API checks that service account's permissions (an ownerless
        admin client's tokens are refused there)."""
        if username is None:
            if settings.ADMIN_API_SCOPE in scopes:
                return None, [
                    f"--owner: a client allowed the admin scope {settings.ADMIN_API_SCOPE!r} needs an owner, "
                    "the service account whose permissions its tokens use in the management API "
                    "(docs/management-api.md)."
                ]
            return None, []
        user_model = get_user_model()
        owner = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
        if owner is None:
            return None, [f"--owner: no user {username!r}."]
        if not owner.is_active:
            return None, [f"--owner: the user {username!r} is not active."]
        return owner, []

    def _check_post_logout_uris(self, uris: list[str]) -> list[str]:
        """Same scheme rules as redirect URIs: a post-logout redirect is a redirect too."""
        validator = post_logout_uri_validator(Client().get_allowed_schemes())
        problems = []
        for uri in uris:
            try:
                validator(uri)
            except ValidationError as exc:
                problems.extend(f"--post-logout-redirect-uri: {m}" for m in exc.messages)
        return problems

    def _print_summary(self, data: dict[str, Any]) -> None:
        def row(label: str, value: Any) -> None:
            if isinstance(value, list):
                value = ", ".join(value) if value else "-"
            self.stdout.write(f"  {label:<15} {value}")

        self.stdout.write(self.style.SUCCESS(f"Created {data['client_type']} client {data['name']!r}."))
        row("client_id", data["client_id"])
        if data["client_secret"] is not None:
            row("client_secret", data["client_secret"])
        row("grant types", data["grant_types"])
        row("redirect URIs", data["redirect_uris"])
        if data["allowed_origins"]:
            row("origins (CORS)", data["allowed_origins"])
        row("scopes", data["scopes"])
        if data["owner"] is not None:
            row("owner", data["owner"])
        if data["audiences"]:
            row("audiences", data["audiences"])
        if data["skip_consent"]:
            row("consent", "skipped (trusted first-party client)")
        if data["security_profile"]:
            row("profile", data["security_profile"])
        if data["client_secret"] is not None:
            self.stdout.write(
                self.style.WARNING(
                    "Store the client secret now: only a hash is kept, it cannot be shown again."
                )
            )


def _read_jwks(path: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """The JWK Set in a file, or why it cannot be read (Client.clean then checks the keys)."""
    if not path:
        return None, None
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle), None
    except OSError as exc:
        return None, f"--jwks-file: cannot read {path}: {exc.strerror}."
    except ValueError:
        return None, f"--jwks-file: {path} is not JSON."


def describe(client: Client, secret: str | None) -> dict[str, Any]:
    """The JSON document the command prints (stable keys; scripts parse it)."""
    return {
        "client_id": client.client_id,
        "client_secret": secret,
        "name": client.name,
        "client_type": client.client_type,
        "grant_types": list(client.grant_types),
        "redirect_uris": client.redirect_uri_list,
        "post_logout_redirect_uris": client.post_logout_redirect_uris.split(),
        "allowed_origins": client.allowed_origins.split(),
        "scopes": sorted(client.allowed_scopes.values_list("name", flat=True)),
        "audiences": list(client.audiences),
        "resource_identifiers": list(client.resource_identifiers),
        "skip_consent": client.skip_consent,
        "token_exchange_impersonation": client.token_exchange_impersonation,
        "access_token_format": client.access_token_format or None,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "jwks_uri": client.jwks_uri or None,
        "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
        "require_dpop": client.require_dpop,
        "security_profile": client.security_profile or None,
        "require_signed_request_object": client.require_signed_request_object,
        "owner": client.user.get_username() if client.user_id else None,
    }
