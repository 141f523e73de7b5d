"""Pushed authorization requests at rest (RFC 9126): push, resolve, consume.

The client posts its authorization parameters to the PAR endpoint (views/par.py), authenticated;
it gets back ``request_uri = urn:ietf:params:oauth:request_uri:<reference>`` and sends the browser
to the authorization endpoint with only ``client_id`` and ``request_uri``. The parameters never
travel through the browser, so nobody on the way can read or change them.

- The reference is 256 random bits; the row keeps its SHA-256 (like codes and tokens), so a
  database dump yields no usable request_uri.
- A request_uri is bound to its client (a request naming another client_id finds nothing) and
  expires after ``PAR_LIFETIME`` seconds.
- It is consumed by the authorization response it leads to (code or error redirect); expired ones
  are deleted when their client pushes again, and all of them by ``manage.py purge_expired``
  (``purge_expired``). Until consumed,
  the browser may reload the consent page (RFC 9126 7.3 allows this), and the sign-in page may
  send the user back with it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.http import QueryDict
from django.utils import timezone

from .cleanup import DEFAULT_BATCH_SIZE, delete_in_batches
from .conf import settings
from .models import Client, PushedAuthorizationRequest, plausible_client_id
from .reauthentication import REAUTH_PARAM
from .tokens import token_checksum

URN_PREFIX = "urn:ietf:params:oauth:request_uri:"
# What a client may not push: its own credentials (they authenticate the push, they are not part of
# the authorization request), a request_uri (RFC 9126 2.1), and a request object itself (its verified
# parameters are stored instead: request_objects.py).
NOT_PUSHED = {"client_secret", "client_assertion", "client_assertion_type", "request_uri", "request"}


@dataclass(frozen=True)
class Pushed:
    """A resolved pushed request: its row, and its parameters (name -> list of values)."""

    row: PushedAuthorizationRequest
    request_uri: str

    @property
    def parameters(self) -> dict[str, list[str]]:
        return self.row.parameters

    @property
    def is_pushed(self) -> bool:
        """Pushed by the client (RFC 9126), not stored from a request object the browser brought."""
        return self.row.pushed

    @property
    def is_signed(self) -> bool:
        """The parameters came from a verified request object (RFC 9101)."""
        return self.row.signed


def push(
    client: Client, parameters: dict[str, list[str]], *, signed: bool = False, pushed: bool = True
) -> tuple[str, int]:
    """Store a validated authorization request; return its request_uri and lifetime in seconds.

    ``signed``: the parameters come from a verified request object; ``pushed=False``: stored by the
    authorization endpoint from a request object the browser brought (request_objects.resolve)."""
    reference = secrets.token_urlsafe(32)
    lifetime = settings.PAR_LIFETIME
    purge_expired(client)  # the client's abandoned requests go when it pushes again
    PushedAuthorizationRequest.objects.create(
        reference_checksum=token_checksum(reference),
        client=client,
        parameters={k: v for k, v in parameters.items() if k not in NOT_PUSHED},
        expires=timezone.now() + timedelta(seconds=lifetime),
        signed=signed,
        pushed=pushed,
    )
    return URN_PREFIX + reference, lifetime


def resolve(client_id: Any, request_uri: Any) -> Pushed | None:
    """The unexpired pushed request this client pushed under ``request_uri``, else None."""
    if not isinstance(request_uri, str) or not request_uri.startswith(URN_PREFIX):
        return None
    if not plausible_client_id(client_id) or "\x00" in request_uri or len(request_uri) > 200:
        return None
    row = (
        PushedAuthorizationRequest.objects.filter(
            reference_checksum=token_checksum(request_uri[len(URN_PREFIX) :]),
            client__client_id=client_id,
            client__is_enabled=True,
            expires__gt=timezone.now(),
        )
        .select_related("client")
        .first()
    )
    return Pushed(row, request_uri) if row is not None else None


def consume(pushed: Pushed) -> None:
    PushedAuthorizationRequest.objects.filter(pk=pushed.row.pk).delete()


def query_for(pushed: Pushed, presented: QueryDict) -> QueryDict:
    """The authorization request to handle: the pushed parameters, and of the browser's only what
    this server itself adds on the way (RFC 9126 4: the others are ignored).

    - The re-authentication marker (the login page's way back after prompt=login or max_age): it
      replaces ``prompt=login`` and ``max_age``, as in a request that was not pushed.
    - ``prompt=login`` from the consent page's "use another account" link.
    """
    query = QueryDict(mutable=True)
    for name, values in pushed.parameters.items():
        query.setlist(name, list(values))
    prompt = set(query.get("prompt", "").split())
    markers = presented.getlist(REAUTH_PARAM)
    if markers:
        query.setlist(REAUTH_PARAM, markers)
        prompt.discard("login")
        query.pop("max_age", None)
    if "login" in presented.get("prompt", "").split():
        prompt.add("login")
    if prompt:
        query["prompt"] = " ".join(sorted(prompt))
    else:
        query.pop("prompt", None)
    query._mutable = False
    return query


def browser_query(pushed: Pushed, **extra: str) -> QueryDict:
    """What the browser carries for a pushed request: client_id, request_uri and our own additions."""
    query = QueryDict(mutable=True)
    query["client_id"] = pushed.row.client.client_id
    query["request_uri"] = pushed.request_uri
    for name, value in extra.items():
        query[name] = value
    return query


def was_pushed(pushed: Pushed | None) -> bool:
    """Whether the request being handled was pushed by its client (satisfies ``profiles.requires_par``)."""
    return pushed is not None and pushed.is_pushed


def purge_expired(client: Client | None = None, *, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Delete expired pushed requests (of one client, or all: ``manage.py purge_expired``); how many."""
    expired = PushedAuthorizationRequest.objects.filter(expires__lte=timezone.now())
    if client is not None:
        expired = expired.filter(client=client)
    return delete_in_batches(expired, batch_size)
