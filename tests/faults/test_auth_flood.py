"""Basic auth under attack: clients sending wrong passwords as fast as they are answered never lock out the
scraper that knows the password. Authentication comes before a request takes a /metrics (or other) allowance,
verified passwords stay cached whatever fails, bcrypt runs one check at a time in turns per client address and user
name, and an unknown user costs what a configured one does.

The flood tests run the exporter as users run it (a subprocess) with a bcrypt cost of 10, as `htpasswd -nBC 10`
makes: each wrong password costs it about 0.1 s of CPU. The queue's own rules are tested in-process at the end."""

from __future__ import annotations

import re
import socket
import threading
import time

import bcrypt
import pytest
import yaml

from tests.support.auth_flood import WrongPasswords, basic, request
from tests.support.collect import base_config
from tests.support.net import free_port
from tests.support.tls import SecuredExporter

ATTACKER = "127.0.0.2"  # another loopback address: another host, as the exporter sees it


def hashed(password: str, cost: int) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


@pytest.fixture(scope="module")
def cost_10():
    return hashed("right", 10)


@pytest.fixture
def secured(tmp_path, redis_db):
    started = []

    def start(users: dict[str, str], **web):
        exporter = SecuredExporter(base_config(redis_db.url, ollama={"discover": False}),
                                   {"basic_auth_users": users, **web}, tmp_path, scheme="http")
        started.append(exporter)
        return exporter

    yield start
    for exporter in started:
        exporter.stop()


def test_cached_scrapes_are_served_through_a_wrong_password_flood(secured, cost_10):
    """45 clients with random passwords on /metrics: every scrape with the verified password is answered at once."""
    exporter = secured({"prometheus": cost_10})
    good = basic("prometheus", "right")
    assert request(exporter.port, "/metrics", good)[0] == 200  # verified once, cached from now on
    with WrongPasswords(exporter.port, 45) as flood:
        time.sleep(1.5)  # every attacker has a request waiting
        scrapes = []
        for _ in range(15):
            scrapes.append(request(exporter.port, "/metrics", good))
            time.sleep(0.1)
    assert [status for status, _ in scrapes] == [200] * 15, (scrapes, flood.statuses)
    assert max(seconds for _, seconds in scrapes) < 2, scrapes
    assert set(flood.statuses) <= {401, 429}, flood.statuses
    log = exporter.read_log()
    assert "Traceback" not in log and "right" not in log


def test_health_checks_are_served_through_a_wrong_password_flood(secured, cost_10):
    """12 attackers were enough on /-/healthy, whose allowance is 8."""
    exporter = secured({"prometheus": cost_10})
    good = basic("prometheus", "right")
    assert request(exporter.port, "/-/healthy", good)[0] == 200
    with WrongPasswords(exporter.port, 12, path="/-/healthy"):
        time.sleep(1.0)
        checks = [request(exporter.port, "/-/healthy", good) for _ in range(10)]
    assert [status for status, _ in checks] == [200] * 10, checks
    assert max(seconds for _, seconds in checks) < 2, checks


def test_a_first_login_waits_for_one_check_per_other_address_not_for_the_flood(secured, cost_10):
    """The password is not cached yet (the first scrape after a start or a password change): it is checked in
    turn with the attackers' address, not behind all 45 of their waiting requests."""
    exporter = secured({"prometheus": cost_10})
    with WrongPasswords(exporter.port, 45, source=ATTACKER) as flood:
        time.sleep(1.5)
        status, seconds = request(exporter.port, "/metrics", basic("prometheus", "right"))
        again = [request(exporter.port, "/metrics", basic("prometheus", "right")) for _ in range(3)]
    assert status == 200 and seconds < 3, (status, seconds, flood.statuses)
    assert all(s == 200 and t < 2 for s, t in again), again
    assert flood.statuses[401] > 0 and set(flood.statuses) <= {401, 429}, flood.statuses


