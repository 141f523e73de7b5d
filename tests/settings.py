"""Test settings: the demo site's, with fast password hashing and a local cache.

DATABASE_URL selects the database (SQLite by default; ``python -m tests`` also runs the suite on
PostgreSQL). Django creates and drops its own test database on that server.
"""

import os

import dj_database_url

from example_project.settings import *  # noqa: F403
from oauth_server.sqlite import configure_sqlite

# The app's defaults, not the demo's choices (open registration for MCP clients: demo/site.py).
OAUTH_SERVER = {  # noqa: F405
    key: value
    for key, value in OAUTH_SERVER.items()  # noqa: F405
    if key not in ("REGISTRATION_POLICY", "SELF_REGISTERED_AUDIENCES")
}

# The SQLite options the demo ships (WAL, BEGIN IMMEDIATE, busy timeout); WAL is moot in memory, but
# with SQLITE_TEST_NAME (a file) the race tests run on SQLite exactly as the demo does.
DATABASES = configure_sqlite(
    {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", "sqlite://:memory:"))}
)
if os.environ.get("SQLITE_TEST_NAME") and DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["SQLITE_TEST_NAME"]}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DEBUG = False
ALLOWED_HOSTS = ["*"]

# Pages are rendered without a collectstatic step: the plain storage (the demo picks the manifest
# one when DEBUG is off), and WhiteNoise looks the files up in the apps on each request.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
