"""The accepted form of authorization-request parameters that are parsed or stored (docs/hardening.md).

Hostile values must get the protocol's error, never a 500: ``int()`` refuses the non-ASCII digits
that ``str.isdigit()`` accepts and numbers of more than 4,300 digits; ``json.loads`` raises
RecursionError on deep nesting; PostgreSQL refuses a value longer than its column or holding a NUL
byte when the code is saved. Each check here runs before anything is parsed or saved.
"""

from __future__ import annotations

import json
import re
from typing import Any

# max_age (OIDC Core 3.1.2.1): seconds as ASCII digits. 16 digits is over 300 million years, so no
# real value is refused; a longer one is malformed rather than parsed (int-string limit).
MAX_AGE_PATTERN = re.compile(r"[0-9]{1,16}")

# claims (OIDC Core 5.5): a JSON object of at most this many characters and levels of nesting. A real
# request ({"userinfo": {"email": {"essential": true, "values": [...]}}}) is a few hundred
# characters and 4 levels deep.
MAX_CLAIMS_LENGTH = 8192
MAX_CLAIMS_DEPTH = 16

# RFC 7636 4.1: code_verifier = 43*128unreserved; 4.2: the S256 challenge is BASE64URL(SHA-256(...)),
# 32 bytes, so exactly 43 base64url characters without padding.
CODE_VERIFIER_PATTERN = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
S256_CHALLENGE_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
# RFC 9449 10: dpop_jkt is an RFC 7638 JWK SHA-256 thumbprint, base64url without padding: 43 characters.
DPOP_JKT_PATTERN = S256_CHALLENGE_PATTERN


def parse_max_age(value: str) -> int | None:
    """The number of seconds, or None when ``value`` is not 1 to 16 ASCII digits."""
    return int(value) if MAX_AGE_PATTERN.fullmatch(value) else None


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text``, counted without parsing it (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_claims(value: Any) -> dict | None:
    """The ``claims`` request parameter as a dict, or None when malformed, too long or too deep."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or len(value) > MAX_CLAIMS_LENGTH or json_depth(value) > MAX_CLAIMS_DEPTH:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def valid_code_verifier(value: Any) -> bool:
    """RFC 7636 4.1: 43 to 128 characters of ``[A-Za-z0-9-._~]``."""
    return isinstance(value, str) and CODE_VERIFIER_PATTERN.fullmatch(value) is not None


def valid_s256_challenge(value: Any) -> bool:
    """RFC 7636 4.2: 43 base64url characters, no padding (the encoding of a SHA-256 digest)."""
    return isinstance(value, str) and S256_CHALLENGE_PATTERN.fullmatch(value) is not None


def storable_text(value: Any, max_length: int) -> bool:
    """Whether a string fits a ``max_length`` column on every database (PostgreSQL refuses NUL)."""
    return isinstance(value, str) and len(value) <= max_length and "\x00" not in value


def valid_dpop_jkt(value: Any) -> bool:
    """A JWK SHA-256 thumbprint as ``dpop_jkt`` carries it (RFC 9449 10): 43 base64url characters."""
    return isinstance(value, str) and DPOP_JKT_PATTERN.fullmatch(value) is not None
