"""The web config in force, reloaded when its file or a file it names changes (checked by stat on each new
connection and request, as exporter-toolkit re-reads it), or on SIGHUP. A bad new version keeps the previous one."""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass

from sollol_exporter.logs import fields
from sollol_exporter.web import config as web_config
from sollol_exporter.web import tls as web_tls

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    config: web_config.WebConfig
    context: ssl.SSLContext | None


def load(path: str) -> Loaded:
    """Parse the file and build its TLS context: everything a start would check. Raises WebConfigError."""
    config = web_config.load(path)
    context = web_tls.server_context(config.tls, path) if config.tls else None
    return Loaded(config, context)


def _signature(paths: tuple[str, ...]) -> tuple:
    stats = []
    for path in paths:
        try:
            st = os.stat(path)
            stats.append((path, st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            stats.append((path, None))
    return tuple(stats)


class WebConfigWatcher:
    def __init__(self, path: str):
        self.path = path
        self.loaded = load(path)
        self.signature = _signature(self.loaded.config.files())
        self.failed_signature: tuple | None = None
        self.lock = threading.Lock()
        for note in self.loaded.config.notes:
            log.info("web config", extra=fields(file=path, note=note))

    @property
    def tls(self) -> bool:
        return self.loaded.context is not None

    def current(self) -> Loaded:
        signature = _signature(self.loaded.config.files())
        if signature != self.signature and signature != self.failed_signature:
            self._reload(signature)
        return self.loaded

    def reload(self) -> bool:
        """SIGHUP: read the file again even if nothing seems to have changed."""
        return self._reload(_signature(self.loaded.config.files()))

    def _reload(self, signature: tuple) -> bool:
        with self.lock:
            try:
                loaded = load(self.path)
                if (loaded.context is None) != (self.loaded.context is None):
                    raise web_config.WebConfigError(f"{self.path}: turning TLS on or off needs a restart")
            except web_config.WebConfigError as err:
                self.failed_signature = signature
                log.error("web config reload failed, keeping the previous one", extra=fields(error=str(err)))
                return False
            self.loaded = loaded
            self.signature = _signature(loaded.config.files())
            self.failed_signature = None
        log.info("web config reloaded", extra=fields(file=self.path, tls=loaded.context is not None, users=len(loaded.config.users)))
        return True
