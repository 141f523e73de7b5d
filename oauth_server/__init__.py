"""oauth_server: a pluggable OAuth 2.0 / OpenID Connect authorization server for Django sites."""

__version__ = "0.1.0"
