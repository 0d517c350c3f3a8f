"""Host-name lookups within a deadline, on a few threads of their own.

`getaddrinfo` cannot be cancelled and has no timeout of its own: a stalled DNS server holds the calling thread for
tens of seconds. Lookups therefore run on a small set of daemon threads that nothing else uses; a caller waits only
until its deadline, and a stalled lookup holds one of these threads, never a reader's or a prober's. IP literals
need no lookup. Answers are kept for a few seconds, so a scrape asks once per name.
"""

from __future__ import annotations

import ipaddress
import queue
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

THREADS = 8
CACHE_SECONDS = 5.0
MAX_CACHED = 4096


class LookupTimeout(Exception):
    """No answer within the deadline (the lookup goes on in the background)."""


class Resolver:
    def __init__(self, lookup: Callable = socket.getaddrinfo, threads: int = THREADS):
        self.lookup = lookup
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._pending: dict[tuple[str, int], Future] = {}
        self._cache: dict[tuple[str, int], tuple[float, list]] = {}
        self._lock = threading.Lock()
        for index in range(threads):
            threading.Thread(target=self._work, name=f"resolve-{index}", daemon=True).start()

    def resolve(self, host: str, port: int, deadline: float) -> list:
        """getaddrinfo(host, port, SOCK_STREAM) answered by `deadline` (time.monotonic()); socket.gaierror if the
        name does not resolve, LookupTimeout if the answer does not come in time."""
        answer = self._start(host, port)
        if not isinstance(answer, Future):
            return answer
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not _wait(answer, remaining):
            raise LookupTimeout(host)
        return answer.result()

    def resolve_many(self, pairs: list[tuple[str, int]], deadline: float) -> dict[tuple[str, int], list | BaseException]:
        """Every (host, port) looked up at once; each answer, or the exception (LookupTimeout past the deadline)."""
        started = {pair: self._start(*pair) for pair in pairs}
        answers: dict[tuple[str, int], list | BaseException] = {}
        for pair, answer in started.items():
            if not isinstance(answer, Future):
                answers[pair] = answer
                continue
            remaining = deadline - time.monotonic()
            if not _wait(answer, max(0.0, remaining)):
                answers[pair] = LookupTimeout(pair[0])
            else:
                error = answer.exception()
                answers[pair] = error if error is not None else answer.result()
        return answers

    def _start(self, host: str, port: int) -> list | Future:
        try:
            family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
        except ValueError:
            pass
        key = (host, port)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            future = self._pending.get(key)
            if future is None:
                future = self._pending[key] = Future()
                self._jobs.put(key)
            return future

    def _work(self) -> None:
        while True:
            key = self._jobs.get()
            future = self._pending[key]
            try:
                answer = self.lookup(key[0], key[1], type=socket.SOCK_STREAM)
            except Exception as err:
                with self._lock:
                    del self._pending[key]
                future.set_exception(err)
                continue
            with self._lock:
                del self._pending[key]
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
                self._cache[key] = (time.monotonic() + CACHE_SECONDS, answer)
            future.set_result(answer)


def _wait(future: Future, seconds: float) -> bool:
    try:
        future.exception(timeout=seconds)
        return True
    except TimeoutError:
        return False


_SHARED: Resolver | None = None
_SHARED_LOCK = threading.Lock()


def shared() -> Resolver:
    """The process's resolver (its threads start with the first lookup)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = Resolver()
        return _SHARED
