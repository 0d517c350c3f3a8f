import socket
import time

from sollol_exporter.addresses import Address
from sollol_exporter.probes import DNS_ERROR, OK, REFUSED, TIMEOUT, Target, tcp
from tests.support.net import close_listener, full_listener, refusing_port


def test_connect_and_close_sends_no_byte():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    results = tcp.probe_all([Target(Address("127.0.0.1", port))], timeout=1, deadline=time.monotonic() + 2)
    assert results[Target(Address("127.0.0.1", port))].outcome == OK
    conn, _ = listener.accept()
    conn.settimeout(2)
    assert conn.recv(1) == b""  # orderly close, nothing sent
    conn.close()
    listener.close()


def test_refused_port_is_refused():
    with refusing_port() as sock:
        port = sock.getsockname()[1]
        result = tcp.probe_all([Target(Address("127.0.0.1", port))], timeout=1, deadline=time.monotonic() + 2)[Target(Address("127.0.0.1", port))]
    assert result.outcome == REFUSED


def test_full_accept_queue_times_out_within_the_probe_timeout():
    listener, port = full_listener()
    try:
        started = time.monotonic()
        result = tcp.probe_all([Target(Address("127.0.0.1", port))], timeout=0.5, deadline=time.monotonic() + 5)[Target(Address("127.0.0.1", port))]
        assert result.outcome == TIMEOUT
        assert time.monotonic() - started < 1.0
    finally:
        close_listener(listener)


def test_deadline_bounds_the_whole_call():
    listener, port = full_listener()
    try:
        started = time.monotonic()
        result = tcp.probe_all([Target(Address("127.0.0.1", port))], timeout=10, deadline=time.monotonic() + 0.3)[Target(Address("127.0.0.1", port))]
        assert result.outcome == TIMEOUT
        assert time.monotonic() - started < 0.8
    finally:
        close_listener(listener)


def test_names_that_do_not_resolve_are_dns_errors():
    def resolver(host, port, type):  # the machine's DNS is not on loopback, so lookups are answered here
        if host == "localhost":
            return socket.getaddrinfo("127.0.0.1", port, type=type)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with refusing_port() as sock:
        port = sock.getsockname()[1]
        results = tcp.probe_all([Target(Address("no-such-worker", 50052)), Target(Address("localhost", port))], timeout=1,
                                deadline=time.monotonic() + 2, resolver=resolver)
    assert results[Target(Address("no-such-worker", 50052))].outcome == DNS_ERROR
    assert results[Target(Address("localhost", port))].outcome == REFUSED


def test_many_targets_share_one_timeout_window():
    listeners = [socket.socket() for _ in range(50)]
    targets = []
    for listener in listeners:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        targets.append(Target(Address("127.0.0.1", listener.getsockname()[1])))
    blackholes = [full_listener() for _ in range(5)]
    targets += [Target(Address("127.0.0.1", port)) for _, port in blackholes]
    try:
        started = time.monotonic()
        results = tcp.probe_all(targets, timeout=0.5, deadline=time.monotonic() + 5, limit=16)
        assert sum(r.outcome == OK for r in results.values()) == 50
        assert sum(r.outcome == TIMEOUT for r in results.values()) == 5
        assert time.monotonic() - started < 1.5
    finally:
        for listener in listeners:
            listener.close()
        for listener, _ in blackholes:
            close_listener(listener)


def test_results_are_reported_as_they_come_in():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    open_port = listener.getsockname()[1]
    blackhole, blocked_port = full_listener()
    reported = []
    try:
        tcp.probe_all([Target(Address("127.0.0.1", blocked_port)), Target(Address("127.0.0.1", open_port))], timeout=0.5,
                      deadline=time.monotonic() + 5, report=lambda target, result: reported.append((target.address.port, result.outcome, time.monotonic())))
        assert [(port, outcome) for port, outcome, _ in reported] == [(open_port, OK), (blocked_port, TIMEOUT)]
        assert reported[1][2] - reported[0][2] > 0.3  # the open port was reported long before the blackhole timed out
    finally:
        listener.close()
        close_listener(blackhole)


def _no_lookup(host, port, type):
    raise AssertionError(f"{host} was looked up")


