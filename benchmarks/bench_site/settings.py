"""The demo site's settings (example_project.settings, as shipped) with what a load test needs.

- Rate limits the benchmark cannot reach: one client from one IP sends hundreds of requests a
  second. The limiter still runs (its cache round trips are part of the cost), as in
  benchmarks/token_endpoint.py.
- Static files from the apps (no collectstatic step) even with ``DEBUG`` off: no page the benchmark
  requests uses them, but the manifest storage would refuse to start without a manifest.
- Two resource-server endpoints, one behind the JWT check and one open (urls.py).

Everything else (database from ``DATABASE_URL``, ``CONN_MAX_AGE`` from ``DATABASE_CONN_MAX_AGE``,
``DEBUG`` from ``DJANGO_DEBUG``, the issuer from ``DEMO_BASE_URL``) is the demo's own.
"""

from example_project.settings import *  # noqa: F403
from example_project.settings import OAUTH_SERVER

UNREACHABLE = "1000000/m"
OAUTH_SERVER = {
    **OAUTH_SERVER,
    "RATE_LIMITS": dict.fromkeys(
        (
            "token",
            "authorize",
            "introspect",
            "revoke",
            "par",
            "register",
            "device_authorization",
            "client_auth_failures",
        ),
        UNREACHABLE,
    ),
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
ROOT_URLCONF = "benchmarks.bench_site.urls"
# 500s logged with their traceback (the demo logs nothing with DEBUG off), so the benchmark can say
# what failed.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR"}},
}
