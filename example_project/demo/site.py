"""Everything the demo derives from its base URL: the pinned issuer, the APIs' audiences and metadata.

Importable from ``settings.py`` (no Django models here). One URL decides them all, so the
authorization server, the files and reports APIs and ``seed_demo``'s client registrations agree:
``DEMO_BASE_URL`` in the environment (default ``http://127.0.0.1:8000``), or ``manage.py demo``'s
address, which applies ``settings_for()`` around the server it starts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
# Where example_project/urls.py mounts oauth_server: the issuer is the mount point's URL.
ISSUER_PATH = "/oauth"
# Paths (under the base URL) of the two resource servers; each is also the API's identifier
# (the audience of the tokens issued for it).
FILES_API_PATH = "/api/files/"
REPORTS_API_PATH = "/api/reports/"
# The report builder (example_project/demo/report_builder.py): a service a user calls with their own
# token, which reads that user's files for them through token exchange (RFC 8693, docs/token-exchange.md).
MY_REPORT_PATH = "/api/my-report/"
# The demo MCP server (example_project/demo/mcp_server.py, docs/mcp.md): its URL is its identifier.
MCP_PATH = "/mcp/"
# Scopes: every MCP request needs MCP_SCOPE; a tool may need more (mcp_server.TOOL_SCOPES).
MCP_SCOPE = "mcp:tools"


def normalize_base_url(base_url: str) -> str:
    """``scheme://host[:port]`` without a trailing slash; the demo is served at the site root."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"The base URL must be http(s)://host[:port], not {base_url!r}.")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"The base URL must have no path, query or fragment: {base_url!r}.")
    return f"{parts.scheme}://{parts.netloc}"


def settings_for(
    base_url: str, oauth2_provider: dict[str, Any] | None = None, oauth_server: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The Django settings that depend on the base URL.

    The issuer is pinned (``OIDC_ISS_ENDPOINT``) rather than taken from each request's host: the
    APIs compare ``iss`` exactly, so a token obtained through http://localhost:8000 must carry the
    same issuer as one obtained through http://127.0.0.1:8000. Production sites pin it too
    (docs/settings.md).
    """
    base_url = normalize_base_url(base_url)
    issuer = base_url + ISSUER_PATH
    return {
        "DEMO_BASE_URL": base_url,
        "OAUTH2_PROVIDER": {**(oauth2_provider or {}), "OIDC_ISS_ENDPOINT": issuer},
        # MCP clients meet the demo for the first time and register themselves (docs/mcp.md): open
        # dynamic registration (rate-limited) and metadata documents; a self-registered client may
        # ask tokens for the MCP server (RFC 8707 resource). A production site chooses its policy.
        "OAUTH_SERVER": {
            **(oauth_server or {}),
            "REGISTRATION_POLICY": "open",
            "SELF_REGISTERED_AUDIENCES": [base_url + MCP_PATH],
        },
        "OAUTH_RESOURCE_SERVER": {
            "ISSUER": issuer,
            # The site's default API: the files API. The reports API names its own audience
            # (example_project/demo/api.py), the kit's per-view override.
            "AUDIENCE": base_url + FILES_API_PATH,
            # The APIs live in the authorization server's own site: keys are read in-process
            # (cached: no query per request) ...
            "JWKS_SOURCE": "local",
            # ... and a revoked token is refused at once: the demo keeps the kit's revocation
            # cache up to date when tokens are issued and deleted (example_project/demo/signals.py),
            # so checking costs no query either. The database is asked only on a cache miss.
            "REVOCATION_CHECK": "database",
            # RFC 9728 metadata of each API (/.well-known/oauth-protected-resource/<path>), named in
            # every refusal's WWW-Authenticate; authorization_servers defaults to [ISSUER].
            "PROTECTED_RESOURCES": {
                base_url + FILES_API_PATH: {
                    "resource_name": "Demo files API",
                    "scopes_supported": ["files:read", "files:write"],
                },
                base_url + REPORTS_API_PATH: {
                    "resource_name": "Demo reports API",
                    "scopes_supported": ["reports:read"],
                },
                base_url + MY_REPORT_PATH: {
                    "resource_name": "Demo report builder (your files report)",
                    "scopes_supported": ["files:read"],
                },
                base_url + MCP_PATH: {
                    "resource_name": "Demo MCP server",
                    "scopes_supported": [MCP_SCOPE, "files:read"],
                },
            },
        },
    }


def files_api_url(base_url: str) -> str:
    return normalize_base_url(base_url) + FILES_API_PATH


def reports_api_url(base_url: str) -> str:
    return normalize_base_url(base_url) + REPORTS_API_PATH


def my_report_url(base_url: str) -> str:
    return normalize_base_url(base_url) + MY_REPORT_PATH


def mcp_url(base_url: str) -> str:
    return normalize_base_url(base_url) + MCP_PATH