def test_wrong_passwords_never_push_a_verified_one_out_of_the_cache(secured):
    """Hundreds of failures (cheap ones, on a cost-4 user) and the dear password is still answered from the cache."""
    exporter = secured({"prometheus": hashed("right", 12), "cheap": hashed("other", 4)})
    good = basic("prometheus", "right")
    status, first = request(exporter.port, "/metrics", good)
    assert status == 200
    for i in range(300):
        assert request(exporter.port, "/-/healthy", basic("cheap", f"wrong-{i}"))[0] == 401
    status, cached = request(exporter.port, "/metrics", good)
    assert status == 200 and cached < first / 4, (first, cached)


@pytest.mark.parametrize("cost", [4, 12])
def test_an_unknown_user_costs_what_a_configured_one_does(secured, cost):
    """The decoy hash checked for unknown users has the configured cost: never quicker (it would tell which users
    exist), never dearer (a cheap configured cost must not let unknown names cost the CPU of cost 10)."""
    exporter = secured({"prometheus": hashed("right", cost)})

    def quickest(user: str) -> float:
        times = []
        for i in range(3):
            status, seconds = request(exporter.port, "/-/healthy", basic(user, f"wrong-{i}-{time.monotonic()}"))
            assert status == 401
            times.append(seconds)
        return min(times)

    quickest("nobody")  # the first unknown user pays for making the decoy
    known, unknown = quickest("prometheus"), quickest("nobody")
    if cost == 4:
        assert unknown < 4 * known + 0.02, (known, unknown)
    else:
        assert unknown > known / 2, (known, unknown)


def test_wrong_passwords_do_not_use_up_the_rate_limit(secured):
    """rate_limit counts authenticated requests: a flood of wrong ones must not turn the scraper away with 429."""
    exporter = secured({"prometheus": hashed("right", 4)}, rate_limit={"interval": "10s", "burst": 2})
    for i in range(5):
        assert request(exporter.port, "/-/healthy", basic("prometheus", f"wrong-{i}"))[0] == 401
    assert request(exporter.port, "/-/healthy", basic("prometheus", "right"))[0] == 200


