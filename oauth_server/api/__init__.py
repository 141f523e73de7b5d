"""The management REST API (DRF): clients, scopes, and users' consents and tokens.

It is privileged and never mounted by ``oauth_server.urls``; a site opts in with
``path("oauth/api/", include("oauth_server.api.urls"))``. See docs/management-api.md.
"""
