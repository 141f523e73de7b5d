"""The resource-server kit's per-view audience: one site serving several APIs, each with its own
identifier (docs/resource-server-kit.md, "One site, several APIs"). Tokens come from the real token
endpoint; the protected views are defined here."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import JsonResponse
from django.test import Client as BrowserClient
from django.urls import include, path
from django.views import View
from rest_framework.response import Response
from rest_framework.views import APIView

from oauth_server.resource import (
    InvalidToken,
    RequireScopesMixin,
    jwks,
    require_scopes,
    revocation,
    validate_access_token,
)
from oauth_server.resource.drf import BearerTokenAuthentication, HasScope
from oauth_server.resource.tokens import check_claims
from tests.factories import MachineClientFactory
from tests.resource_urls import API, ISSUER, RS_SETTINGS, client_credentials_token

REPORTS = "https://reports.example.com/"
OTHER = "https://other.example.com/"
pytestmark = pytest.mark.urls(__name__)


# --- views with their own audience ------------------------------------------------------------------
def _answer(request):
    claims = request.oauth_token
    return JsonResponse({"aud": list(claims.aud), "client_id": claims.client_id})


@require_scopes("reports:read", audience=REPORTS)
def reports_decorated(request):
    return _answer(request)


@require_scopes(audience=[REPORTS, OTHER])
def reports_or_other(request):
    return _answer(request)


_dynamic = {"audience": REPORTS}


@require_scopes(audience=lambda request: _dynamic["audience"])
def dynamic_audience(request):
    return _answer(request)


@require_scopes("reports:read")
def site_audience(request):
    return _answer(request)


class ReportsMixinView(RequireScopesMixin, View):
    required_scopes = ["reports:read"]
    audience = REPORTS

    def get(self, request):
        return _answer(request)


class ComputedMixinView(RequireScopesMixin, View):
    def get_audience(self, request):
        return request.GET.get("api") == "reports" and REPORTS or None

    def get(self, request):
        return _answer(request)


class ReportsDRF(APIView):
    authentication_classes = [BearerTokenAuthentication.with_audience(REPORTS)]
    permission_classes = [HasScope("reports:read")]

    def get(self, request):
        return Response({"aud": list(request.auth.aud), "user": request.user.username})


class ComputedAuthentication(BearerTokenAuthentication):
    def get_audience(self, request):
        return OTHER


class OtherDRF(APIView):
    authentication_classes = [ComputedAuthentication]

    def get(self, request):
        return Response({"aud": list(request.auth.aud)})


class SiteDRF(APIView):
    authentication_classes = [BearerTokenAuthentication]

    def get(self, request):
        return Response({"aud": list(request.auth.aud)})


urlpatterns = [
    path("oauth/", include("oauth_server.urls")),
    path("reports/decorated/", reports_decorated),
    path("reports/either/", reports_or_other),
    path("reports/dynamic/", dynamic_audience),
    path("site/", site_audience),
    path("reports/mixin/", ReportsMixinView.as_view()),
    path("computed/mixin/", ComputedMixinView.as_view()),
    path("reports/drf/", ReportsDRF.as_view()),
    path("other/drf/", OtherDRF.as_view()),
    path("site/drf/", SiteDRF.as_view()),
]


# --- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def rs(settings):
    settings.OAUTH_RESOURCE_SERVER = dict(RS_SETTINGS)
    cache.clear()
    yield settings
    jwks.reset()
    cache.clear()


def _token(client, audience: str, scope: str = "reports:read") -> str:
    machine = MachineClientFactory(scopes=["reports:read"], audiences=[audience])
    return client_credentials_token(client, machine, scope)


@pytest.fixture
def reports_token(client, db):
    return _token(client, REPORTS)


@pytest.fixture
def site_token(client, db):
    return _token(client, API)


@pytest.fixture
def other_token(client, db):
    return _token(client, OTHER)


def get(url: str, token: str):
    return BrowserClient().get(url, HTTP_AUTHORIZATION=f"Bearer {token}")


def assert_wrong_audience(response):
    assert response.status_code == 401, response.content
    body = json.loads(response.content)
    assert body["error"] == "invalid_token" and "(aud)" in body["error_description"]
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


# --- validate_access_token ------------------------------------------------------------------------------
def test_the_override_replaces_the_setting_it_does_not_add_to_it(reports_token, site_token):
    assert validate_access_token(reports_token, audience=REPORTS).aud == (REPORTS,)
    with pytest.raises(InvalidToken, match="aud"):
        validate_access_token(site_token, audience=REPORTS)
    # Without an override the setting decides, as before.
    assert validate_access_token(site_token).aud == (API,)
    with pytest.raises(InvalidToken, match="aud"):
        validate_access_token(reports_token)


def test_a_list_of_audiences_accepts_any_of_them(reports_token, other_token, site_token):
    for token in (reports_token, other_token):
        validate_access_token(token, audience=[REPORTS, OTHER])
    validate_access_token(other_token, audience=(OTHER,))
    with pytest.raises(InvalidToken):
        validate_access_token(site_token, audience=[REPORTS, OTHER])


@pytest.mark.parametrize("bad", ["", [], [""], [REPORTS, 3], b"https://x/", 42, {"aud": REPORTS}])
def test_a_malformed_override_is_a_configuration_error_not_accept_all(reports_token, bad):
    with pytest.raises(ImproperlyConfigured):
        validate_access_token(reports_token, audience=bad)


def test_per_view_audiences_work_without_the_audience_setting(rs, reports_token):
    rs.OAUTH_RESOURCE_SERVER = {"ISSUER": ISSUER, "JWKS_SOURCE": "local"}
    assert validate_access_token(reports_token, audience=REPORTS).client_id
    with pytest.raises(ImproperlyConfigured, match="AUDIENCE"):
        validate_access_token(reports_token)  # a view without its own audience still needs the setting


def test_introspected_claims_use_the_override_too():
    answer = {
        "active": True,
        "iss": ISSUER,
        "aud": REPORTS,
        "exp": 4_000_000_000,
        "sub": "s",
        "client_id": "c",
    }
    assert check_claims(answer, source="introspection", audience=REPORTS).aud == (REPORTS,)
    with pytest.raises(InvalidToken, match="aud"):
        check_claims(answer, source="introspection")


# --- plain Django views ---------------------------------------------------------------------------------
def test_decorator_with_audience(reports_token, site_token):
    response = get("/reports/decorated/", reports_token)
    assert response.status_code == 200, response.content
    assert response.json()["aud"] == [REPORTS]
    assert_wrong_audience(get("/reports/decorated/", site_token))
    # The site-wide view keeps the setting: the reports token is not for it.
    assert_wrong_audience(get("/site/", reports_token))
    assert get("/site/", site_token).status_code == 200


def test_decorator_with_a_list_of_audiences(reports_token, other_token, site_token):
    assert get("/reports/either/", reports_token).status_code == 200
    assert get("/reports/either/", other_token).status_code == 200
    assert_wrong_audience(get("/reports/either/", site_token))


def test_decorator_with_a_callable_is_asked_on_every_request(reports_token, other_token):
    try:
        assert get("/reports/dynamic/", reports_token).status_code == 200
        _dynamic["audience"] = OTHER
        assert_wrong_audience(get("/reports/dynamic/", reports_token))
        assert get("/reports/dynamic/", other_token).status_code == 200
    finally:
        _dynamic["audience"] = REPORTS


def test_a_bad_fixed_audience_fails_when_the_view_is_defined():
    with pytest.raises(ImproperlyConfigured):
        require_scopes("x", audience="")
    with pytest.raises(ImproperlyConfigured):
        require_scopes(audience=[1])

    class Bad(RequireScopesMixin, View):
        audience = []

    with pytest.raises(ImproperlyConfigured):
        Bad.as_view()


def test_bare_decorator_keeps_the_setting(rf, site_token, reports_token):
    @require_scopes
    def view(request):
        return JsonResponse({"aud": list(request.oauth_token.aud)})

    assert view(rf.get("/", HTTP_AUTHORIZATION=f"Bearer {site_token}")).status_code == 200
    assert_wrong_audience(view(rf.get("/", HTTP_AUTHORIZATION=f"Bearer {reports_token}")))


def test_mixin_audience_attribute_and_get_audience(reports_token, site_token):
    assert get("/reports/mixin/", reports_token).status_code == 200
    assert_wrong_audience(get("/reports/mixin/", site_token))
    # get_audience: None falls back to the setting.
    assert get("/computed/mixin/", site_token).status_code == 200
    assert_wrong_audience(get("/computed/mixin/", reports_token))
    assert get("/computed/mixin/?api=reports", reports_token).status_code == 200
    assert_wrong_audience(get("/computed/mixin/?api=reports", site_token))


def test_mixin_audience_from_as_view_kwargs(rf, reports_token, site_token):
    view = ReportsMixinView.as_view(audience=OTHER)
    request = rf.get("/", HTTP_AUTHORIZATION=f"Bearer {reports_token}")
    assert view(request).status_code == 401
    with pytest.raises(ImproperlyConfigured):
        ReportsMixinView.as_view(audience=[""])


# --- DRF -------------------------------------------------------------------------------------------------
def test_drf_with_audience(reports_token, site_token):
    response = get("/reports/drf/", reports_token)
    assert response.status_code == 200, response.content
    assert response.json()["aud"] == [REPORTS]
    denied = get("/reports/drf/", site_token)
    assert_wrong_audience(denied)
    # The site-wide class is untouched by the subclass.
    assert get("/site/drf/", site_token).status_code == 200
    assert_wrong_audience(get("/site/drf/", reports_token))


def test_drf_get_audience_override(other_token, reports_token):
    assert get("/other/drf/", other_token).json() == {"aud": [OTHER]}
    assert_wrong_audience(get("/other/drf/", reports_token))


def test_with_audience_makes_a_named_subclass_and_validates_now():
    cls = BearerTokenAuthentication.with_audience([OTHER, REPORTS])
    assert issubclass(cls, BearerTokenAuthentication) and cls is not BearerTokenAuthentication
    assert set(cls.audience) == {OTHER, REPORTS} and "with_audience" in cls.__name__
    assert BearerTokenAuthentication.audience is None
    assert BearerTokenAuthentication.with_audience(REPORTS).audience == REPORTS
    for bad in ("", [], [None]):
        with pytest.raises(ImproperlyConfigured):
            BearerTokenAuthentication.with_audience(bad)


def test_a_missing_token_still_gets_the_bare_challenge():
    response = BrowserClient().get("/reports/drf/")
    assert response.status_code == 401
    assert (
        response["WWW-Authenticate"] == 'Bearer realm="api", DPoP realm="api", algs="ES256 RS256 PS256 EdDSA"'
    )


# --- revocation.remember: a site that issues the tokens tells its APIs' cache ------------------------------
@pytest.mark.django_db
def test_remember_answers_revocation_checks_without_a_query(rs, reports_token, django_assert_num_queries):
    rs.OAUTH_RESOURCE_SERVER = {**RS_SETTINGS, "REVOCATION_CHECK": "database"}
    claims = validate_access_token(reports_token, audience=REPORTS)  # warms the key cache, asks the DB
    revocation.remember(claims.jti, revoked=True, exp=claims.exp)
    with django_assert_num_queries(0), pytest.raises(InvalidToken, match="revoked"):
        validate_access_token(reports_token, audience=REPORTS)
    revocation.remember(claims.jti, revoked=False, exp=claims.exp)
    with django_assert_num_queries(0):
        validate_access_token(reports_token, audience=REPORTS)


def test_remember_ignores_expired_tokens_and_empty_ids(rs):
    revocation.remember("", revoked=True, exp=4_000_000_000)
    revocation.remember("gone", revoked=True, exp=1)
    assert cache.get(revocation._key("gone")) is None
