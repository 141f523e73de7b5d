from django.urls import path

from oauth_server.resource.metadata import protected_resource_metadata_urls

from . import api, client_views, mcp_server, report_builder, views

urlpatterns = [
    path("", views.home, name="home"),
    # The Demo Web App: a third-party client (its own session cookie, HTTP calls to the server).
    path("demo/start/", client_views.start, name="demo-start"),
    path("demo/callback", client_views.callback, name="demo-callback"),
    path("demo/app/", client_views.app, name="demo-app"),
    path("demo/app/files/", client_views.create_file, name="demo-app-files"),
    path("demo/app/files/<int:pk>/delete/", client_views.delete_file, name="demo-app-file-delete"),
    path("demo/app/refresh/", client_views.refresh, name="demo-app-refresh"),
    path("demo/app/logout/", client_views.logout, name="demo-app-logout"),
    path("demo/app/logged-out", client_views.logged_out, name="demo-app-logged-out"),
    path("demo/spa-callback", client_views.spa_callback, name="demo-spa-callback"),
    # The resource servers.
    path("api/files/", api.FileListView.as_view(), name="api-files"),
    path("api/files/<int:pk>/", api.FileDetailView.as_view(), name="api-file-detail"),
    path("api/reports/", api.ReportsView.as_view(), name="api-reports"),
    # A service acting for users: exchanges their token for a files-API one (RFC 8693).
    path("api/my-report/", report_builder.MyReportView.as_view(), name="api-my-report"),
    # The demo MCP server (docs/mcp.md): Streamable HTTP, its URL is its resource identifier.
    path("mcp/", mcp_server.mcp_endpoint, name="mcp"),
    # RFC 9728 metadata of the three resources (OAUTH_RESOURCE_SERVER["PROTECTED_RESOURCES"]).
    *protected_resource_metadata_urls(),
]
