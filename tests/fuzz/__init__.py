"""Hostile input: property-based tests (hypothesis) against every endpoint of the provider.

Each example sends one request built from a mix of *valid* values (a real client's id and secret, a
registered redirect URI, a PKCE pair, a code, tokens and an ID token minted by a real flow) and
hostile ones (random text, 100 KB values, control characters, NUL bytes, invalid UTF-8, broken
percent-encoding, non-ASCII digits, numbers past Python's int-string limit, deeply nested JSON,
values one past a stored column's length, repeated parameters, JSON or multipart bodies, wrong
content types, wrong methods, odd ``Authorization`` and other headers), then checks the properties
(docs/hardening.md, "Hostile input"):

- the status is never >= 500;
- JSON endpoints answer errors as a JSON object with ``error`` (and ``error_description``);
  HTML endpoints answer a page;
- a redirect leaves the site only for a URI registered, exactly, for the client named in the
  request (scheme, host and path compared); any other redirect stays on the site;
- a rejected request writes nothing: every model's row count (except ``AuditEvent``, sessions and
  the admin's ``LogEntry``) and every row of the OAuth tables (tokens, codes, consents, clients,
  keys, users) are the same before and after it.

Random examples rarely put one hostile value into an otherwise valid request, which is what reaches
the deepest code (a code being saved, a verifier being checked): ``test_hostile_class_sweep`` does
that for every class of hostile value, every parameter and every endpoint that takes a request from
the browser or a client (authorization GET and consent POST, login page, token endpoint).

Every example runs in a savepoint that is rolled back, with the cache (rate-limit counters) and the
signing-key cache cleared, so examples never see each other's effects.

``FUZZ_EXAMPLES`` sets the number of examples per test (default 40); a long run is e.g.
``FUZZ_EXAMPLES=2000 .venv/bin/pytest -p no:xdist -q tests/fuzz/``.
"""
