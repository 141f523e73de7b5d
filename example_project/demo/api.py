"""The demo's two resource servers, protected with the resource-server kit (docs/resource-server-kit.md).

- Files API, ``/api/files/``: each user's own files. Tokens for the files API's audience (the
  ``AUDIENCE`` setting), ``files:read`` for GET, ``files:write`` for POST and DELETE; the owner is
  the user behind the token's ``sub``. Another user's file is a 404, as if it did not exist.
- Reports API, ``/api/reports/``: for services (client credentials) holding ``reports:read``;
  its tokens have the reports API's own audience, so this view overrides the setting.

The token check itself makes no database query: keys come from the in-process JWKS cache and the
revocation answer from the cache the demo keeps current (signals.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings as django_settings
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from oauth_server.resource import InvalidToken, user_for_token
from oauth_server.resource.drf import (
    BearerAPIException,
    BearerTokenAuthentication,
    HasScope,
    ReadWriteScopes,
    exception_handler,
)

from . import site
from .models import CONTENT_MAX_LENGTH, NAME_MAX_LENGTH, File

REPORT_DAYS = 7
# DRF's own errors (unreadable body, unknown file, wrong method...) by status.
ERROR_CODES = {
    403: "access_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


class FileSerializer(serializers.ModelSerializer):
    name = serializers.CharField(max_length=NAME_MAX_LENGTH, trim_whitespace=True)
    content = serializers.CharField(
        max_length=CONTENT_MAX_LENGTH, allow_blank=True, required=False, default="", trim_whitespace=False
    )
    url = serializers.SerializerMethodField()

    class Meta:
        model = File
        fields = ["id", "name", "content", "created", "url"]
        read_only_fields = ["id", "created", "url"]

    def get_url(self, obj: File) -> str:
        request = self.context.get("request")
        path = reverse("api-file-detail", args=[obj.pk])
        return request.build_absolute_uri(path) if request is not None else path


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error as ``{"error", "error_description"}``, the shape of the kit's RFC 6750 errors.

    The kit's own errors already have it (and their WWW-Authenticate header); DRF's (unreadable
    JSON, 404, 405, 415) are reshaped, keeping their status and headers.
    """
    response = exception_handler(exc, context)  # the kit's: DRF's, plus DPoP-Nonce and no-store
    if response is None or isinstance(exc, BearerAPIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "error": "invalid_request",
            "error_description": _("The request body is not a valid file."),
            "fields": response.data,
        }
        return response
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
    error = ERROR_CODES.get(response.status_code, "invalid_request")
    response.data = {"error": error, "error_description": str(detail)}
    return response


class DemoAPIView(APIView):
    """JSON only (no browsable API: a browser without a token sees the 401 an API client sees)."""

    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser, FormParser]

    def get_exception_handler(self):
        return api_exception_handler


# --- files API --------------------------------------------------------------------------------------
class FilesAPIView(DemoAPIView):
    # The site's AUDIENCE setting is the files API's identifier.
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [ReadWriteScopes(read="files:read", write="files:write")]

    def owner(self, request: Request):
        """The user the token speaks for; a service's own token (client credentials) has none."""
        user = user_for_token(request.auth)
        if user is not None:
            return user
        if request.auth.sub == request.auth.client_id:
            raise exceptions.PermissionDenied(_("The files API serves users' files: use a user's token."))
        # The user is gone or deactivated: the token no longer speaks for anyone.
        raise BearerAPIException(InvalidToken(_("The access token's user is no longer active.")))

    def files(self, request: Request):
        return File.objects.filter(owner=self.owner(request))


class FileListView(FilesAPIView):
    def get(self, request: Request) -> Response:
        owner = self.owner(request)
        files = File.objects.filter(owner=owner)
        body: dict[str, Any] = {"files": FileSerializer(files, many=True, context={"request": request}).data}
        if request.auth.is_delegated:
            # RFC 8693: a service called with a token it got by token exchange: who acts for whom.
            body["delegation"] = {
                "on_behalf_of": owner.get_username(),
                "actor": request.auth.actor,
                "actor_chain": list(request.auth.actor_chain),
                # The token's act claim as the API received it (RFC 8693 4.1).
                "act": request.auth.act,
            }
        return Response(body)

    def post(self, request: Request) -> Response:
        owner = self.owner(request)
        serializer = FileSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        serializer.save(owner=owner)
        data = serializer.data
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": data["url"]})


class FileDetailView(FilesAPIView):
    def get(self, request: Request, pk: int) -> Response:
        file = get_object_or_404(self.files(request), pk=pk)
        return Response(FileSerializer(file, context={"request": request}).data)

    def delete(self, request: Request, pk: int) -> Response:
        file = get_object_or_404(self.files(request), pk=pk)
        file.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- reports API ------------------------------------------------------------------------------------
class ReportsAuthentication(BearerTokenAuthentication):
    """Tokens for the reports API, not the site's default (files) audience. Computed per request
    from ``DEMO_BASE_URL``, so ``manage.py demo <address>`` moves it with the site."""

    def get_audience(self, request) -> str:
        return site.reports_api_url(django_settings.DEMO_BASE_URL)


class ReportsView(DemoAPIView):
    authentication_classes = [ReportsAuthentication]
    permission_classes = [HasScope("reports:read")]

    def get(self, request: Request) -> Response:
        """Files created per day over the last week, across all users: numbers only, no names."""
        today = timezone.now().date()
        since = today - timedelta(days=REPORT_DAYS - 1)
        counts = dict(
            File.objects.filter(created__date__gte=since)
            .annotate(day=TruncDate("created"))
            .order_by()
            .values("day")
            .annotate(n=Count("id"))
            .values_list("day", "n")
        )
        days = [since + timedelta(days=i) for i in range(REPORT_DAYS)]
        rows = [{"date": day.isoformat(), "files_created": counts.get(day, 0)} for day in days]
        return Response(
            {
                "report": "files-created-per-day",
                "generated_at": timezone.now().isoformat(),
                "requested_by": request.auth.client_id,
                "period": {"from": since.isoformat(), "to": today.isoformat()},
                "rows": rows,
                "total": sum(row["files_created"] for row in rows),
            }
        )
