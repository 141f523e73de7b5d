"""HTTP views: one module per endpoint family. DOT's token, revocation, introspection, userinfo and
logout views are mounted as they are (urls.py) unless a module here subclasses them."""

from .authorize import AuthorizationView
from .discovery import AuthorizationServerMetadataView, JwksView, OpenIDConfigurationView

__all__ = ["AuthorizationServerMetadataView", "AuthorizationView", "JwksView", "OpenIDConfigurationView"]
