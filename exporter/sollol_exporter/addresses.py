"""Target addresses: a host and a port, from any of the forms SOLLOL and its users write."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from sollol_exporter.labels import sanitize

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$")


@dataclass(frozen=True, order=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOSTNAME.fullmatch(host))


def _port(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"port {value!r} is not a number")
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            raise ValueError(f"port {sanitize(value, 32)!r} is not a number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, (int, str)):
        raise ValueError(f"port {sanitize(value, 32)!r} is not a number")
    port = int(value)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range")
    return port


def parse_address(value: object, default_port: int) -> Address:
    """Accept "h", "h:p", "[v6]:p", "scheme://h:p/path" or {"host": .., "port": ..} (port as int or string).

    SOLLOL writes both {"host": "h", "port": "11434"} and {"host": "h:p"}; both end up as Address(h, p).
    Raises ValueError with a short reason for anything that is not a plain host and port.
    """
    if isinstance(value, dict):
        if "url" in value and "host" not in value:
            return parse_address(value["url"], default_port)
        host = value.get("host")
        if not isinstance(host, str):
            raise ValueError("host is missing or not a string")
        address = parse_address(host, default_port)
        if value.get("port") not in (None, ""):
            address = Address(address.host, _port(value["port"]))
        return address
    if not isinstance(value, str):
        raise ValueError(f"address of type {type(value).__name__}")
    text = value.strip()
    if not text or len(text) > 300:
        raise ValueError("address is empty or too long")
    if "://" in text:
        try:
            parts = urlsplit(text)
            host, port = parts.hostname, parts.port
        except ValueError as err:
            raise ValueError(f"bad URL: {err}") from None
        if not host:
            raise ValueError("URL without a host")
        port = port or default_port
    elif text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = _port(rest[1:]) if rest.startswith(":") else default_port
        if rest and not rest.startswith(":"):
            raise ValueError("bad bracketed address")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text)
    elif text.count(":") > 1:
        host, port = text, default_port
    else:
        host, port = text, default_port
    host = host.lower() if host else host
    if not host or not _valid_host(host):
        raise ValueError(f"invalid host {sanitize(host, 64)!r}")
    return Address(host, _port(port))
