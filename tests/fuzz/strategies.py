"""Hypothesis strategies for hostile input: values of every hostile class, parameter lists, request
bodies (encoded properly or not), ``Authorization`` and other headers, methods."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from urllib.parse import urlencode

from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from hypothesis import strategies as st

from tests.fuzz.world import HUGE, World
from tests.helpers import basic_auth


# --- hostile values -------------------------------------------------------------------------------
def latin1(value: str) -> str:
    """What a WSGI server hands Django for a header sent as UTF-8 bytes (PEP 3333: latin-1)."""
    return value.encode("utf-8", "surrogatepass").decode("latin-1")


text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
control = st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=8)
percent_garbage = st.sampled_from(
    ["%", "%%", "%zz", "%0", "%00", "%C0%80", "%ff%fe", "%E2%82", "%u0041", "+", "&", "=", "&&==", "%26%3D"]
)
odd_scalars = st.sampled_from(
    ["", " ", "null", "[]", "{}", "true", "-1", "0", "9" * 40, "1e999", "NaN", "../../etc", "\\", '"', "'"]
)
huge = st.sampled_from(["A", "é", "%", "\x00", "😀", " "]).map(lambda c: c * (HUGE // len(c.encode())))
# str.isdigit() accepts these, int() does not (or gives another number than an ASCII reader would).
NON_ASCII_DIGITS = ["²", "٣", "１", "۹", "१", "𝟗", "³⁶⁰⁰", "3６00"]
non_ascii_digits = st.text(st.sampled_from("²³¹٠٣۹१１𝟗"), min_size=1, max_size=6)
# int() refuses more than 4,300 digits; 17 digits is past the longest accepted max_age.
HUGE_NUMBERS = ["9" * 4301, "1" + "0" * 5000, "9" * 17, str(2**64), "-" + "9" * 4301]
huge_numbers = st.one_of(st.sampled_from(HUGE_NUMBERS), st.integers(4301, 6000).map(lambda n: "7" * n))
# json.loads raises RecursionError past ~1,000 levels; the claims parameter allows 16.
DEEP_NESTING = ["[" * 1000 + "]" * 1000, '{"userinfo":' * 1000 + "null" + "}" * 1000, "[" * 17 + "]" * 17]
deep_nesting = st.one_of(
    st.sampled_from(DEEP_NESTING),
    st.integers(17, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(17, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(1, 3000).map(lambda n: "[" * n),  # unterminated
)
# One past the columns request values are stored in: Grant.code_challenge (128), Grant.nonce and
# Grant.code (255), AuditEvent.user_agent (512), Client.client_id (100 in the audit copy).
OVER_LONG = ["A" * 101, "A" * 129, "n" * 256, "u" * 513]
over_long = st.sampled_from([100, 101, 128, 129, 150, 151, 255, 256, 512, 513]).flatmap(
    lambda n: st.sampled_from(["A", "~", "é", "\x00"]).map(lambda c: c * n)
)
NUL_BYTES = ["\x00", "a\x00b", "\x00" * 300]


def hostile_values(valid: list[str]) -> st.SearchStrategy[str]:
    """A value that is sometimes valid, sometimes a valid one made hostile, sometimes junk."""
    valid_st = st.sampled_from(valid) if valid else st.just("")
    return st.one_of(
        valid_st,
        valid_st,
        text,
        control,
        percent_garbage,
        odd_scalars,
        huge,
        non_ascii_digits,
        huge_numbers,
        deep_nesting,
        over_long,
        valid_st.map(lambda v: v + "A" * max(1, 129 - len(v))),  # a valid value made one column too long
        st.tuples(valid_st, st.one_of(control, percent_garbage, text, st.just("\x00"))).map("".join),
        st.tuples(st.one_of(control, st.just("\x00")), valid_st).map("".join),
        valid_st.map(lambda v: v.upper()),
        valid_st.map(lambda v: v[: len(v) // 2]),
        valid_st.map(lambda v: f" {v} "),
    )


Pairs = list[tuple[str, str]]


@st.composite
def parameters(draw, base: dict[str, list[str]], extra_names: list[str] = ()) -> Pairs:
    """Parameter pairs from ``base`` (name -> valid values): each kept, dropped, made hostile or
    repeated, plus a few unexpected names."""
    pairs: Pairs = []
    for name, valid in base.items():
        how = draw(st.sampled_from(["valid", "valid", "drop", "hostile", "repeat", "repeat-same"]))
        if how == "drop":
            continue
        if how == "valid":
            pairs.append((name, draw(st.sampled_from(valid) if valid else st.just(""))))
            continue
        value = draw(hostile_values(valid))
        pairs.append((name, value))
        if how == "repeat":
            pairs.append((name, draw(hostile_values(valid))))
        elif how == "repeat-same":
            pairs.append((name, value))
    names = st.one_of(st.sampled_from([*base, *extra_names] or ["x"]), text, control, percent_garbage)
    pairs += draw(st.lists(st.tuples(names, hostile_values([])), max_size=3))
    return draw(st.permutations(pairs))


@dataclass
class Body:
    content_type: str
    data: bytes


def form(pairs: Pairs) -> bytes:
    return urlencode(pairs).encode()


@st.composite
def bodies(draw, pairs: Pairs) -> Body:
    """The parameters as a request body, encoded properly or not."""
    kind = draw(
        st.sampled_from(
            ["form", "form", "form", "raw", "bytes", "latin1", "json", "json-as-form", "multipart", "plain"]
            + ["charset", "no-boundary", "empty"]
        )
    )
    urlencoded = "application/x-www-form-urlencoded"
    if kind == "form":
        return Body(urlencoded, form(pairs))
    if kind == "raw":  # not percent-encoded at all: "&", "=", "%" and NUL go through as they are
        raw = "&".join(f"{k}={v}" for k, v in pairs)
        return Body(urlencoded, raw.encode("utf-8", "surrogatepass"))
    if kind == "bytes":  # invalid UTF-8, alone or after valid parameters
        junk = draw(st.binary(min_size=1, max_size=64))
        return Body(urlencoded, draw(st.sampled_from([b"", form(pairs) + b"&"])) + junk)
    if kind == "latin1":
        return Body(urlencoded, urlencode(pairs, encoding="latin-1", errors="replace").encode())
    if kind == "json":
        return Body("application/json", json.dumps(dict(pairs)).encode())
    if kind == "json-as-form":
        payload = draw(st.sampled_from([dict(pairs), [list(p) for p in pairs], {"x": dict(pairs)}]))
        return Body(urlencoded, json.dumps(payload).encode())
    if kind == "multipart":
        return Body(MULTIPART_CONTENT, encode_multipart(BOUNDARY, dict(pairs)))
    if kind == "plain":
        return Body(draw(st.sampled_from(["text/plain", "application/xml", ""])), form(pairs))
    if kind == "charset":
        charset = draw(st.sampled_from(["utf-16", "bogus", "latin-1", "utf-32", "ascii", "utf-8; x=y"]))
        return Body(f"{urlencoded}; charset={charset}", form(pairs))
    if kind == "no-boundary":
        return Body(
            draw(st.sampled_from(["multipart/form-data", "multipart/form-data; boundary=", "multipart/x"])),
            draw(st.sampled_from([form(pairs), b"--x\r\n\r\n", b""])),
        )
    return Body(urlencoded, b"")


def authorization_headers(world: World) -> st.SearchStrategy[str]:
    web_basic = basic_auth(world.web.client_id, world.web.raw_secret)
    return st.one_of(
        st.sampled_from(
            [
                web_basic,
                basic_auth(world.machine.client_id, world.machine.raw_secret),
                basic_auth(world.admin.client_id, world.admin.raw_secret),
                basic_auth(world.disabled.client_id, world.disabled.raw_secret),
                basic_auth(world.web.client_id, "wrong"),
                basic_auth(world.spa.client_id, ""),
                "Basic !!!",
                "Basic ",
                "Basic",
                "Basic " + base64.b64encode(b"no-colon").decode(),
                "Basic " + base64.b64encode(b"\xff\xfe:\x80").decode(),
                "Basic " + base64.b64encode(b"%zz:%00").decode(),
                "Basic " + base64.b64encode(b"\x00:\x00").decode(),
                web_basic + "===",
                web_basic + " extra",
                "Bearer",
                "Bearer ",
                "Bearer  a b c",
                f"Bearer {world.access_token}",
                f"Bearer  {world.access_token} ",
                f"bearer {world.access_token}",
                f"Bearer {world.access_token} {world.access_token}",
                f"Bearer {world.admin_token}",
                f"Bearer {world.id_token}",
                f"DPoP {world.access_token}",
                "DPoP",
                "DPoP a b",
                "Bearer \x00",
                "Bearer ====",
                "Digest username=x",
                "Bearer " + "A" * HUGE,
                "Basic " + "A" * HUGE,
                latin1("Bearer é😀"),
                latin1("Basic " + base64.b64encode("é:😀".encode()).decode()),
            ]
        ),
        text.map(latin1),
        st.tuples(st.sampled_from(["Basic ", "Bearer ", "DPoP "]), text).map(lambda t: latin1("".join(t))),
    )


@st.composite
def headers(draw, world: World, authorization: bool = True) -> dict[str, str]:
    meta: dict[str, str] = {}
    if authorization and draw(st.booleans()):
        meta["HTTP_AUTHORIZATION"] = draw(authorization_headers(world))
    odd = st.one_of(text, control, huge, st.just("é")).map(latin1)
    for name in draw(
        st.lists(
            st.sampled_from(
                [
                    "HTTP_ORIGIN",
                    "HTTP_X_FORWARDED_FOR",
                    "HTTP_ACCEPT_LANGUAGE",
                    "HTTP_ACCEPT",
                    "HTTP_REFERER",
                    "HTTP_X_REQUESTED_WITH",
                    "HTTP_ACCESS_CONTROL_REQUEST_METHOD",
                    "HTTP_ACCESS_CONTROL_REQUEST_HEADERS",
                    "HTTP_X_JUNK",
                    "HTTP_COOKIE",
                    "HTTP_USER_AGENT",
                    "HTTP_DPOP",
                ]
            ),
            unique=True,
            max_size=3,
        )
    ):
        choices = [odd]
        if name == "HTTP_ORIGIN":
            choices.append(st.sampled_from(["https://client.example.com", "null", "https://evil.example"]))
        meta[name] = draw(st.one_of(*choices))
    return meta


METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def methods(*usual: str) -> st.SearchStrategy[str]:
    """Mostly the endpoint's own methods, sometimes any other."""
    return st.one_of(st.sampled_from(list(usual)), st.sampled_from(list(usual)), st.sampled_from(METHODS))
