import socket
import time

from sollol_exporter.labels import Address
from sollol_exporter.probes import DNS_ERROR, OK, REFUSED, TIMEOUT, Target, tcp
from tests.support.net import close_listener, free_port, full_listener


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
    port = free_port()
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

    port = free_port()
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
