"""A client's loopback redirect URI (RFC 8252 7.3) for end-to-end tests: where Chromium lands after
consent. Shared by the tests that drive a real client library (MCP SDK, openid-client)."""

from __future__ import annotations

import queue
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


class Callback:
    """The redirect URI: a loopback HTTP server (``http://127.0.0.1:PORT/callback``) that keeps the
    query of each request it gets. With ``certificate_dir`` it speaks TLS under a self-signed
    certificate made there (``https://127.0.0.1:PORT/callback``: the https redirect URI of a
    confidential web client, which the FAPI 2.0 profile requires; Chromium must then be started with
    ``--ignore-certificate-errors``)."""

    def __init__(self, certificate_dir: Path | None = None) -> None:
        self.queries: queue.Queue[dict[str, str]] = queue.Queue()
        received = self.queries

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                if parts.path == "/callback":
                    received.put({k: v[0] for k, v in parse_qs(parts.query).items()})
                body = b"<!doctype html><title>Done</title><p>You can close this window.</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if certificate_dir is not None:
            from tests.cimd_server import self_signed_certificate

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self_signed_certificate(certificate_dir))
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}/callback"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
