"""A requests session with bounded reads: a peer cannot make the exporter download megabytes or wait forever."""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests

MAX_BODY_BYTES = 4 * 1_048_576


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict


class FetchError(Exception):
    """`kind` is refused, timeout, dns_error, too_large or error."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def session(user_agent: str) -> requests.Session:
    http = requests.Session()
    http.headers["User-Agent"] = user_agent
    http.trust_env = False
    return http


def fetch(http: requests.Session, url: str, timeout: float, headers: dict | None = None) -> Response:
    """GET url; the whole exchange, body included, must finish within `timeout` seconds."""
    if timeout <= 0:
        raise FetchError("timeout", "no time left in the scrape budget")
    deadline = time.monotonic() + timeout
    try:
        with http.get(url, timeout=(timeout, timeout), headers=headers, stream=True, allow_redirects=False) as reply:
            chunks, size = [], 0
            for chunk in reply.iter_content(65536):
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise FetchError("too_large", f"response larger than {MAX_BODY_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise FetchError("timeout", "response body too slow")
                chunks.append(chunk)
            return Response(reply.status_code, b"".join(chunks), dict(reply.headers))
    except requests.exceptions.ConnectTimeout:
        raise FetchError("timeout", "connect timed out") from None
    except (requests.exceptions.ReadTimeout, requests.exceptions.Timeout):
        raise FetchError("timeout", "read timed out") from None
    except requests.exceptions.ConnectionError as err:
        text = str(err).lower()
        if "refused" in text:
            raise FetchError("refused", "connection refused") from None
        if "name or service not known" in text or "nodename nor servname" in text or "failed to resolve" in text or "name resolution" in text:
            raise FetchError("dns_error", "name resolution failed") from None
        if "timed out" in text:
            raise FetchError("timeout", "timed out") from None
        raise FetchError("error", "connection failed") from None
    except requests.exceptions.RequestException as err:
        raise FetchError("error", type(err).__name__) from None
