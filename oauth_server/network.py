"""Who is calling: the client's IP address behind the site's own reverse proxies.

One rule for every feature that needs an address (rate limits, the audit trail): ``REMOTE_ADDR``,
unless it is one of ``OAUTH_SERVER["TRUSTED_PROXIES"]``; then ``X-Forwarded-For`` is read from the
right (the entries the trusted proxies appended) and the first address that is not a trusted proxy
is the client. Entries further left were written by the client and are never believed.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping

from .conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(value: object) -> IPAddress | None:
    """An address from a header value (``[v6]``, zone ids and IPv4-mapped v6 normalised), or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        address = ipaddress.ip_address(value.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(str(entry), strict=False) for entry in entries)


def trusted_proxies() -> tuple[IPNetwork, ...]:
    """``TRUSTED_PROXIES`` as networks; ValueError for an entry that is not one (system check E003)."""
    return _networks(tuple(str(entry) for entry in settings.TRUSTED_PROXIES or ()))


def client_address(meta: Mapping | None) -> IPAddress | None:
    """The calling client's address from a request's ``META``, or None when it has none."""
    if not meta:
        return None
    address = parse_ip(meta.get("REMOTE_ADDR"))
    try:
        proxies = trusted_proxies()
    except ValueError:
        proxies = ()  # reported by `manage.py check`; never believe forwarded headers meanwhile
    if address is None or not any(address in network for network in proxies):
        return address
    hops = [hop for hop in (meta.get("HTTP_X_FORWARDED_FOR") or "").split(",") if hop.strip()]
    for hop in reversed(hops):
        forwarded = parse_ip(hop)
        if forwarded is None:
            break  # garbage from the client side: the last trusted hop is all we know
        address = forwarded
        if not any(address in network for network in proxies):
            break
    return address
