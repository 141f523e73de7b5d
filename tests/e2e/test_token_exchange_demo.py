"""Token exchange (RFC 8693) against the running demo (``demo_site``), over real HTTP.

The demo CLI signs alice in with the device grant for the report builder (``cli report``); the
report builder exchanges her token at the token endpoint for a files-API token and the files API
shows who acts for whom (``act``). Then, as the report builder with its seeded credentials: a
narrower token is fine, a wider one or another API is refused; and revoking alice's token at
/oauth/revoke ends the exchanged one (introspection, files API).
"""

from __future__ import annotations

import json
import re

import pytest
import requests

from example_project.demo import cli
from tests.e2e.test_device_demo import decide

live = pytest.mark.live
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def report_builder(site) -> tuple[str, str]:
    client = site.client("report-builder")
    return client["client_id"], client["client_secret"]


def exchange(site, subject_token: str, *, auth=None, **extra: str) -> requests.Response:
    data = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "resource": site.base_url + "/api/files/",
        "scope": "files:read",
        **extra,
    }
    return http().post(site.endpoints["token"], data=data, auth=auth or report_builder(site), timeout=10)


def introspect(site, token: str) -> dict:
    files_api = site.client("files-api")
    response = http().post(
        site.endpoints["introspection"],
        data={"token": token},
        auth=(files_api["client_id"], files_api["client_secret"]),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def bearer(site, path: str, token: str) -> requests.Response:
    return http().get(site.base_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def signed_in_for_reports(site) -> tuple[dict, dict]:
    """``cli.report``: the device grant (alice approves as soon as the link is printed), then the
    report builder's answer; returns (the CLI's token, the report)."""

    def say(line: str) -> None:
        match = re.search(r"open (\S+\?user_code=[A-Z-]+)", line)
        if match:
            decide(site, {"verification_uri_complete": match.group(1), "user_code": match.group(1)[-9:]})

    return cli.report(site.base_url, say=say, sleep=lambda seconds: None)


@live
def test_the_cli_gets_a_report_made_for_alice_through_an_exchanged_token(demo_site):
    token, report = signed_in_for_reports(demo_site)
    assert report["for"] == "alice" and report["prepared_by"] == "report-builder"
    assert report["files_api_saw"]["act"] == {"sub": "report-builder"}
    assert report["files_api_saw"]["actor_chain"] == ["report-builder"]
    assert report["exchange"]["scope"] == "files:read"
    assert report["exchange"]["resource"] == demo_site.base_url + "/api/files/"
    seeded = [f for f in demo_site.data["files"] if f["owner"] == "alice"]
    assert report["files"] >= len(seeded)  # other tests on this site may have added some of hers
    # The service never hands out the exchanged token (nor any other JWT).
    assert not re.search(r"eyJ[\w-]+\.[\w-]+\.", json.dumps(report))
    # The CLI's token is for the report builder only: the files API refuses it.
    refused = bearer(demo_site, "/api/files/", token["access_token"])
    assert refused.status_code == 401 and "invalid_token" in refused.headers["WWW-Authenticate"]


@live
def test_downscoping_only_and_revocation_ends_the_exchanged_token(demo_site):
    token, _report = signed_in_for_reports(demo_site)
    user_token = token["access_token"]

    # As the report builder: files:read for the files API, with act.
    exchanged = exchange(demo_site, user_token)
    assert exchanged.status_code == 200, exchanged.text
    body = exchanged.json()
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE and body["scope"] == "files:read"
    assert "refresh_token" not in body
    listed = bearer(demo_site, "/api/files/", body["access_token"])
    assert listed.status_code == 200, listed.text
    assert listed.json()["delegation"]["act"] == {"sub": "report-builder"}
    seen = introspect(demo_site, body["access_token"])
    assert seen["active"] is True and seen["act"] == {"sub": "report-builder"}
    assert seen["client_id"] == "report-builder" and seen["scope"] == "files:read"

    # Never wider: a scope alice's token lacks or the report builder may not hold, another API.
    for extra, error in (
        ({"scope": "files:write"}, "invalid_scope"),
        ({"scope": "files:read files:write"}, "invalid_scope"),
        ({"resource": demo_site.base_url + "/api/reports/"}, "invalid_target"),
    ):
        refused = exchange(demo_site, user_token, **extra)
        assert refused.status_code == 400 and refused.json()["error"] == error, (extra, refused.text)
    # reports-service (client credentials only) may not exchange at all.
    reports = demo_site.client("reports-service")
    refused = exchange(demo_site, user_token, auth=(reports["client_id"], reports["client_secret"]))
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client", refused.text

    # The CLI revokes its token (RFC 7009, public client): the exchanged one goes with it.
    revoked = http().post(
        demo_site.endpoints["revocation"],
        data={"token": user_token, "token_type_hint": "access_token", "client_id": cli.CLIENT_ID},
        timeout=10,
    )
    assert revoked.status_code == 200, revoked.text
    assert introspect(demo_site, body["access_token"]) == {"active": False}
    after = bearer(demo_site, "/api/files/", body["access_token"])
    assert after.status_code == 401 and "invalid_token" in after.headers["WWW-Authenticate"]
    assert bearer(demo_site, "/api/my-report/", user_token).status_code == 401
    assert exchange(demo_site, user_token).json()["error"] == "invalid_request"  # nothing left to exchange
