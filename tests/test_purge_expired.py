"""Cleaning up what expired: ``manage.py purge_expired`` (cleartokens, device authorizations, pushed
authorization requests), ``device.purge_expired``, ``par.purge_expired`` and ``cleanup.delete_in_batches``."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from oauth_server import cleanup, device, par
from oauth_server.models import AccessToken, DeviceAuthorization, GrantType, PushedAuthorizationRequest
from tests.factories import AccessTokenFactory, ClientFactory, PublicClientFactory, UserFactory

Status = DeviceAuthorization.Status


@pytest.fixture
def cli(db):
    return PublicClientFactory(
        grant_types=[GrantType.DEVICE_CODE], redirect_uris="", scopes=["files:read"], name="Files CLI"
    )


def past():
    return timezone.now() - timedelta(seconds=1)


def authorization(client, *, status=Status.PENDING, expired=False) -> DeviceAuthorization:
    """A device authorization made by the real ``device.start``, then moved to ``status``."""
    row = device.start(client, ["files:read"]).authorization
    changes: dict = {"status": status}
    if status != Status.PENDING:
        changes.update(user=UserFactory(), decided_at=timezone.now())
    if expired:
        changes["expires"] = past()
    DeviceAuthorization.objects.filter(pk=row.pk).update(**changes)
    return row


def pushed(client, *, expired=False) -> PushedAuthorizationRequest:
    par.push(client, {"client_id": [client.client_id], "response_type": ["code"]})
    row = PushedAuthorizationRequest.objects.filter(client=client).latest("pk")
    if expired:
        PushedAuthorizationRequest.objects.filter(pk=row.pk).update(expires=past())
    return row


def remaining(model) -> set[int]:
    return set(model.objects.values_list("pk", flat=True))


# --- device authorizations ---------------------------------------------------------------------------
def test_only_expired_device_authorizations_go_whatever_their_status(cli):
    gone = [authorization(cli, status=s, expired=True) for s in Status.values]
    kept = [authorization(cli, status=s) for s in Status.values]
    assert device.purge_expired() == len(gone) == 4
    assert remaining(DeviceAuthorization) == {row.pk for row in kept}


def test_device_purge_is_idempotent_and_keeps_pending_ones_in_time(cli):
    pending = authorization(cli)
    authorization(cli, expired=True)
    assert device.purge_expired() == 1
    assert device.purge_expired() == 0
    assert remaining(DeviceAuthorization) == {pending.pk}
    # The pending one still works: the user can find it by its code.
    assert DeviceAuthorization.objects.pending().filter(pk=pending.pk).exists()


def test_device_purge_deletes_in_batches(cli):
    for _ in range(5):
        authorization(cli, expired=True)
    with CaptureQueriesContext(connection) as queries:
        assert device.purge_expired(batch_size=2) == 5
    sql = [q["sql"] for q in queries]
    deletes = [s for s in sql if s.startswith("DELETE") and "deviceauthorization" in s]
    assert len(deletes) == 3  # 2 + 2 + 1
    assert not DeviceAuthorization.objects.exists()


def test_a_purged_device_code_polls_as_unknown(cli, client):
    issued = device.start(cli, ["files:read"])
    DeviceAuthorization.objects.filter(pk=issued.authorization.pk).update(expires=past())
    device.purge_expired()
    response = client.post(
        "/oauth/token/",
        {"grant_type": GrantType.DEVICE_CODE, "device_code": issued.device_code, "client_id": cli.client_id},
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


# --- pushed authorization requests --------------------------------------------------------------------
def test_only_expired_pushed_requests_go_of_every_client(db):
    one, two = ClientFactory(), ClientFactory()
    kept = [pushed(one), pushed(two)]
    # Expired after the last push: push() would purge them itself (its client's, only).
    gone = [pushed(one, expired=True), pushed(two, expired=True)]
    assert len(gone) == 2
    assert par.purge_expired(batch_size=1) == 2
    assert remaining(PushedAuthorizationRequest) == {row.pk for row in kept}
    assert par.purge_expired() == 0


def test_pushing_again_still_purges_only_that_clients_expired_requests(db):
    one, two = ClientFactory(), ClientFactory()
    pushed(one, expired=True)
    other = pushed(two, expired=True)
    newest = pushed(one)  # push() purges one's expired requests first
    assert remaining(PushedAuthorizationRequest) == {other.pk, newest.pk}


# --- the batch helper ----------------------------------------------------------------------------------
def test_delete_in_batches_counts_only_the_models_rows_and_refuses_a_zero_batch(cli):
    for _ in range(3):
        authorization(cli, expired=True)
    assert cleanup.delete_in_batches(DeviceAuthorization.objects.all(), batch_size=1) == 3
    assert cleanup.delete_in_batches(DeviceAuthorization.objects.all(), batch_size=1) == 0
    with pytest.raises(ValueError):
        cleanup.delete_in_batches(DeviceAuthorization.objects.all(), batch_size=0)


# --- the command ------------------------------------------------------------------------------------------
def run(*args: str) -> str:
    out = io.StringIO()
    call_command("purge_expired", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_command_runs_cleartokens_then_purges_device_and_pushed_rows(cli):
    old_token = AccessTokenFactory(expires=timezone.now() - timedelta(days=1))
    live_token = AccessTokenFactory()
    authorization(cli, expired=True)
    pending = authorization(cli)
    pushed(ClientFactory(), expired=True)
    out = run("--batch-size", "1")
    assert "cleared (cleartokens)" in out
    assert "Deleted 1 expired device authorization(s)." in out
    assert "Deleted 1 expired pushed authorization request(s)." in out
    assert remaining(AccessToken) == {live_token.pk} and old_token.pk not in remaining(AccessToken)
    assert remaining(DeviceAuthorization) == {pending.pk}
    assert not PushedAuthorizationRequest.objects.exists()
    again = run()
    assert "Deleted 0 expired device authorization(s)." in again
    assert "Deleted 0 expired pushed authorization request(s)." in again
    assert remaining(DeviceAuthorization) == {pending.pk}


def test_command_can_leave_tokens_to_a_separate_cleartokens(cli):
    old_token = AccessTokenFactory(expires=timezone.now() - timedelta(days=1))
    authorization(cli, expired=True)
    out = run("--skip-cleartokens")
    assert "cleartokens" not in out and "Deleted 1 expired device authorization(s)." in out
    assert AccessToken.objects.filter(pk=old_token.pk).exists()


def test_command_refuses_a_zero_batch_size(db):
    with pytest.raises(CommandError, match="batch-size"):
        run("--batch-size", "0")
