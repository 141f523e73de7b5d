"""The Demo Web App is a client: where it sends its secret must not depend on the request's Host."""

from __future__ import annotations

from example_project.demo.client_views import server_url


def test_server_url_is_the_configured_base_not_the_host_header(rf, settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.DEMO_BASE_URL = "http://127.0.0.1:8000"
    settings.DEMO_CLIENT_SERVER_URL = None
    request = rf.get("/demo/app/", HTTP_HOST="attacker.example:9000")
    assert server_url(request) == "http://127.0.0.1:8000"
    settings.DEMO_CLIENT_SERVER_URL = "http://127.0.0.1:8001"
    assert server_url(request) == "http://127.0.0.1:8001"
