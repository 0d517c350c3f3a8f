"""The password check queue: a check that fails unexpectedly refuses its requests and is logged with its
traceback at debug level only."""

from __future__ import annotations

import logging
import threading

import pytest

from sollol_exporter.web.gate import PENDING, UNAUTHORIZED, FairChecks


@pytest.mark.parametrize("level, traceback", [(logging.DEBUG, True), (logging.INFO, False)])
def test_a_failing_check_is_unauthorized_and_logged(caplog, level, traceback):
    checks = FairChecks()
    answered = threading.Event()
    verdicts = []

    def resume(verdict):
        verdicts.append(verdict)
        answered.set()

    def broken():
        raise RuntimeError("broken on purpose")

    try:
        with caplog.at_level(level, logger="sollol_exporter"):
            assert checks.submit(b"key", "127.0.0.1", "user", broken, resume) == PENDING
            assert answered.wait(5)
    finally:
        checks.close()
    assert verdicts == [UNAUTHORIZED]
    [record] = [r for r in caplog.records if r.getMessage() == "password check failed"]
    assert record.levelno == logging.ERROR and bool(record.exc_info) is traceback
