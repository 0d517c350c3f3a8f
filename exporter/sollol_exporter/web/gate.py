"""Basic auth in front of the server's allowances: a request is authenticated before it may take a worker or a
/metrics slot, so that wrong passwords cannot crowd out scrapes.

A request without usable credentials, or whose credentials have a cached verdict, is answered at once (the server
asks from its selector thread). One that needs a bcrypt check waits holding nothing but its socket, in a queue
served by one checker thread: one bcrypt at a time, however many clients send passwords. The queue is fair:
peers (client addresses, an IPv6 client by its /64) take turns, and within a peer its user names take turns, so
that each other address delays a first login by one check at most. Requests with the same credentials share one
check. A peer may keep PEER_WAITING requests waiting and all peers WAITING (beyond that: 429, or 503, at once), and
a check that waited longer than MAX_WAIT is answered 503 without being run: its client has given up by then.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sollol_exporter.logs import debug_traceback, fields
from sollol_exporter.web.auth import BasicAuth, cache_key, credentials
from sollol_exporter.web.protocol import Refusal, Request

log = logging.getLogger(__name__)

PEER_WAITING = 64
WAITING = 512
MAX_WAIT = 10.0  # Prometheus' default scrape timeout
REPORT_INTERVAL = 60.0  # refused checks are logged at most this often, as one line with their count
PENDING = "pending"  # admit's answer when the verdict comes later, through `resume`

UNAUTHORIZED = Refusal(401, "Unauthorized", (("WWW-Authenticate", "Basic"),))
TOO_MANY = Refusal(429, "too many password checks waiting from this address, try again later", (("Retry-After", "1"),))
BUSY = Refusal(503, "too many password checks waiting, try again later", (("Retry-After", "1"),))

Verdict = Refusal | None  # None: admitted
Resume = Callable[[Verdict], None]


def peer_key(address: str) -> str:
    """The unit of fairness: an IPv4 address, an IPv6 client's /64 (one host usually holds the whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class BasicAuthGate:
    """`users` gives the configured users at call time (an empty mapping: no auth); never blocks."""

    def __init__(self, users: Callable[[], dict[str, str]], auth: BasicAuth | None = None):
        self.users = users
        self.auth = auth or BasicAuth()
        self.checks = FairChecks()

    def admit(self, request: Request, peer: str, resume: Resume) -> Verdict | str:
        """None (admitted) or a Refusal now, or PENDING and later `resume(verdict)` from the checker thread."""
        users = self.users()
        header = request.headers.get("authorization")
        verdict = self.auth.known(users, header)
        if verdict is not None:
            return None if verdict else UNAUTHORIZED
        pair = credentials(header)
        if pair is None:  # known() has already refused it
            return UNAUTHORIZED
        user, password = pair

        def check() -> Verdict:
            return None if self.auth.verify(users, header) else UNAUTHORIZED

        return self.checks.submit(cache_key(users, user, password), peer_key(peer), user, check, resume)

    def close(self) -> None:
        self.checks.close()


@dataclass(eq=False)
class _Check:
    key: bytes
    run: Callable[[], Verdict]
    queued: float
    waiting: list[tuple[str, Resume]] = field(default_factory=list)  # (peer, resume) of every request it answers


class FairChecks:
    """The bcrypt queue: one checker thread, started with the first check and stopped by close()."""

    def __init__(self, per_peer: int = PEER_WAITING, total: int = WAITING, max_wait: float = MAX_WAIT):
        self.per_peer = per_peer
        self.total = total
        self.max_wait = max_wait
        self._cond = threading.Condition()
        self._queue: OrderedDict[str, OrderedDict[str, deque[_Check]]] = OrderedDict()  # peer -> user -> checks
        self._checks: dict[bytes, _Check] = {}  # queued or running, by credentials
        self._waiting: Counter[str] = Counter()  # requests waiting, per peer
        self._total = 0  # requests waiting, all peers
        self._thread: threading.Thread | None = None
        self._closed = False
        self._refused = 0
        self._reported = 0.0

    def submit(self, key: bytes, peer: str, user: str, run: Callable[[], Verdict], resume: Resume) -> Verdict | str:
        with self._cond:
            refusal = BUSY if self._closed or self._total >= self.total else None
            if refusal is None and self._waiting[peer] >= self.per_peer:
                refusal = TOO_MANY
            if refusal is not None:
                self._count_refusal()
                return refusal
            self._waiting[peer] += 1
            self._total += 1
            check = self._checks.get(key)
            if check is None:
                check = self._checks[key] = _Check(key, run, time.monotonic())
                self._queue.setdefault(peer, OrderedDict()).setdefault(user, deque()).append(check)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._serve, name="basic-auth", daemon=True)
                    self._thread.start()
                self._cond.notify()
            check.waiting.append((peer, resume))
            return PENDING

    def close(self) -> None:
        """Stop the checker; every request still waiting is answered 503."""
        with self._cond:
            self._closed = True
            queued = [check for users in self._queue.values() for checks in users.values() for check in checks]
            self._queue.clear()
            self._cond.notify_all()
            thread = self._thread
        for check in queued:
            self._finish(check, BUSY)
        if thread is not None:
            thread.join(1.0)  # a bcrypt under way ends by itself; its thread is a daemon

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                check = self._next()
            verdict: Verdict
            if time.monotonic() - check.queued > self.max_wait:
                verdict = BUSY
            else:
                try:
                    verdict = check.run()
                except Exception as err:  # never leave a request waiting
                    log.error("password check failed", exc_info=debug_traceback(log), extra=fields(error=type(err).__name__))
                    verdict = UNAUTHORIZED
            self._finish(check, verdict)

    def _next(self) -> _Check:
        """The next check in turn: the first peer's first user's oldest; both then go to the back of their line."""
        peer, users = next(iter(self._queue.items()))
        user, checks = next(iter(users.items()))
        check = checks.popleft()
        if checks:
            users.move_to_end(user)
        else:
            del users[user]
        if users:
            self._queue.move_to_end(peer)
        else:
            del self._queue[peer]
        return check

    def _finish(self, check: _Check, verdict: Verdict) -> None:
        with self._cond:
            self._checks.pop(check.key, None)
            waiting, check.waiting = check.waiting, []
            self._total -= len(waiting)
            for peer, _ in waiting:
                self._waiting[peer] -= 1
                if self._waiting[peer] <= 0:
                    del self._waiting[peer]
        for _, resume in waiting:
            resume(verdict)

    def _count_refusal(self) -> None:
        self._refused += 1
        now = time.monotonic()
        if now - self._reported >= REPORT_INTERVAL:
            log.warning("password checks refused: too many waiting", extra=fields(refused=self._refused, waiting=self._total))
            self._refused = 0
            self._reported = now
