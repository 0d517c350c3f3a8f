"""What SOLLOL told us, kept for the life of the process: here, the ggml handshakes and their back-off."""

import time

from sollol_exporter.addresses import Address
from sollol_exporter.cluster import ClusterState
from sollol_exporter.probes import BUSY, ERROR, OK, REFUSED, TIMEOUT, ProbeResult, Target


def test_every_handshake_that_did_not_complete_backs_off_and_an_answer_is_kept():
    cluster = ClusterState(300.0, 300.0)
    outcomes = {OK: ProbeResult(OK, 0.01, version="3.0.0", devices=((1, 2),)), BUSY: ProbeResult(BUSY, 1.0),
                TIMEOUT: ProbeResult(TIMEOUT, 1.0), ERROR: ProbeResult(ERROR, 0.1, "no answer to a reply"),
                REFUSED: ProbeResult(REFUSED, 0.0)}
    targets = {outcome: Target(Address("10.0.0.1", 50052 + n)) for n, outcome in enumerate(outcomes)}
    cluster.record_handshakes({targets[o]: r for o, r in outcomes.items()}, time.time(), backoff=300.0)
    backed_off = {o for o, t in targets.items() if cluster.handshake_backoff.get(t.address, 0.0) > time.monotonic() + 200}
    assert backed_off == {BUSY, TIMEOUT, ERROR, REFUSED}
    assert set(cluster.handshakes) == {targets[OK].address}
