"""A loopback webhook receiver that records every Alertmanager notification it gets."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    def __init__(self):
        self.notifications: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.notifications.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def matching(self, path: str, status: str, **labels) -> list[dict]:
        """Notifications to `path` holding an alert with this status and these labels."""
        with self.lock:
            found = []
            for where, message in self.notifications:
                if where != path:
                    continue
                for alert in message.get("alerts", []):
                    if alert["status"] == status and all(alert["labels"].get(k) == v for k, v in labels.items()):
                        found.append(message)
                        break
            return found

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
