"""Test settings: the demo site's, with fast password hashing and a local cache.

DATABASE_URL selects the database (SQLite in memory by default; .ci/run also sets it to
PostgreSQL). Django creates and drops its own test database on that server.
"""

import os

from example_project.settings import *  # noqa: F401,F403

import dj_database_url

DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", "sqlite://:memory:"))}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("SQLITE_TEST_NAME", "")} if os.environ.get(
        "SQLITE_TEST_NAME"
    ) else {}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DEBUG = False
ALLOWED_HOSTS = ["*"]
