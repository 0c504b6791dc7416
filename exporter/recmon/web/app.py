"""The HTTP side: /metrics from the snapshot, a landing page, health, readiness and reload."""

from __future__ import annotations

import html
import logging
import socket
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST

from recmon import __version__
from recmon.collector import Exposition
from recmon.web.webconfig import WebConfigWatcher

log = logging.getLogger("recmon.web")

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def make_app(
    exposition: Callable[[], Exposition],
    ready: Callable[[], bool],
    sources: Callable[[], dict[str, str]],
    reload: Callable[[], str | None],
) -> Wsgi:
    """`sources` gives each source's name and redacted DSN, for the landing page; `reload`
    rereads the config and returns why it was rejected, or None."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            current = exposition()
            if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
                return _reply(
                    start_response, "200 OK", current.gzipped, CONTENT_TYPE_LATEST, gzipped=True
                )
            return _reply(start_response, "200 OK", current.text, CONTENT_TYPE_LATEST)
        if path == "/":
            landing = _landing_page(sources()).encode()
            return _reply(start_response, "200 OK", landing, "text/html; charset=utf-8")
        if path == "/-/healthy":
            return _reply(start_response, "200 OK", b"Healthy.\n")
        if path == "/-/ready":
            if ready():
                return _reply(start_response, "200 OK", b"Ready.\n")
            return _reply(start_response, "503 Service Unavailable", b"Not ready: first cycle.\n")
        if path == "/-/reload":
            if environ.get("REQUEST_METHOD") != "POST":
                body = b"Only POST reloads the config.\n"
                return _reply(start_response, "405 Method Not Allowed", body, allow="POST")
            problem = reload()
            if problem is not None:
                body = f"Config reload failed: {problem}\n".encode()
                return _reply(start_response, "500 Internal Server Error", body)
            return _reply(start_response, "200 OK", b"Reloaded: applies from the next cycle.\n")
        return _reply(start_response, "404 Not Found", b"Not found.\n")

    return app


def _reply(
    start_response: Callable[..., Any],
    status: str,
    body: bytes,
    kind: str = "text/plain",
    allow: str | None = None,
    gzipped: bool = False,
) -> list[bytes]:
    headers = [("Content-Type", kind), ("Content-Length", str(len(body)))]
    if allow is not None:
        headers.append(("Allow", allow))
    if gzipped:
        headers.append(("Content-Encoding", "gzip"))
    start_response(status, headers)
    return [body]


def _landing_page(sources: dict[str, str]) -> str:
    rows = "".join(
        f"<li><code>{html.escape(name)}</code>: <code>{html.escape(dsn)}</code></li>"
        for name, dsn in sources.items()
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>recmon</title></head>
<body><h1>recmon</h1>
<p>Recommendation KPIs as Prometheus metrics. Version {html.escape(__version__)}.</p>
<ul><li><a href="metrics">Metrics</a></li><li><a href="-/healthy">Health</a></li>
<li><a href="-/ready">Readiness</a></li></ul>
<h2>Sources</h2><ul>{rows}</ul>
</body></html>
"""


def protect(app: Wsgi, watcher: WebConfigWatcher) -> Wsgi:
    """Basic auth on every path when the web config has users, plus its response headers."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = list(watcher.current().headers.items())

        def respond(status: str, response_headers: list[tuple[str, str]], *exc: Any) -> Any:
            return start_response(status, response_headers + headers, *exc)

        if not watcher.authorized(environ.get("HTTP_AUTHORIZATION")):
            start_response(
                "401 Unauthorized",
                [
                    ("WWW-Authenticate", 'Basic realm="recmon"'),
                    ("Content-Type", "text/plain"),
                    *headers,
                ],
            )
            return [b"Unauthorized.\n"]
        return app(environ, respond)

    return guarded


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper must not hold up shutdown
    # socketserver's backlog of 5 drops connections when a few dozen scrapers (Prometheus
    # replicas, federation, dashboards) connect at once; clients then wait seconds to retry.
    request_queue_size = socket.SOMAXCONN
    watcher: WebConfigWatcher | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A failed TLS handshake or a client that hangs up is the client's problem, not ours.
        log.debug("connection failed", extra={"client": str(client_address)}, exc_info=True)


class _Handler(WSGIRequestHandler):
    server: _Server

    def setup(self) -> None:
        tls = self.server.watcher.current().tls if self.server.watcher else None
        if tls is not None:
            # The handshake runs here, in the connection's thread, with the current certificate.
            self.request.settimeout(10)
            self.request = tls.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format % args, extra={"client": self.address_string()})


def parse_listen_address(address: str) -> tuple[str, int]:
    """':9747', '127.0.0.1:9747' or '[::1]:9747' as (host, port); an empty host means all."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"invalid listen address {address!r}: use host:port, e.g. :9747")
    return host.strip("[]"), int(port)


def serve(app: Wsgi, address: str, watcher: WebConfigWatcher | None = None) -> WSGIServer:
    """A threaded server for `app` on `address`; with `watcher`, TLS and basic auth."""
    host, port = parse_listen_address(address)
    attributes: dict[str, Any] = {"watcher": watcher}
    if ":" in host:
        attributes["address_family"] = socket.AF_INET6
    server_class = type("Server", (_Server,), attributes)
    if watcher is not None:
        app = protect(app, watcher)
    return make_server(host, port, app, server_class=server_class, handler_class=_Handler)