def test_ip_literals_connect_without_a_name_lookup():
    v4 = socket.socket()
    v4.bind(("127.0.0.1", 0))
    v4.listen(4)
    targets = [Target(Address("127.0.0.1", v4.getsockname()[1]))]
    v6 = None
    if socket.has_ipv6:
        try:
            v6 = socket.socket(socket.AF_INET6)
            v6.bind(("::1", 0))
            v6.listen(4)
            targets.append(Target(Address("::1", v6.getsockname()[1])))
        except OSError:  # no IPv6 loopback here: the IPv4 literal still counts
            v6.close()
            v6 = None
    try:
        results = tcp.probe_all(targets, timeout=1, deadline=time.monotonic() + 2, resolver=_no_lookup)
        assert [results[t].outcome for t in targets] == [OK] * len(targets)
    finally:
        v4.close()
        if v6 is not None:
            v6.close()


def test_targets_with_one_address_share_one_connect():
    """Two targets that connect to the same place (two health services beside one worker, say) cost one connect;
    each gets the result and each is reported."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.5)
    here = Address("127.0.0.1", listener.getsockname()[1])
    first, second = Target(Address("10.0.0.1", 50052), here, "a"), Target(Address("10.0.0.2", 50052), here, "b")
    reported = []
    try:
        results = tcp.probe_all([first, second], timeout=1, deadline=time.monotonic() + 2,
                                report=lambda target, result: reported.append((target, result.outcome)))
        assert results[first].outcome == results[second].outcome == OK
        assert sorted(reported) == sorted([(first, OK), (second, OK)])
        listener.accept()[0].close()
        try:
            listener.accept()[0].close()
            raise AssertionError("a second connect was made")
        except TimeoutError:
            pass
    finally:
        listener.close()


def test_no_more_than_limit_connects_at_once():
    """With limit 2, four blackholed workers time out two by two: twice the probe timeout, not once."""
    blackholes = [full_listener() for _ in range(4)]
    targets = [Target(Address("127.0.0.1", port)) for _, port in blackholes]
    try:
        started = time.monotonic()
        results = tcp.probe_all(targets, timeout=0.3, deadline=time.monotonic() + 5, limit=2)
        elapsed = time.monotonic() - started
        assert [results[t].outcome for t in targets] == [TIMEOUT] * 4
        assert elapsed >= 0.55
    finally:
        for listener, _ in blackholes:
            close_listener(listener)


def test_targets_still_waiting_when_the_deadline_comes_are_not_started():
    (first, first_port), (second, second_port) = full_listener(), full_listener()
    try:
        results = tcp.probe_all([Target(Address("127.0.0.1", first_port)), Target(Address("127.0.0.1", second_port))], timeout=5,
                                deadline=time.monotonic() + 0.3, limit=1)
        assert results[Target(Address("127.0.0.1", first_port))].detail == "connect timed out"
        assert results[Target(Address("127.0.0.1", second_port))].outcome == TIMEOUT
        assert results[Target(Address("127.0.0.1", second_port))].detail == "scrape deadline reached before the probe"
    finally:
        close_listener(first)
        close_listener(second)


def test_a_thousand_workers_in_one_pass_each_get_their_own_answer():
    """Open, refused and blackholed workers mixed in one pass: each gets its own answer."""
    listeners = []
    for _ in range(600):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listeners.append(listener)
    refusing = [refusing_port() for _ in range(390)]
    refused = [sock.getsockname()[1] for sock in refusing]
    blackholes = [full_listener() for _ in range(10)]
    expected = {Target(Address("127.0.0.1", listener.getsockname()[1])): OK for listener in listeners}
    expected |= {Target(Address("127.0.0.1", port)): REFUSED for port in refused}
    expected |= {Target(Address("127.0.0.1", port)): TIMEOUT for _, port in blackholes}
    try:
        results = tcp.probe_all(list(expected), timeout=0.5, deadline=time.monotonic() + 5)
        assert {t: r.outcome for t, r in results.items()} == expected
    finally:
        for listener in listeners + refusing:
            listener.close()
        for listener, _ in blackholes:
            close_listener(listener)
