"""Settings of the demo site: a Django site that uses oauth_server as any site would.

SQLite by default; PostgreSQL (or anything dj-database-url knows) when DATABASE_URL is set.
"""

import os
from pathlib import Path

import dj_database_url

from example_project.demo import site
from oauth_server.sqlite import configure_sqlite

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-insecure-secret-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")

INSTALLED_APPS = [
    # WhiteNoise serves the static files under runserver too (before staticfiles' own handler), so
    # development and production serve them the same way (docs/deployment.md).
    "whitenoise.runserver_nostatic",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "oauth2_provider",
    "oauth_server",
    "example_project.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the sign-in and consent pages' stylesheet, the admin's) from the WSGI process
    # itself, under gunicorn as under runserver: right after SecurityMiddleware, as WhiteNoise asks.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "example_project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "example_project.wsgi.application"

# On SQLite, configure_sqlite() adds WAL, BEGIN IMMEDIATE and a busy timeout (oauth_server.sqlite):
# without them concurrent token requests fail with "database is locked" (docs/hardening.md).
# Persistent connections (60 s, checked before reuse): a new PostgreSQL connection per request made
# the token endpoint about five times slower (docs/performance.md; check oauth_server.W014).
# DATABASE_POOL=1 (PostgreSQL, needs psycopg-pool): Django's psycopg connection pool instead, sized
# by DATABASE_POOL_MAX_SIZE (docs/deployment.md compares the two with measurements).
DATABASES = configure_sqlite(
    {
        "default": dj_database_url.config(
            default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
            conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
            conn_health_checks=os.environ.get("DATABASE_HEALTH_CHECKS", "1") == "1",
        )
    }
)
if os.environ.get("DATABASE_POOL") == "1" and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"].update(CONN_MAX_AGE=0, CONN_HEALTH_CHECKS=False)
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": int(os.environ.get("DATABASE_POOL_MIN_SIZE", "1")),
        "max_size": int(os.environ.get("DATABASE_POOL_MAX_SIZE", "4")),
    }

# Several processes or nodes (docs/deployment.md): REDIS_URL gives them one shared cache for the rate
# limits, the replay caches, the cached discovery documents and JWKS, and the APIs' revocation
# answers. Unset: Django's local-memory cache, one per process (fine for runserver).
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": os.environ.get("DJANGO_CACHE_KEY_PREFIX", ""),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
# The languages oauth_server ships (LocaleMiddleware picks one from Accept-Language); listing only
# these keeps a page from mixing a language Django knows with English strings of the app.
LANGUAGES = [("en", "English"), ("fr", "Français")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files: WhiteNoise (docs/deployment.md). With DEBUG off (production), the files are served
# from STATIC_ROOT, filled by `manage.py collectstatic`, with hashed names (cached for a year,
# immutable) and precompressed; `manage.py demo` runs collectstatic itself when DEBUG is off. With
# DEBUG on (the demo's default), WhiteNoise finds them in the apps (WHITENOISE_USE_FINDERS follows
# DEBUG), so an edited stylesheet shows at once and no collectstatic step is needed.
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

OAUTH_SERVER = {
    # The demo runs on http://127.0.0.1:8000; production sites keep the defaults.
}
# Local development and tests only (`check --deploy` refuses both, oauth_server.E004): client ID
# metadata documents served from this machine (https://127.0.0.1:<port>/...), under a self-signed
# certificate trusted from DEMO_CIMD_CA_FILE (a PEM file). Both off unless set.
if os.environ.get("DEMO_CIMD_ALLOW_LOOPBACK") == "1":
    OAUTH_SERVER["CIMD_ALLOW_HTTP_LOOPBACK"] = True
if os.environ.get("DEMO_CIMD_CA_FILE"):
    OAUTH_SERVER["CIMD_CA_FILE"] = os.environ["DEMO_CIMD_CA_FILE"]
# DPoP server nonces (docs/dpop.md) at the token endpoint and the demo's APIs, off unless
# DEMO_DPOP_NONCES=1: the interoperability tests make client libraries handle use_dpop_nonce.
DEMO_DPOP_NONCES = os.environ.get("DEMO_DPOP_NONCES") == "1"
if DEMO_DPOP_NONCES:
    OAUTH_SERVER["DPOP_NONCES"] = True

# One cache for every process: with DEMO_REDIS_URL (redis://host:port/db) the default cache, and so
# the replay cache (assertion and DPoP jti), rate limits and the APIs' caches, is Redis, under the
# key prefix DEMO_CACHE_KEY_PREFIX; unset, each process has its own memory (docs/deployment.md).
if os.environ.get("DEMO_REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["DEMO_REDIS_URL"],
            "KEY_PREFIX": os.environ.get("DEMO_CACHE_KEY_PREFIX", "demo"),
        }
    }

# --- the demo's base URL and what follows from it (example_project/demo/site.py) -------------------------
# Where the demo is served: the files and reports APIs' identifiers and the issuer they expect, and
# the URLs seed_demo registers. `manage.py demo <address>` sets it for the server it starts and pins
# the issuer to it (OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"]), so a token obtained through localhost
# carries the same issuer as one obtained through 127.0.0.1. With plain runserver, setting
# DEMO_BASE_URL in the environment does the same; unset, the issuer follows each request's host.
DEMO_BASE_URL = site.normalize_base_url(os.environ.get("DEMO_BASE_URL", site.DEFAULT_BASE_URL))
_derived = site.settings_for(DEMO_BASE_URL)
if "DEMO_BASE_URL" in os.environ:
    OAUTH2_PROVIDER = _derived["OAUTH2_PROVIDER"]
# The files and reports APIs (example_project/demo/api.py) use the resource-server kit.
OAUTH_RESOURCE_SERVER = {**_derived["OAUTH_RESOURCE_SERVER"], "DPOP_NONCES": DEMO_DPOP_NONCES}
OAUTH_SERVER = site.settings_for(DEMO_BASE_URL, oauth_server=OAUTH_SERVER)["OAUTH_SERVER"]

# The Demo Web App (a client) reaches the authorization server and the files API at this URL, over
# HTTP like any third-party app. None: the scheme and host of the request it is serving (runserver
# is threaded, so the site can call itself).
DEMO_CLIENT_SERVER_URL = os.environ.get("DEMO_CLIENT_SERVER_URL") or None