def test_pipelined_requests_are_each_authenticated(tmp_path):
    """A wrong password pipelined behind a verified one is not served on the first one's credentials."""
    from sollol_exporter.web.routes import serve
    from sollol_exporter.web.watch import WebConfigWatcher

    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump({"basic_auth_users": {"u": hashed("p", 4)}}))
    port = free_port()
    server = serve(None, f"127.0.0.1:{port}", WebConfigWatcher(str(path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        def pipelined(*passwords: str) -> bytes:
            heads = b"".join(f"GET /-/healthy HTTP/1.1\r\nHost: x\r\nAuthorization: {basic('u', p)}\r\n\r\n".encode() for p in passwords)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(heads)
                sock.shutdown(socket.SHUT_WR)
                reply = b""
                while chunk := sock.recv(65536):
                    reply += chunk
            return reply

        def statuses(reply: bytes) -> list[bytes]:
            return re.findall(rb"HTTP/1\.1 (\d{3}) ", reply)

        assert statuses(pipelined("p", "p")) == [b"200", b"200"]
        assert statuses(pipelined("p", "wrong", "p"))[:2] == [b"200", b"401"]
    finally:
        server.shutdown()
        server.server_close()


# -- the bcrypt queue itself: turns, shared checks, limits ---------------------------------------------------------

class Recorder:
    """Checks that wait for `release` (the first one holds the checker thread) and record the order they ran in."""

    def __init__(self):
        self.release = threading.Event()
        self.ran: list[str] = []
        self.answered: dict[str, object] = {}
        self.done = threading.Condition()

    def check(self, name: str, verdict=None):
        def run():
            self.release.wait(10)
            self.ran.append(name)
            return verdict
        return run

    def resume(self, name: str):
        def answer(verdict):
            with self.done:
                self.answered[name] = verdict
                self.done.notify_all()
        return answer

    def wait_for(self, count: int) -> None:
        with self.done:
            assert self.done.wait_for(lambda: len(self.answered) >= count, 10), self.answered


def submit(checks, recorder: Recorder, name: str, peer: str, user: str = "u", key: bytes | None = None):
    return checks.submit(key or name.encode(), peer, user, recorder.check(name), recorder.resume(name))


def test_addresses_take_turns_then_user_names_within_an_address():
    from sollol_exporter.web.gate import PENDING, FairChecks

    checks, recorder = FairChecks(), Recorder()
    try:
        assert submit(checks, recorder, "first", "10.0.0.1") == PENDING
        time.sleep(0.2)  # the checker has taken it and waits for the release
        for i in range(8):
            submit(checks, recorder, f"flood-{i}", "10.0.0.1")
        submit(checks, recorder, "other-address", "10.0.0.2")
        for i in range(8):
            submit(checks, recorder, f"same-address-{i}", "10.0.0.3", user="attacker")
        submit(checks, recorder, "other-user", "10.0.0.3", user="prometheus")
        recorder.release.set()
        recorder.wait_for(19)
    finally:
        checks.close()
    assert recorder.ran.index("other-address") <= 3, recorder.ran
    assert recorder.ran.index("other-user") <= 6, recorder.ran
    assert recorder.ran[:4] == ["first", "flood-0", "other-address", "same-address-0"], recorder.ran


def test_requests_with_the_same_credentials_share_one_check():
    from sollol_exporter.web.gate import UNAUTHORIZED, FairChecks

    checks, recorder = FairChecks(), Recorder()
    try:
        for name in ("a", "b", "c"):
            checks.submit(b"same", "10.0.0.1", "u", recorder.check(name, UNAUTHORIZED), recorder.resume(name))
        recorder.release.set()
        recorder.wait_for(3)
    finally:
        checks.close()
    assert recorder.ran == ["a"] and set(recorder.answered.values()) == {UNAUTHORIZED}


def test_waiting_requests_are_bounded_per_address_and_in_all():
    from sollol_exporter.web.gate import BUSY, PENDING, TOO_MANY, FairChecks

    checks, recorder = FairChecks(per_peer=3, total=5), Recorder()
    try:
        answers = [submit(checks, recorder, f"a{i}", "10.0.0.1") for i in range(4)]
        assert answers == [PENDING, PENDING, PENDING, TOO_MANY]
        assert submit(checks, recorder, "b0", "10.0.0.2") == PENDING  # another address still gets its turn
        assert submit(checks, recorder, "b1", "10.0.0.2") == PENDING
        assert submit(checks, recorder, "c0", "10.0.0.3") == BUSY  # five waiting in all
        recorder.release.set()
        recorder.wait_for(5)
        assert submit(checks, recorder, "a-later", "10.0.0.1") == PENDING  # answered ones free their places
        recorder.wait_for(6)
    finally:
        checks.close()


def test_a_check_that_waited_past_its_clients_patience_is_not_run():
    from sollol_exporter.web.gate import BUSY, FairChecks

    checks, recorder = FairChecks(max_wait=0.2), Recorder()
    try:
        submit(checks, recorder, "slow", "10.0.0.1")
        submit(checks, recorder, "stale", "10.0.0.2")
        time.sleep(0.5)
        recorder.release.set()
        recorder.wait_for(2)
    finally:
        checks.close()
    assert recorder.ran == ["slow"] and recorder.answered["stale"] is BUSY


def test_closing_answers_every_waiting_request():
    from sollol_exporter.web.gate import BUSY, FairChecks

    checks, recorder = FairChecks(), Recorder()
    submit(checks, recorder, "running", "10.0.0.1")
    submit(checks, recorder, "queued", "10.0.0.2")
    time.sleep(0.2)
    closer = threading.Thread(target=checks.close)
    closer.start()
    recorder.release.set()
    closer.join(5)
    recorder.wait_for(2)
    assert recorder.answered["queued"] is BUSY and recorder.answered["running"] is None
    assert submit(checks, recorder, "after", "10.0.0.3") is BUSY


@pytest.mark.parametrize("address, key", [
    ("192.0.2.7", "192.0.2.7"), ("2001:db8::1", "2001:db8::/64"), ("2001:db8::ffff:1", "2001:db8::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"), ("local", "local"),
])
def test_an_ipv6_client_is_one_address_per_64(address, key):
    from sollol_exporter.web.gate import peer_key

    assert peer_key(address) == key
