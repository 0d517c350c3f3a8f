"""A loopback HTTP server that replays canned responses: the stand-in for Ollama and SOLLOL's dashboard,
neither of which can run here. Responses follow their documented shapes (peers.md §3, sollol-data §10)."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Route:
    """A canned answer. `fail_every` > 0 answers every n-th request to it with `fail_status` instead."""

    def __init__(self, body=b"", status=200, delay=0.0, content_type="application/json", fail_every=0, fail_status=500):
        self.body = json.dumps(body).encode() if isinstance(body, (dict, list)) else (body.encode() if isinstance(body, str) else body)
        self.status = status
        self.delay = delay
        self.content_type = content_type
        self.fail_every = fail_every
        self.fail_status = fail_status
        self.served: dict[int, int] = {}  # status -> how many answers
        self._lock = threading.Lock()

    def answer(self) -> int:
        with self._lock:
            count = sum(self.served.values()) + 1
            status = self.fail_status if self.fail_every and count % self.fail_every == 0 else self.status
            self.served[status] = self.served.get(status, 0) + 1
            return status


class ReplayServer:
    def __init__(self, routes: dict[str, Route]):
        self.routes = dict(routes)
        self.requests: list[tuple[str, str, dict]] = []
        self.connections: set = set()
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                replay.connections.add(self.connection)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(min(length, 1_048_576))
                self.do_GET("POST")

            def do_GET(self, method="GET"):
                path = self.path.split("?", 1)[0]
                replay.requests.append((method, path, dict(self.headers)))
                route = replay.routes.get(path) or Route({"error": "not found"}, status=404)
                status = route.answer()
                if route.delay:
                    time.sleep(route.delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", route.content_type)
                    self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.requests]

    def stop(self) -> None:
        """Like a process that exits: the listener and every open keep-alive connection are closed."""
        self.server.shutdown()
        self.server.server_close()
        for connection in list(self.connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def ollama_routes(models=None, version="0.33.0-rc2") -> dict[str, Route]:
    """Ollama v0.33: `/` is plain text, `/api/ps` lists loaded models, `/api/version` the version."""
    if models is None:
        models = [
            {
                "name": "llama3.2:3b",
                "model": "llama3.2:3b",
                "size": 3_400_000_000,
                "digest": "a80c4f17acd5",
                "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                            "parameter_size": "3.2B", "quantization_level": "Q4_K_M"},
                "expires_at": "2099-01-01T00:00:00.123456789Z",
                "size_vram": 3_100_000_000,
                "context_length": 4096,
            }
        ]
    return {
        "/": Route("Ollama is running", content_type="text/plain; charset=utf-8"),
        "/api/ps": Route({"models": models}),
        "/api/version": Route({"version": version}),
        "/api/tags": Route({"models": []}),
        "/api/chat": Route({"model": "llama3.2:3b", "created_at": "2025-11-14T18:02:11.412345Z",
                            "message": {"role": "assistant", "content": "Hello."}, "done": True, "done_reason": "stop",
                            "total_duration": 1000000, "eval_count": 3, "prompt_eval_count": 8}),
    }


def dashboard_routes(apps=None, unified=False) -> dict[str, Route]:
    """dashboard_service (`applications`, `total`) or UnifiedDashboard (adds `active`)."""
    if apps is None:
        apps = [
            {"app_id": "3f1c2a9e-0000-4000-8000-000000000001", "name": "SynapticLlamas (gpu-box)",
             "router_type": "IntelligentRouter", "status": "active", "last_heartbeat": time.time(),
             "started_at": time.time() - 44010, "uptime_seconds": 44010}
        ]
    body = {"applications": apps, "total": len(apps)}
    if unified:
        body["active"] = sum(1 for a in apps if a.get("status") == "active")
    return {"/api/applications": Route(body)}
