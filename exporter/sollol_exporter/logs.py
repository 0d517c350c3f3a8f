"""Log lines as logfmt or JSON, one line per event, never a traceback unless --log.level=debug, never a secret."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time

from sollol_exporter import redact

LEVELS = ("debug", "info", "warn", "error")
log = logging.getLogger("sollol_exporter")


def fields(**values: object) -> dict:
    """Structured values for a log call: log.warning("msg", extra=fields(target=x))."""
    return {"fields": values}


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "-._:/@" for c in text):
        return text
    return json.dumps(text)


def _masked(key: str, value: object) -> object:
    """Numbers pass; everything else is text with secrets masked (a peer's error may echo a URL or key)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if redact.is_secret_name(key) and value != "":
        return redact.SECRET
    return redact.text(str(value))


class Formatter(logging.Formatter):
    def __init__(self, style: str, debug: bool):
        super().__init__()
        self.style = style
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": {"WARNING": "warn"}.get(record.levelname, record.levelname.lower()),
            "logger": record.name.replace("sollol_exporter.", ""),
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info and self.debug:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_info and record.exc_info[0] is not None:
            entry["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"[:300]
        entry = {key: _masked(key, value) for key, value in entry.items()}
        if self.style == "json":
            return json.dumps(entry, default=str)
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in entry.items())


def _log_uncaught(exc_type, exc_value, exc_traceback, thread_name: str) -> None:
    log.error("uncaught exception", exc_info=(exc_type, exc_value, exc_traceback), extra=fields(thread=thread_name))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback, args.thread.name if args.thread else "?")


def _excepthook(exc_type, exc_value, exc_traceback) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc_value, exc_traceback)
        return
    _log_uncaught(exc_type, exc_value, exc_traceback, "main")


def setup(level: str, style: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Formatter(style, level == "debug"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel({"warn": logging.WARNING}.get(level, getattr(logging, level.upper(), logging.INFO)))
    for noisy in ("urllib3", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Whatever escapes goes through the formatter too: one line, secrets masked, traceback only at debug.
    logging.captureWarnings(True)
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook


def debug_traceback(logger: logging.Logger) -> bool:
    """exc_info for a catch-all's error line: the traceback only when debug logging is on. At other levels a user
    reads one line saying what failed, never a stack trace."""
    return logger.isEnabledFor(logging.DEBUG)
