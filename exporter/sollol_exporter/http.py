"""The web endpoint: /metrics, a landing page, /-/healthy and /-/ready. Thin: collection lives in scrape.py."""

from __future__ import annotations

import gzip
import html
import json
import logging
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.exposition import choose_encoder

from sollol_exporter import __version__
from sollol_exporter.app import State
from sollol_exporter.config import Config
from sollol_exporter.logs import fields

log = logging.getLogger(__name__)
MIN_BUDGET = 0.1


class _Families:
    def __init__(self, families: list):
        self.families = families

    def collect(self):
        return self.families


def scrape_budget(header: str | None, config: Config) -> float:
    """Seconds this scrape may take: Prometheus' timeout header (or scrape.timeout) minus the margin."""
    timeout = config.scrape.timeout
    if header:
        try:
            timeout = float(header)
        except ValueError:
            pass
    return max(MIN_BUDGET, timeout - config.scrape.timeout_margin)


class Handler(BaseHTTPRequestHandler):
    server_version = f"sollol-exporter/{__version__}"
    protocol_version = "HTTP/1.1"
    state: State

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        log.debug("http request", extra=fields(client=self.client_address[0], request=format % args))

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_POST(self):
        self._send(405, "text/plain; charset=utf-8", b"method not allowed\n")

    def do_GET(self, head: bool = False):
        path = self.path.split("?", 1)[0]
        try:
            if path == "/metrics":
                self._metrics(head)
            elif path == "/":
                self._send(200, "text/html; charset=utf-8", self._landing().encode(), head)
            elif path == "/-/healthy":
                self._send(200, "text/plain; charset=utf-8", b"Healthy.\n", head)
            elif path == "/-/ready":
                self._send(200, "text/plain; charset=utf-8", b"Ready.\n", head)
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found\n", head)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:
            log.error("request failed", exc_info=True, extra=fields(path=path))
            self._send(503, "text/plain; charset=utf-8", b"temporarily unable to answer; see the exporter log\n", head)

    def _metrics(self, head: bool) -> None:
        state = self.state
        budget = scrape_budget(self.headers.get("X-Prometheus-Scrape-Timeout-Seconds"), state.config)
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        body = encoder(_Families(state.families(budget)))
        headers = {}
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        self._send(200, content_type, body, head, headers)

    def _landing(self) -> str:
        state = self.state
        table = "".join(
            f"<tr><td>{html.escape(row.kind)}</td><td>{html.escape(row.name)}</td><td>{html.escape(row.status)}</td>"
            f"<td>{row.seconds * 1000:.1f} ms</td><td>{html.escape(row.detail)}</td></tr>"
            for row in state.target_rows()
        ) or "<tr><td colspan=5>No scrape yet: open <a href='/metrics'>/metrics</a>.</td></tr>"
        config = html.escape(json.dumps(state.config_summary(), indent=2))
        return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>SOLLOL exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:left}}</style></head>
<body><h1>SOLLOL exporter</h1><p>Version {html.escape(__version__)}.
<a href="/metrics">Metrics</a> · <a href="/-/healthy">Health</a> · <a href="/-/ready">Readiness</a></p>
<h2>Last probe per target</h2><table><tr><th>Kind</th><th>Target</th><th>State</th><th>Probe</th><th>Detail</th></tr>{table}</table>
<h2>Configuration</h2><pre>{config}</pre></body></html>
"""

    def _send(self, status: int, content_type: str, body: bytes, head: bool = False, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def parse_listen_address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--web.listen-address {value!r}: expected [host]:port")
    return host, int(port)


def serve(state: State, listen: str) -> Server:
    host, port = parse_listen_address(listen)
    handler = type("BoundHandler", (Handler,), {"state": state})
    server_class = type("Server6", (Server,), {"address_family": socket.AF_INET6}) if ":" in host else Server
    return server_class((host, port), handler)
