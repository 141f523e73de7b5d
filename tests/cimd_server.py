"""A real HTTPS server on 127.0.0.1 serving client ID metadata documents, under a self-signed
certificate made here (``cryptography``): the fetcher under test speaks TLS to it like to any host.

``DocumentServer.serve(path, body, ...)`` sets what a path answers; ``hits[path]`` counts requests.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(certificate PEM, key PEM) for localhost and 127.0.0.1; the certificate is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oauth_server test document server")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    drip: float = 0.0  # seconds between bytes of the body
    content_length: bool = True


class DocumentServer:
    def __init__(self, directory: Path):
        self.cert, self.key = self_signed_certificate(directory)
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                route = server.routes.get(self.path, Route(status=404, body=b"{}"))
                if route.delay:
                    time.sleep(route.delay)
                try:
                    self.send_response(route.status)
                    for name, value in route.headers.items():
                        self.send_header(name, value)
                    if route.content_length:
                        self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    if route.drip:
                        for byte in route.body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(route.drip)
                    else:
                        self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}{path}"

    def serve(
        self, path: str, body: Any = None, *, content_type: str = "application/json", **route: Any
    ) -> str:
        """Serve ``body`` (a dict is JSON-encoded) at ``path``; returns the URL."""
        raw = json.dumps(body).encode() if isinstance(body, (dict, list)) else (body or b"")
        headers = {"Content-Type": content_type} if content_type else {}
        headers.update(route.pop("headers", {}))
        self.routes[path] = Route(body=raw, headers=headers, **route)
        return self.url(path)

    def document(self, path: str, **members: Any) -> dict[str, Any]:
        """A valid document for ``path`` (members override or add; None removes one)."""
        document = {
            "client_id": self.url(path),
            "client_name": "Test MCP client",
            "redirect_uris": ["http://127.0.0.1:33418/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
        document.update(members)
        return {k: v for k, v in document.items() if v is not None}

    def reset(self) -> None:
        self.routes.clear()
        self.hits.clear()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
