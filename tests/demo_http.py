"""Serve the demo's own HTTP calls in-process: what the report builder (and the Demo Web App) send
with ``requests`` to ``http://testserver`` goes to Django's test client instead of the network.

``served_in_process(monkeypatch)`` patches ``example_project.demo.rp._http`` so that every session it
makes has an adapter for ``http://testserver/`` that replays the request through
``django.test.Client``: routing, middleware and views run as for a real request, inside the test's
transaction.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from django.test import Client as BrowserClient
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

BASE = "http://testserver"


class DjangoTestClientAdapter(BaseAdapter):
    def send(self, request, **kwargs):  # noqa: ARG002 (timeout, verify...: nothing to do in-process)
        url = urlsplit(request.url)
        meta = {}
        for name, value in request.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                continue
            meta[f"HTTP_{key}"] = value
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        answer = BrowserClient().generic(
            request.method,
            url.path + (f"?{url.query}" if url.query else ""),
            data=body,
            content_type=request.headers.get("Content-Type", ""),
            **meta,
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(dict(answer.items()))
        response._content = answer.content
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


def served_in_process(monkeypatch) -> None:
    from example_project.demo import rp

    original = rp._http

    def http() -> requests.Session:
        session = original()
        session.mount(BASE + "/", DjangoTestClientAdapter())
        return session

    monkeypatch.setattr(rp, "_http", http)
