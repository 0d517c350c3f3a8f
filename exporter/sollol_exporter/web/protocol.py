"""HTTP/1.x on the wire: requests read with h11, responses framed, Accept-Encoding negotiated (RFC 9110)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import urlsplit

import h11

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
_VERSION_AT_END = re.compile(rb" HTTP/[0-9]\.[0-9]\Z")
_QUOTED = re.compile(r":?\s*(bytearray\()?b['\"].*", re.S)


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


class RequestReader:
    """One request read from bytes as they arrive, parsed by h11: its head, then its body. A connection takes a new
    reader for each request and feeds it what the last one left over.

    Around h11, what this server keeps doing its own way: empty lines before a request line are dropped (RFC 9112
    2.2; h11 refuses them) and counted in `blank`, so that the caller can cap them; a head is at most MAX_HEAD_BYTES
    even when it arrives whole (h11 limits only what is still incomplete) and MAX_HEADERS fields; a request line
    without an HTTP version (HTTP/0.9, whose client waits for an answer without sending a head) is refused as soon
    as it ends; a major version other than 1 is a 505."""

    __slots__ = ("_fed", "_line_seen", "_line_tail", "_parser", "blank", "request")

    def __init__(self) -> None:
        self._parser: h11.Connection | None = None  # made with the first byte: an idle connection costs none
        self._fed = 0  # head bytes given to h11
        self._line_tail = b""  # the last bytes of a request line whose end has not come yet
        self._line_seen = False
        self.blank = 0  # bytes of empty lines dropped before the request line
        self.request: Request | None = None

    @property
    def started(self) -> bool:
        """True once a byte of a request (not of an empty line before it) has arrived."""
        return self._fed > 0

    def feed(self, data: bytes) -> Request | None:
        """The request once its head is whole; None while it is not. Raises BadRequest. Bytes after the head
        (its body, the next request) are kept for body_pending() and leftover()."""
        if self.request is not None:
            self._h11().receive_data(data)
            return self.request
        if not self._fed:
            start = len(data) - len(data.lstrip(b"\r\n"))
            if start:
                self.blank += start
                data = data[start:]
            if not data:
                return None
        room = MAX_HEAD_BYTES - self._fed
        head, rest = (data, b"") if len(data) <= room else (data[:room], data[room:])
        self._fed += len(head)
        if not self._line_seen:
            self._check_request_line(head)
        self._h11().receive_data(head)
        event = self._next()
        if event is h11.NEED_DATA:
            if self._fed >= MAX_HEAD_BYTES:
                raise BadRequest(431, "request head too large")
            return None
        self.request = _request(event)
        if rest:
            self._h11().receive_data(rest)
        return self.request

    def body_pending(self) -> bool:
        """Drop the body bytes fed so far: True while more are needed, False once the body is whole."""
        while True:
            event = self._next()
            if event is h11.NEED_DATA:
                return True
            if not isinstance(event, h11.Data):
                return False  # EndOfMessage, or PAUSED after it

    @property
    def expects_continue(self) -> bool:
        """The client sent `Expect: 100-continue` (HTTP/1.1) and has not started its body."""
        return self._h11().they_are_waiting_for_100_continue

    def leftover(self) -> bytes:
        """What was fed beyond this request: the start of the next one."""
        return self._parser.trailing_data[0] if self._parser is not None else b""

    def _h11(self) -> h11.Connection:
        if self._parser is None:
            self._parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES + 1)
        return self._parser

    def _next(self):
        try:
            return self._h11().next_event()
        except h11.RemoteProtocolError as err:
            raise BadRequest(err.error_status_hint, _reason(err)) from None

    def _check_request_line(self, head: bytes) -> None:
        end = head.find(b"\n")
        if end < 0:
            self._line_tail = (self._line_tail + head)[-16:]
            return
        self._line_seen = True
        line = (self._line_tail + head[max(0, end - 16):end]).rstrip(b"\r")
        if not _VERSION_AT_END.search(line):
            raise BadRequest(400, "request line without an HTTP version")


def _reason(err: h11.RemoteProtocolError) -> str:
    """h11's message without the client's bytes it quotes (a header line may hold credentials)."""
    return _QUOTED.sub("", str(err))[:200] or "malformed request"


def _request(event: h11.Request) -> Request:
    version = (int(event.http_version[:1]), int(event.http_version[2:3]))
    if version[0] != 1:
        raise BadRequest(505, "HTTP version not supported")
    if len(event.headers) > MAX_HEADERS:
        raise BadRequest(431, "too many header fields")
    headers: dict[str, str] = {}
    for raw_name, raw_value in event.headers:  # lower-cased; h11 refused a second Host, merged equal Content-Lengths
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    target = event.target.decode("latin-1")
    request = Request(event.method.decode("latin-1"), target, _path(target), version, headers)
    if "transfer-encoding" in headers:  # h11 accepts "chunked" only (501 otherwise); it wins over Content-Length
        request.chunked = True
    elif "content-length" in headers:
        request.content_length = int(headers["content-length"])  # digits only, checked by h11
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
    codings: dict[str, float] = {}
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


def canned(status: int, message: str, extra: Sequence[tuple[str, str]] = ()) -> bytes:
    """A complete short response that closes the connection."""
    body = (message + "\n").encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), ("Connection", "close"), *extra]
    return response_head(status, headers) + body
