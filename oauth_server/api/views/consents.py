"""``/users/<id>/consents/``: list, read and revoke a user's consents."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_view
from rest_framework import mixins, viewsets

from ...flows.consents import revoke_consent
from ...models import Consent
from ..permissions import permission_name
from ..schema import admin_schema, error_responses
from ..serializers import ConsentSerializer
from .base import USER_ID, AdminAPIMixin, model_permissions, parse_bool, user_or_404

CLIENT_ID = OpenApiParameter("client_id", OpenApiTypes.STR, OpenApiParameter.PATH)


@extend_schema_view(
    list=admin_schema(
        summary=_("List a user's consents"),
        parameters=[
            USER_ID,
            OpenApiParameter("active", bool, description=_("Only active (or revoked) ones.")),
        ],
        responses={200: ConsentSerializer(many=True), **error_responses(400, 401, 403, 404)},
    ),
    retrieve=admin_schema(
        summary=_("Read a user's consent to a client"),
        parameters=[USER_ID, CLIENT_ID],
        responses={200: ConsentSerializer, **error_responses(401, 403, 404)},
    ),
    destroy=admin_schema(
        summary=_("Revoke a user's consent to a client"),
        description=_(
            "The user is asked again next time, and every token and unused code the client holds for "
            "the user is revoked. Revoking a revoked consent changes nothing."
        ),
        parameters=[USER_ID, CLIENT_ID],
        responses={204: None, **error_responses(401, 403, 404)},
    ),
)
class UserConsentViewSet(
    AdminAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ConsentSerializer
    lookup_field = "client__client_id"
    lookup_url_kwarg = "client_id"
    # Revoking keeps the row (revoked_at): change or delete, as the admin's revoke action.
    required_permissions = {
        **model_permissions(Consent, list="view", retrieve="view"),
        "destroy": [(permission_name(Consent, "change"), permission_name(Consent, "delete"))],
    }

    def get_queryset(self) -> QuerySet:
        user = user_or_404(self.kwargs["user_id"])
        queryset = (
            Consent.objects.filter(user=user).select_related("client", "user").order_by("-updated", "-id")
        )
        if (active := self.request.query_params.get("active")) and self.action == "list":
            queryset = queryset.filter(revoked_at__isnull=parse_bool("active", active))
        return queryset

    def perform_destroy(self, consent: Consent) -> None:
        revoke_consent(consent)  # revoking a revoked consent changes nothing
