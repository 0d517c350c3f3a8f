"""Hostile `X-Prometheus-Scrape-Timeout-Seconds` values never lose a scrape: the budget is clamped to a sane range."""

import pytest
import requests

from tests.support.collect import base_config
from tests.support.exporter import parse, value

HOSTILE = ["inf", "-inf", "Infinity", "nan", "NaN", "1e10", "1e309", "-1e309", "-5", "0", "-0", "1e-300", "garbage",
           "", "9" * 5000, "1" * 40, "0x10", "5;q=1", "\u00e9t\u00e9"]


@pytest.fixture
def exporter(start_exporter, redis_db):
    return start_exporter(base_config(redis_db.url, ollama={"discover": False}, scrape={"timeout_margin": "250ms"}))


@pytest.mark.parametrize("header", HOSTILE)
def test_hostile_timeout_header_keeps_the_scrape(exporter, header):
    reply = requests.get(exporter.url + "/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": header.encode("utf-8")}, timeout=30)
    assert reply.status_code == 200
    samples = parse(reply.text)
    assert value(samples, "sollol_redis_up") == 1, reply.text[:300]
    assert value(samples, "sollol_exporter_collection_error") is None
    budget = value(samples, "sollol_exporter_scrape_timeout_seconds")
    assert budget is not None and 0.1 <= budget <= 120


def test_huge_timeout_is_clamped_and_small_ones_keep_a_floor(exporter):
    assert value(exporter.scrape(timeout="1e10"), "sollol_exporter_scrape_timeout_seconds") == pytest.approx(120 - 0.25)
    assert value(exporter.scrape(timeout="-5"), "sollol_exporter_scrape_timeout_seconds") == pytest.approx(0.1)
    assert value(exporter.scrape(timeout="3"), "sollol_exporter_scrape_timeout_seconds") == pytest.approx(2.75)
    assert "Traceback" not in exporter.read_log()
