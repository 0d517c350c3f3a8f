"""The exporter's routes: the metrics (/metrics, or --web.telemetry-path), a landing page, /-/healthy, /-/ready and
(opt-in) POST /-/reload, behind the optional web config (TLS, basic auth, extra headers, rate limit). Thin: collection
lives in scrape.py, the HTTP machinery in the rest of web/."""

from __future__ import annotations

import errno
import gzip
import html
import json
import logging
import math
import re
import socket
from collections.abc import Callable

from sollol_exporter import __version__
from sollol_exporter.build import revision
from sollol_exporter.config import Config
from sollol_exporter.exposition import choose_encoder
from sollol_exporter.state import State
from sollol_exporter.web import protocol
from sollol_exporter.web.gate import BasicAuthGate
from sollol_exporter.web.protocol import Request, Response
from sollol_exporter.web.rate_limit import RateLimiter
from sollol_exporter.web.server import BACKLOG, Server
from sollol_exporter.web.watch import WebConfigWatcher

log = logging.getLogger(__name__)
MIN_BUDGET = 0.1
MIN_TIMEOUT = 0.1
MAX_TIMEOUT = 120.0
MAX_TIMEOUT_HEADER_CHARS = 32
TEXT = "text/plain; charset=utf-8"
RELOAD_PATH = "/-/reload"
RELOAD_METHODS = ("POST", "PUT")  # as Prometheus' lifecycle API
DEFAULT_TELEMETRY_PATH = "/metrics"
RESERVED_PATHS = ("/", "/-/healthy", "/-/ready", RELOAD_PATH)
MAX_TELEMETRY_PATH_CHARS = 256
# RFC 3986 path characters: requests are matched on the raw path, so the flag takes it as a client sends it.
_TELEMETRY_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")


def check_telemetry_path(path: str) -> str:
    """The --web.telemetry-path value, or ValueError saying what is wrong with it."""
    if not path.startswith("/") or path.startswith("//"):
        raise ValueError(f"{path!r} must start with a single / (// would name another host in a link)")
    if len(path) > MAX_TELEMETRY_PATH_CHARS or not _TELEMETRY_PATH.fullmatch(path):
        raise ValueError(f"{path!r} is not a URL path (no spaces, ? or #; at most {MAX_TELEMETRY_PATH_CHARS} characters)")
    if path in RESERVED_PATHS:
        raise ValueError(f"{path!r} is served by the exporter itself; pick another path")
    return path


class _Families:
    def __init__(self, families: list):
        self.families = families

    def collect(self):
        return self.families


def scrape_budget(header: str | None, config: Config) -> float:
    """Seconds this scrape may take: Prometheus' timeout header (or scrape.timeout), clamped to
    [MIN_TIMEOUT, MAX_TIMEOUT], minus the margin. Whatever the header says, the answer is a sane finite number."""
    timeout = config.scrape.timeout
    if header and len(header) <= MAX_TIMEOUT_HEADER_CHARS:
        try:
            asked = float(header)
        except ValueError:
            asked = math.nan
        if not math.isnan(asked):
            timeout = asked
    timeout = min(MAX_TIMEOUT, max(MIN_TIMEOUT, timeout))
    return max(MIN_BUDGET, timeout - config.scrape.timeout_margin)


