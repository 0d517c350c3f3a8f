"""Rules of the exporter config that span fields, and everything start-up would refuse: URLs and addresses that
parse (as redis-py and the HTTP clients will parse them), header values a request can carry, sane timeouts."""

from __future__ import annotations

import re
import unicodedata

import redis

from sollol_exporter.addresses import parse_address
from sollol_exporter.config.model import Config, RedisConfig, coordinator_label
from sollol_exporter.config.yaml_source import Source
from sollol_exporter.peers import OLLAMA_PORT, RPC_SERVER_PORT


def check(config: Config, source: Source) -> None:
    """Rules that span fields, and everything start-up would refuse: URLs and addresses that parse, sane timeouts."""
    _check_redis_url(config.redis, source)
    names = set()
    for index, coordinator in enumerate(config.coordinators):
        path = ("coordinators", index)
        _check_http_url(coordinator.url, (*path, "url"), source)
        for position, backend in enumerate(coordinator.rpc_backends):
            _address(backend, RPC_SERVER_PORT, (*path, "rpc_backends", position), source)
        if coordinator.api_key and coordinator.api_key_file:
            source.fail(path, "set api_key or api_key_file, not both")
        _check_header_value(coordinator.api_key, (*path, "api_key"), source)
        label = coordinator_label(coordinator)
        if label in names:
            source.fail(path, f"two coordinators are both named {label!r}")
        names.add(label)
    _check_port(config.rpc_backends.grpc.port, ("rpc_backends", "grpc", "port"), source)
    for index, static in enumerate(config.rpc_backends.static):
        _address(static.address, RPC_SERVER_PORT, ("rpc_backends", "static", index, "address"), source)
        _check_port(static.grpc.port, ("rpc_backends", "static", index, "grpc", "port"), source)
    for index, node in enumerate(config.ollama.nodes):
        _address(node, OLLAMA_PORT, ("ollama", "nodes", index), source)
    _check_header_value(config.ollama.host_header, ("ollama", "host_header"), source)
    if config.dashboard.enabled:
        _check_http_url(config.dashboard.url, ("dashboard", "url"), source)
    if config.scrape.timeout <= config.scrape.timeout_margin:
        source.fail(("scrape", "timeout"), "must be longer than scrape.timeout_margin")
    channels = config.events.channels
    for kind in ("ollama", "rpc", "traces"):
        if not getattr(channels, kind) or len(getattr(channels, kind)) > 200:
            source.fail(("events", "channels", kind), "must be a channel name of 1 to 200 characters")
    if len({channels.ollama, channels.rpc, channels.traces}) < 3:
        source.fail(("events", "channels"), "the three channels must differ")


_PERCENT_ENCODE = "a user name or password holding '/', '?' or '#' must percent-encode them (%2F, %3F, %23)"


def _refuse_at_after_host(url: str, path: tuple, source: Source) -> None:
    """An '@' past the host means userinfo the URL parser will not see, and part of a password taken as the host."""
    scheme, _, rest = url.partition("://")
    authority_end = min((rest.index(c) for c in "/?#" if c in rest), default=len(rest))
    if scheme == "unix" and authority_end == 0:
        return  # unix:///path: the socket path may hold an '@'
    if "@" in rest[authority_end:]:
        source.fail(path, f"an '@' after the host: {_PERCENT_ENCODE}")


def _check_url_characters(url: str, path: tuple, source: Source) -> None:
    """No control character or white space in a URL or address. Python's URL parser silently drops tabs and line
    breaks, and what was around them would end up on the request line ("GET /x\r\nX-Injected: 1/health")."""
    for position, char in enumerate(url, 1):
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf"):
            source.fail(path, f"holds a control character or white space (U+{ord(char):04X} at character {position}); "
                              "percent-encode it")


def _check_redis_url(settings: RedisConfig, source: Source) -> None:
    """Parse the URL exactly as redis-py will at start, without connecting."""
    path = ("redis", "url")
    _check_url_characters(settings.url, path, source)
    if not settings.url.startswith(("redis://", "rediss://", "unix://")):
        source.fail(path, "must start with redis://, rediss:// or unix://")
    _refuse_at_after_host(settings.url, path, source)
    try:
        client = redis.Redis.from_url(
            settings.url, socket_timeout=settings.timeout, socket_connect_timeout=settings.timeout,
            decode_responses=False, retry_on_timeout=False,
        )
        try:
            client.connection_pool.make_connection()
        finally:
            client.close()
    except TypeError as err:
        option = re.search(r"argument '(\w+)'", str(err))
        source.fail(path, f"redis-py does not know the URL option {option[1] if option else ''!r}")
    except (ValueError, redis.RedisError) as err:
        # Safe to echo: with no '@' past the host, what redis-py quotes is the host, the port or an option.
        source.fail(path, f"redis-py cannot use this URL: {err}")


def _check_http_url(url: str, path: tuple, source: Source) -> None:
    _check_url_characters(url, path, source)
    if not url.startswith(("http://", "https://")):
        source.fail(path, "must start with http:// or https://")
    _refuse_at_after_host(url, path, source)
    _address(url, 80, path, source)


def _check_header_value(value: str, path: tuple, source: Source) -> None:
    """A value sent as an HTTP header: control characters or non-Latin-1 text would fail every request."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        source.fail(path, "holds characters an HTTP header cannot carry (only Latin-1 text)")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        source.fail(path, "holds control characters (a line break?), which an HTTP header cannot carry")


def _check_port(port: int, path: tuple, source: Source) -> None:
    if port > 65535:
        source.fail(path, f"port {port} is out of range")


def _address(value: str, default_port: int, path: tuple, source: Source) -> None:
    _check_url_characters(value, path, source)
    try:
        parse_address(value, default_port)
    except ValueError as err:
        source.fail(path, str(err))
