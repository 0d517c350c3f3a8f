"""Log lines as logfmt or JSON, one line per event, never a traceback unless --log.level=debug."""

from __future__ import annotations

import json
import logging
import sys
import time

LEVELS = ("debug", "info", "warn", "error")


def fields(**values: object) -> dict:
    """Structured values for a log call: log.warning("msg", extra=fields(target=x))."""
    return {"fields": values}


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "-._:/@" for c in text):
        return text
    return json.dumps(text)


class Formatter(logging.Formatter):
    def __init__(self, style: str, debug: bool):
        super().__init__()
        self.style = style
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": {"WARNING": "warn"}.get(record.levelname, record.levelname.lower()),
            "logger": record.name.replace("sollol_exporter.", ""),
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info and self.debug:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_info:
            entry["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"[:300]
        if self.style == "json":
            return json.dumps(entry, default=str)
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in entry.items())


def setup(level: str, style: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Formatter(style, level == "debug"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel({"warn": logging.WARNING}.get(level, getattr(logging, level.upper(), logging.INFO)))
    for noisy in ("urllib3", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
