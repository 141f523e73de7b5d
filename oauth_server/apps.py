from django.apps import AppConfig
from django.conf import settings as django_settings
from django.utils.translation import gettext_lazy as _

from .conf import SWAPPED_MODELS, install_dot_defaults

# Django reads swappable-model settings while importing models, and DOT reads its settings while
# importing its models and admin, so the app wires DOT here, when the registry imports app modules
# (before any models module and before admin autodiscovery). A site that sets one of these itself
# keeps its value; checks.py reports a swap that does not point at our models.
for _name, _model in SWAPPED_MODELS.items():
    if not hasattr(django_settings, _name):
        setattr(django_settings, _name, _model)
install_dot_defaults()


class OAuthServerConfig(AppConfig):
    name = "oauth_server"
    label = "oauth_server"
    verbose_name = _("OAuth server")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, receivers  # noqa: F401  (registers checks and connects receivers)