class Exporter:
    """Routes a parsed request to an answer; the web config (if any) is consulted on every request.

    `reload` is what SIGHUP does (True when every file was loaded); given, POST /-/reload calls it (the
    --web.enable-lifecycle flag); None, the endpoint answers 403 as Prometheus does without the flag."""

    def __init__(self, state: State, web: WebConfigWatcher | None, reload: Callable[[], bool] | None = None,
                 telemetry_path: str = DEFAULT_TELEMETRY_PATH):
        self.state = state
        self.web = web
        self.reload = reload
        self.telemetry_path = telemetry_path
        self.limiter = RateLimiter()

    def __call__(self, request: Request) -> Response:
        config = self.web.current().config if self.web else None
        response = self._route(request, config)
        if config:
            response.headers.extend(config.headers.items())
        return response

    def _route(self, request: Request, config) -> Response:
        # Basic auth has run already, before the request took a worker (BasicAuthGate): only authenticated
        # requests reach this point, so wrong passwords never use up the rate limit.
        if config and not self.limiter.allow(config.rate_interval, config.rate_burst):
            return Response(429, body=b"Too Many Requests\n")
        if request.path == RELOAD_PATH:
            return self._reload(request)
        if request.method not in ("GET", "HEAD"):
            return Response(405, body=b"method not allowed\n", headers=[("Allow", "GET, HEAD")])
        if request.path == self.telemetry_path:
            return self._metrics(request)
        if request.path == "/":
            return self._compressible(request, "text/html; charset=utf-8", self._landing().encode())
        if request.path == "/-/healthy":
            return Response(200, body=b"Healthy.\n")
        if request.path == "/-/ready":
            return Response(200, body=b"Ready.\n")
        return Response(404, body=b"not found\n")

    def _reload(self, request: Request) -> Response:
        if request.method not in RELOAD_METHODS:
            return Response(405, body=b"method not allowed\n", headers=[("Allow", ", ".join(RELOAD_METHODS))])
        if self.reload is None:
            return Response(403, body=b"Lifecycle API is not enabled.\n")
        log.info("config reload requested over HTTP")
        if self.reload():
            return Response(200, body=b"Config reloaded.\n")
        # 500, as Prometheus answers a failed /-/reload: the request was valid, the server could not apply its
        # files. The reason stays in the log; the answer says no more, so it can never carry a secret.
        return Response(500, body=b"failed to reload the config, keeping the previous one; see the exporter log\n")

    def _metrics(self, request: Request) -> Response:
        state = self.state
        if protocol.negotiate_gzip(request.headers.get("accept-encoding")) is None:
            return Response(406, body=b"neither gzip nor identity encoding is acceptable\n", headers=[("Vary", "Accept-Encoding")])
        budget = scrape_budget(request.headers.get("x-prometheus-scrape-timeout-seconds"), state.config)
        encoder, content_type = choose_encoder(request.header("accept"))
        body = encoder(_Families(state.families(budget)))
        return self._compressible(request, content_type, body)

    def _compressible(self, request: Request, content_type: str, body: bytes) -> Response:
        use_gzip = protocol.negotiate_gzip(request.headers.get("accept-encoding"))
        headers = [("Vary", "Accept-Encoding")]
        if use_gzip is None:
            return Response(406, body=b"neither gzip nor identity encoding is acceptable\n", headers=headers)
        if use_gzip:
            body = gzip.compress(body, compresslevel=1)  # a scrape's CPU matters more than a few kilobytes: 1.3 ms less for 1,000 workers, 7% larger
            headers.append(("Content-Encoding", "gzip"))
        return Response(200, content_type, body, headers)

    def _landing(self) -> str:
        state = self.state
        metrics_link = html.escape(self.telemetry_path)  # checked to hold URL path characters only
        table = "".join(
            f"<tr><td>{html.escape(row.kind)}</td><td>{html.escape(row.name)}</td><td>{html.escape(row.status)}</td>"
            f"<td>{row.seconds * 1000:.1f} ms</td><td>{html.escape(row.detail)}</td></tr>"
            for row in state.target_rows()
        ) or f"<tr><td colspan=5>No scrape yet: open <a href=\"{metrics_link}\">{metrics_link}</a>.</td></tr>"
        hints = "".join(f"<li>{html.escape(hint)}</li>" for hint in state.setup_hints())
        if hints:
            hints = ("<h2>Not found</h2><p>The last scrape found nothing for these parts. If you use them, this is what "
                     f"to set:</p><ul id=\"setup-hints\">{hints}</ul>")
        disabled = sorted(state.config.disabled_collectors)
        collectors = f"<p>Collectors turned off: {html.escape(', '.join(disabled))}.</p>" if disabled else ""
        config = html.escape(json.dumps(state.config_summary(), indent=2))
        return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>SOLLOL exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:left}}</style></head>
<body><h1>SOLLOL exporter</h1><p>Version {html.escape(__version__)} (revision {html.escape(revision())}).
<a href="{metrics_link}">Metrics</a> · <a href="/-/healthy">Health</a> · <a href="/-/ready">Readiness</a></p>
{hints}<h2>Last probe per target</h2><table><tr><th>Kind</th><th>Target</th><th>State</th><th>Probe</th><th>Detail</th></tr>{table}</table>
{collectors}<h2>Configuration</h2><pre>{config}</pre></body></html>
"""


def parse_listen_address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--web.listen-address {value!r}: expected [host]:port")
    return host, int(port)


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening socket. No host (or `::`) means every interface, IPv4 and IPv6 on one dual-stack socket, as
    Go exporters do; IPv4 alone where this host has no IPv6."""
    if host in ("", "::"):
        if socket.has_ipv6:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.bind(("::", port))
                sock.listen(BACKLOG)
                return sock
            except OSError as err:
                sock.close()
                if err.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT):
                    raise
        host = "0.0.0.0"
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def serve(state: State, listen: str, web: WebConfigWatcher | None = None, max_requests: int = 40,
          max_connections: int = 4096, reload: Callable[[], bool] | None = None,
          telemetry_path: str = DEFAULT_TELEMETRY_PATH) -> Server:
    """A server for the exporter on `listen`; call serve_forever(), then shutdown() and server_close().
    `reload` enables POST /-/reload (see Exporter); metrics are served on `telemetry_path`."""
    check_telemetry_path(telemetry_path)
    host, port = parse_listen_address(listen)
    listener = listen_socket(host, port)

    def tls_setup():  # in the selector thread: never waits for a reload, uses the last good context
        loaded = web.current(wait=False)
        return loaded.context, loaded.config.tls.client_allowed_sans

    def headers():  # for the server's own answers (400, 401, 408, 431, 503): the config in force, never a reload
        return list(web.loaded.config.headers.items())

    def users():  # in the selector thread: never waits for a reload, uses the last good users
        return web.current(wait=False).config.users

    return Server([listener], Exporter(state, web, reload, telemetry_path), limited_paths=(telemetry_path,),
                  max_requests=max_requests, max_connections=max_connections,
                  tls=tls_setup if web is not None and web.tls else None, headers=headers if web is not None else None,
                  admission=BasicAuthGate(users) if web is not None else None)
