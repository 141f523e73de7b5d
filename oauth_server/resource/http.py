"""The kit's two HTTP calls (JWKS GET, introspection POST), on the standard library.

urllib keeps the kit free of extra dependencies; every call has a timeout, only http(s) URLs are
followed, and answers are size-capped so a misbehaving server cannot exhaust memory.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

from .conf import settings

MAX_RESPONSE_BYTES = 1024 * 1024
USER_AGENT = "oauth-server-resource-kit/1"


class HTTPError(Exception):
    """The call failed (network, timeout, non-2xx status, or a body that is not a JSON object)."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


def _request(url: str, **kwargs: Any) -> urllib.request.Request:
    if urlsplit(url).scheme not in ("http", "https"):
        raise HTTPError(f"Refusing to fetch a non-HTTP URL: {url!r}")
    return urllib.request.Request(url, **kwargs)  # noqa: S310 (scheme checked above)


def _open(request: urllib.request.Request) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(request, timeout=settings.HTTP_TIMEOUT) as response:  # noqa: S310
            body = response.read(MAX_RESPONSE_BYTES + 1)
            status = response.status
    except urllib.error.HTTPError as exc:
        raise HTTPError(f"{request.full_url} answered HTTP {exc.code}", status=exc.code) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise HTTPError(f"{request.full_url} could not be reached: {exc}") from exc
    if len(body) > MAX_RESPONSE_BYTES:
        raise HTTPError(f"{request.full_url} answered more than {MAX_RESPONSE_BYTES} bytes", status=status)
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise HTTPError(f"{request.full_url} did not answer JSON", status=status) from exc
    if not isinstance(data, dict):
        raise HTTPError(f"{request.full_url} did not answer a JSON object", status=status)
    return data


def get_json(url: str) -> dict[str, Any]:
    request = _request(url, headers={"Accept": "application/json", "User-Agent": USER_AGENT})
    return _open(request)


def post_form(url: str, data: dict[str, str], *, authorization: str) -> dict[str, Any]:
    request = _request(
        url,
        data=urlencode(data).encode(),
        method="POST",
        headers={
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": authorization,
            "User-Agent": USER_AGENT,
        },
    )
    return _open(request)
