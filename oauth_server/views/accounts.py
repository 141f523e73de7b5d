"""Sign-out for sites that take their sign-in pages from the app (``oauth_server.accounts_urls``).

Sign-in is ``oauth_server.views.login.LoginView``; this module only adds Django's ``LogoutView``
with a page of the app's own, so a site without templates of its own gets a styled answer.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views


class LogoutView(auth_views.LogoutView):
    """Django's LogoutView (POST only), rendering ``oauth_server/logged_out.html``.

    The app's page comes before Django's ``registration/logged_out.html`` because the admin ships
    one of those (admin-styled, linking to the admin): a site that mounts the app's account pages
    wants the app's look. Override ``oauth_server/logged_out.html`` to change it, or set
    ``LOGOUT_REDIRECT_URL`` to send users elsewhere.
    """

    template_name = "oauth_server/logged_out.html"

    def get_template_names(self) -> list[str]:
        return [*super().get_template_names(), "registration/logged_out.html"]
