"""The demo site's home page: what the demo contains and where to start."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from oauth_server.models import Client

from . import seed


def home(request: HttpRequest) -> HttpResponse:
    """Explain the four OAuth roles with the demo's own accounts, clients and endpoints."""
    base_url = request.build_absolute_uri("/").rstrip("/")
    registered = set(
        Client.objects.filter(client_id__in=[c.client_id for c in seed.CLIENTS]).values_list(
            "client_id", flat=True
        )
    )
    clients = [
        {
            "spec": spec,
            "registered": spec.client_id in registered,
            "grant_types": ", ".join(str(g) for g in spec.grant_types),
        }
        for spec in seed.CLIENTS
    ]
    context = {
        "accounts": seed.USERS,
        "password": seed.DEMO_PASSWORD,
        "clients": clients,
        "seeded": len(registered) == len(seed.CLIENTS),
        "endpoints": seed.endpoints(base_url),
        "files_api": base_url + seed.FILES_API_PATH,
        "reports_api": base_url + seed.REPORTS_API_PATH,
        "client_credentials_curl": seed.client_credentials_curl(base_url),
        "apis": seed.apis(base_url),
        "reports_api_curl": seed.reports_api_curl(base_url),
        "cli_report": seed.cli_command("report", base_url),
        "files": seed.FILES,
        "login_url": f"{reverse('login')}?next=/",
    }
    return render(request, "demo/home.html", context)
