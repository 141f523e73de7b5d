"""The token request's state (request_state.py) crosses from Django's request to oauthlib's, and only
the server can put it there."""

from django.test import RequestFactory
from oauth2_provider.oauth2_backends import OAuthLibCore
from oauthlib.common import Request as OAuthlibRequest

from oauth_server.request_state import ENVIRON_KEY, TokenRequestState, state_of


def _oauthlib_request(django_request) -> OAuthlibRequest:
    """The oauthlib request DOT builds for the token endpoint (OAuthLibCore.create_token_response)."""
    uri, method, body, headers = OAuthLibCore()._extract_params(django_request)
    return OAuthlibRequest(uri, http_method=method, body=body, headers=headers)


def test_the_django_request_and_the_oauthlib_request_share_one_state():
    django_request = RequestFactory().post("/oauth/token/", {"grant_type": "client_credentials"})
    state = state_of(django_request)
    oauthlib_request = _oauthlib_request(django_request)
    assert state_of(oauthlib_request) is state
    state_of(oauthlib_request).issued = True
    assert state_of(django_request).issued is True


def test_a_client_header_cannot_supply_the_state():
    # Headers arrive as HTTP_...; even a value under the exact key is not a TokenRequestState.
    django_request = RequestFactory().post("/oauth/token/", HTTP_OAUTH_SERVER_TOKEN_REQUEST_STATE="forged")
    oauthlib_request = _oauthlib_request(django_request)
    oauthlib_request.headers[ENVIRON_KEY] = "forged"
    state = state_of(oauthlib_request)
    assert isinstance(state, TokenRequestState) and not state.issued


def test_a_request_no_token_view_began_gets_its_own_state_on_first_use():
    oauthlib_request = OAuthlibRequest("https://testserver/oauth/authorize/")
    state = state_of(oauthlib_request)
    assert state_of(oauthlib_request) is state
    assert state_of(OAuthlibRequest("https://testserver/oauth/authorize/")) is not state
    assert "TokenRequestState" in repr(state) and state.grant_resource == []
