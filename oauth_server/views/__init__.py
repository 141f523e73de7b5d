"""HTTP views. DOT's token, revocation and metadata views are used as they are; ours live here."""

from .authorize import AuthorizationView

__all__ = ["AuthorizationView"]
