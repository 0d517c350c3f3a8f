"""The web config in force, reloaded when its file or a file it names changes (checked by stat on each new
connection and request, as exporter-toolkit re-reads it), or on SIGHUP. A bad new version keeps the previous one.
The selector thread never loads: it asks for a reload in the background and uses the last good version."""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass

from sollol_exporter.logs import debug_traceback, fields
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
    stats: list[tuple] = []
    for path in paths:
        try:
            st = os.stat(path)
            stats.append((path, st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            stats.append((path, None))
    return tuple(stats)


def _load_signed(path: str, files: tuple[str, ...]) -> tuple[Loaded, tuple]:
    """The loaded files and their signature taken BEFORE reading them, so that a change during the load is seen
    at the next check. When the load names other files than `files`, once more with those."""
    for _ in range(3):
        signature = _signature(files)
        loaded = load(path)
        if loaded.config.files() == files:
            return loaded, signature
        files = loaded.config.files()
    return loaded, ()  # the files named keep changing: a signature nothing matches, so the next check reloads


class WebConfigWatcher:
    def __init__(self, path: str):
        self.path = path
        try:
            self.loaded, self.signature = _load_signed(path, (path,))
        except Exception as err:  # never a traceback at start (but at debug level): the file cannot be used, say which
            if isinstance(err, web_config.WebConfigError):
                raise
            log.debug("web config cannot be loaded", exc_info=True, extra=fields(file=path))
            raise web_config.WebConfigError(f"{path}: cannot be loaded: {type(err).__name__}") from None
        self.failed_signature: tuple | None = None
        self.lock = threading.Lock()
        self.background = threading.Lock()  # held while a reload asked for by the selector thread runs
        for note in self.loaded.config.notes:
            log.info("web config", extra=fields(file=path, note=note))

    @property
    def tls(self) -> bool:
        return self.loaded.context is not None

    def current(self, wait: bool = True) -> Loaded:
        """The config in force, reloaded first if a file changed. With wait=False (the selector thread) the
        reload runs in another thread and the last good version is returned at once."""
        signature = _signature(self.loaded.config.files())
        if signature != self.signature and signature != self.failed_signature:
            if wait:
                self._reload(signature)
            elif self.background.acquire(blocking=False):
                threading.Thread(target=self._reload_in_background, args=(signature,), name="web-config-reload", daemon=True).start()
        return self.loaded

    def _reload_in_background(self, signature: tuple) -> None:
        try:
            self._reload(signature)
        finally:
            self.background.release()

    def reload(self) -> bool:
        """SIGHUP: read the file again even if nothing seems to have changed."""
        return self._reload(_signature(self.loaded.config.files()), force=True)

    def _reload(self, signature: tuple, force: bool = False) -> bool:
        with self.lock:
            if not force and signature in (self.signature, self.failed_signature):
                return signature == self.signature  # another thread loaded (or failed) these files while this one waited
            try:
                loaded, loaded_signature = _load_signed(self.path, self.loaded.config.files())
                if (loaded.context is None) != (self.loaded.context is None):
                    raise web_config.WebConfigError(f"{self.path}: turning TLS on or off needs a restart")
            except Exception as err:  # whatever it is, remembered: not retried until the files change again
                self.failed_signature = signature
                # a WebConfigError never quotes a secret; of anything else only the kind is logged
                error = str(err) if isinstance(err, web_config.WebConfigError) else f"{self.path}: cannot be loaded: {type(err).__name__}"
                unexpected = not isinstance(err, web_config.WebConfigError) and debug_traceback(log)
                log.error("web config reload failed, keeping the previous one", exc_info=unexpected, extra=fields(error=error))
                return False
            self.loaded = loaded
            self.signature = loaded_signature
            self.failed_signature = None
        log.info("web config reloaded", extra=fields(file=self.path, tls=loaded.context is not None, users=len(loaded.config.users)))
        return True
