"""A loopback HTTP server that replays canned responses: the stand-in for Ollama and SOLLOL's dashboard,
neither of which can run here. Responses follow their documented shapes (docs/peers.md#ollama-endpoints, docs/sollol.md#application-registry)."""

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


class OllamaChatRoute(Route):
    """Ollama's `/api/chat`, streamed unless the request says `"stream": false` (Ollama's default is to stream):
    `application/x-ndjson` in chunked encoding, one JSON object a line, `done: false` chunks that each carry a piece
    of `message.content`, then a `done: true` object with the timings. Unstreamed, the whole answer in one object.

    Every `fail_every`-th streamed and every `fail_every`-th unstreamed request (counted apart, so that both kinds
    fail however they interleave) is answered `fail_status` with Ollama's error object. Every `break_every`-th
    streamed answer stops after `break_after` chunks: the connection closes without the rest and without the
    last chunk of the encoding, as when the node dies in the middle of a generation. `chunk_delay` seconds pass
    before each chunk. `answers` counts what was served: {(streamed, status or "broken"): count}."""

    WORDS = ("Hello", "!", " How", " can", " I", " help", "?")

    def __init__(self, model="llama3.2:3b", fail_every=0, fail_status=500, break_every=0, break_after=2, chunk_delay=0.0):
        super().__init__(fail_every=fail_every, fail_status=fail_status)
        self.model, self.break_every, self.break_after, self.chunk_delay = model, break_every, break_after, chunk_delay
        self.answers: dict[tuple[bool, int | str], int] = {}
        self._requests = {True: 0, False: 0}
        self._streams = 0

    def served_count(self, streamed: bool, outcome) -> int:
        return self.answers.get((streamed, outcome), 0)

    def _decide(self, streamed: bool) -> int | str:
        with self._lock:
            self._requests[streamed] += 1
            if self.fail_every and self._requests[streamed] % self.fail_every == 0:
                outcome = self.fail_status
            elif streamed:
                self._streams += 1
                outcome = "broken" if self.break_every and self._streams % self.break_every == 0 else 200
            else:
                outcome = 200
            self.answers[(streamed, outcome)] = self.answers.get((streamed, outcome), 0) + 1
            status = 200 if outcome == "broken" else outcome
            self.served[status] = self.served.get(status, 0) + 1
            return outcome

    def _chunk(self, content: str) -> dict:
        return {"model": self.model, "created_at": "2025-11-14T18:02:11.412345Z", "message": {"role": "assistant", "content": content}, "done": False}

    def _final(self, content: str = "") -> dict:
        return {"model": self.model, "created_at": "2025-11-14T18:02:11.512345Z", "message": {"role": "assistant", "content": content},
                "done": True, "done_reason": "stop", "total_duration": 105_000_000, "load_duration": 1_200_000,
                "prompt_eval_count": 8, "prompt_eval_duration": 9_000_000, "eval_count": len(self.WORDS), "eval_duration": 90_000_000}

    def respond(self, handler, body: bytes) -> None:
        try:
            streamed = json.loads(body or b"{}").get("stream", True) is not False
        except (ValueError, AttributeError):
            streamed = True
        outcome = self._decide(streamed)
        try:
            if outcome not in (200, "broken"):
                self._send(handler, outcome, "application/json; charset=utf-8", json.dumps({"error": "model runner has unexpectedly stopped"}).encode())
            elif not streamed:
                self._send(handler, 200, "application/json; charset=utf-8", json.dumps(self._final("".join(self.WORDS))).encode())
            else:
                self._stream(handler, broken=outcome == "broken")
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def _send(handler, status: int, content_type: str, payload: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _stream(self, handler, broken: bool) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/x-ndjson")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        lines = [self._chunk(word) for word in self.WORDS] + [self._final()]
        for index, line in enumerate(lines):
            if broken and index == self.break_after:
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            if self.chunk_delay:
                time.sleep(self.chunk_delay)
            data = json.dumps(line).encode() + b"\n"
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        handler.wfile.write(b"0\r\n\r\n")


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
                self.body = self.rfile.read(min(length, 1_048_576))
                self.do_GET("POST")

            def do_GET(self, method="GET"):
                path = self.path.split("?", 1)[0]
                replay.requests.append((method, path, dict(self.headers)))
                route = replay.routes.get(path) or Route({"error": "not found"}, status=404)
                if isinstance(route, OllamaChatRoute):
                    route.respond(self, getattr(self, "body", b""))
                    return
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
