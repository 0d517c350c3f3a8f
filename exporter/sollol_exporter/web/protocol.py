"""HTTP/1.x on the wire: request heads parsed strictly, responses framed, Accept-Encoding negotiated (RFC 9110)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VERSION = re.compile(r"^HTTP/(\d)\.(\d)$")


class BadRequest(Exception):
    """A request that cannot be served; answered with `status` and the connection closed."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Request:
    method: str
    target: str
    path: str
    version: tuple[int, int]
    headers: dict[str, str]
    content_length: int = 0
    chunked: bool = False

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.header("connection").split(",")}
        if self.version >= (1, 1):
            return "close" not in tokens
        return "keep-alive" in tokens


@dataclass
class Response:
    status: int
    content_type: str = "text/plain; charset=utf-8"
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Refusal:
    """An answer given instead of serving a request, after which the connection closes."""
    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()


def head_end(buffer: bytes | bytearray) -> int:
    """Index just past the blank line ending a request head, or -1 while it is incomplete."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := buffer.find(sep)) >= 0]
    return min(ends) if ends else -1


def check_request_line(buffer: bytes | bytearray) -> None:
    """Raise BadRequest as soon as a complete first line is not `METHOD target HTTP/x.y` (HTTP/0.9 has no
    version and no headers: its client waits for an answer that a head-reading loop would never give)."""
    end = buffer.find(b"\n")
    if end >= 0:
        _request_line(bytes(buffer[:end]).rstrip(b"\r").decode("latin-1"))
        return
    # Do not wait for a line that can never be a request: a TLS ClientHello or other binary starts with a
    # byte that no method has.
    method = bytes(buffer[:32]).split(b" ", 1)[0].decode("latin-1")
    if method and not _TOKEN.match(method):
        raise BadRequest(400, "not an HTTP request")


def first_path(buffer: bytes | bytearray) -> str:
    """The path of the request whose head starts `buffer` (after empty lines); "" if it has none (yet)."""
    start = len(buffer) - len(buffer.lstrip(b"\r\n"))
    end = buffer.find(b"\n", start)
    if end < 0:
        return ""
    try:
        return _path(_request_line(bytes(buffer[start:end]).rstrip(b"\r").decode("latin-1"))[1])
    except BadRequest:
        return ""


def buffered_request(buffer: bytes | bytearray) -> Request | None:
    """The head of the request that starts `buffer` (after empty lines), parsed; None while it is incomplete, or
    when it is bad (the worker reading it answers that)."""
    start = len(buffer) - len(buffer.lstrip(b"\r\n"))
    end = head_end(buffer[start:start + MAX_HEAD_BYTES + 4])
    if end < 0 or end > MAX_HEAD_BYTES:
        return None
    try:
        return parse_head(bytes(buffer[start:start + end]))
    except BadRequest:
        return None


def _request_line(line: str) -> tuple[str, str, tuple[int, int]]:
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise BadRequest(400, "malformed request line")
    method, target, version_text = parts
    match = _VERSION.match(version_text)
    if not _TOKEN.match(method) or not match:
        raise BadRequest(400, "malformed request line")
    version = (int(match.group(1)), int(match.group(2)))
    if version[0] != 1:
        raise BadRequest(505, "HTTP version not supported")
    return method, target, version


def parse_head(head: bytes) -> Request:
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    method, target, version = _request_line(lines[0])
    headers: dict[str, str] = {}
    seen = 0
    for line in lines[1:]:
        if not line:
            continue
        seen += 1
        if seen > MAX_HEADERS:
            raise BadRequest(431, "too many header fields")
        if line[0] in " \t":
            raise BadRequest(400, "obsolete line folding")
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.match(name):
            raise BadRequest(400, "malformed header field")
        name, value = name.lower(), value.strip(" \t")
        if name in ("host", "content-length") and name in headers and headers[name] != value:
            raise BadRequest(400, f"conflicting {name} fields")
        headers[name] = f"{headers[name]}, {value}" if name in headers and name not in ("host", "content-length") else value
    if version >= (1, 1) and "host" not in headers:
        raise BadRequest(400, "missing Host header")
    request = Request(method, target, _path(target), version, headers)
    if "transfer-encoding" in headers:
        if "content-length" in headers:
            raise BadRequest(400, "both Content-Length and Transfer-Encoding")
        request.chunked = True
    elif "content-length" in headers:
        text = headers["content-length"]
        if not re.fullmatch(r"[0-9]{1,18}", text):  # not str.isdigit(): "²" is a digit to it, not to int()
            raise BadRequest(400, "invalid Content-Length")
        request.content_length = int(text)
    return request


def _path(target: str) -> str:
    if target.startswith("/"):
        return target.split("?", 1)[0]
    if target == "*":
        return "*"
    try:
        parts = urlsplit(target)
    except ValueError:
        raise BadRequest(400, "malformed request target") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise BadRequest(400, "malformed request target")
    return parts.path or "/"


def _codings(header: str) -> dict[str, float]:
    """{coding: q} from an Accept-Encoding value; entries with a malformed q are dropped."""
    codings = {}
    for item in header.split(","):
        name, *params = (p.strip() for p in item.split(";"))
        if not name:
            continue
        q = 1.0
        for param in params:
            key, _, raw = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(raw.strip()) if re.fullmatch(r"(0(\.\d{0,3})?|1(\.0{0,3})?)", raw.strip()) else -1.0
                except ValueError:
                    q = -1.0
        if q >= 0:
            codings.setdefault(name.lower(), q)
    return codings


def negotiate_gzip(header: str | None) -> bool | None:
    """True: send gzip; False: send identity; None: neither is acceptable (406)."""
    if header is None:
        return False
    codings = _codings(header)
    star = codings.get("*")
    gzip_q = codings.get("gzip", codings.get("x-gzip", star if star is not None else 0.0))
    identity_q = codings.get("identity", star if star is not None else 1.0)
    if gzip_q > 0 and gzip_q >= identity_q:
        return True
    if identity_q > 0:
        return False
    return True if gzip_q > 0 else None


def response_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", f"Date: {formatdate(usegmt=True)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def canned(status: int, message: str, extra: list[tuple[str, str]] = ()) -> bytes:
    """A complete short response that closes the connection."""
    body = (message + "\n").encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), ("Connection", "close"), *extra]
    return response_head(status, headers) + body
