"""The demo's URLs plus one small DRF endpoint served twice: behind the resource-server kit's JWT
check (the reports API's authentication and scope) and open, so the benchmark measures what the
check costs (issue 15: protected at 75% or more of unprotected, with zero queries)."""

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from example_project.demo.api import DemoAPIView, ReportsAuthentication
from example_project.urls import urlpatterns as demo_urlpatterns
from oauth_server.resource.drf import HasScope


class ProtectedPingView(DemoAPIView):
    """A JSON answer that needs a reports-service token (audience, signature, expiry, scope)."""

    authentication_classes = [ReportsAuthentication]
    permission_classes = [HasScope("reports:read")]

    def get(self, request: Request) -> Response:
        return Response({"ok": True, "client_id": getattr(request.auth, "client_id", None)})


class OpenPingView(ProtectedPingView):
    """The same view with no authentication: the baseline."""

    authentication_classes = []
    permission_classes = [AllowAny]


urlpatterns = [
    path("bench/api/protected/", ProtectedPingView.as_view()),
    path("bench/api/open/", OpenPingView.as_view()),
    *demo_urlpatterns,
]
