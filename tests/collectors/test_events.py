"""The events collector: request metrics counted from SOLLOL's activity events, and the subscriber's health."""

from sollol_exporter.collectors.events import EventsCollector
from sollol_exporter.events.counts import BUCKETS, EventsView, Histogram
from sollol_exporter.snapshot import RedisStatus, Snapshot
from tests.support.collect import rendered
from tests.support.exporter import series, value


def histogram(*seconds: float) -> Histogram:
    made = Histogram()
    for each in seconds:
        made.observe(each)
    return made


def view(**counts) -> EventsView:
    empty = dict(subscribed=True, subscription_losses=0.0, received={}, invalid={}, last_received={}, folded={}, requests={}, durations={},
                 errors={}, coordinator_requests={}, coordinator_durations={}, coordinator_tokens={}, lifecycle={}, workers_active={},
                 workers_configured={})
    return EventsView(**{**empty, **counts})


def render(events: EventsView | None) -> dict:
    return rendered(EventsCollector(), Snapshot(now=0.0, budget=10.0, redis=RedisStatus(True), events=events))


def test_the_subscriber_s_own_health_per_channel():
    samples = render(view(subscribed=False, subscription_losses=2.0, received={"ollama": 10.0, "rpc": 3.0}, invalid={"rpc": 1.0},
                          last_received={"ollama": 1_700_000_000.0, "rpc": 1_700_000_050.0}, folded={"model": 4.0}))
    assert value(samples, "sollol_events_subscribed") == 0.0
    assert value(samples, "sollol_events_subscription_losses_total") == 2.0
    assert series(samples, "sollol_events_received_total") == {(("channel", "ollama"),): 10.0, (("channel", "rpc"),): 3.0}
    assert series(samples, "sollol_events_invalid_total") == {(("channel", "ollama"),): 0.0, (("channel", "rpc"),): 1.0}  # 0, not missing
    assert series(samples, "sollol_events_last_received_timestamp_seconds") == {(("channel", "ollama"),): 1_700_000_000.0,
                                                                                (("channel", "rpc"),): 1_700_000_050.0}
    assert series(samples, "sollol_events_label_values_folded_total") == {(("label", "model"),): 4.0}


def test_ollama_requests_errors_and_latency_histograms():
    key = ("10.0.0.5:11434", "llama3.2", "chat", "false")
    samples = render(view(requests={(*key[:3], "success", "false"): 2.0, (*key[:3], "error", "false"): 1.0},
                          durations={key: histogram(0.04, 1.5)}, errors={("10.0.0.5:11434", "llama3.2", "timeout"): 1.0}))
    labels = (("model", "llama3.2"), ("node", "10.0.0.5:11434"), ("operation", "chat"))
    assert series(samples, "sollol_requests_total") == {(*labels, ("outcome", "success"), ("streaming", "false")): 2.0,
                                                        (*labels, ("outcome", "error"), ("streaming", "false")): 1.0}
    buckets = {dict(labels)["le"]: count for labels, count in series(samples, "sollol_request_duration_seconds_bucket").items()}
    assert buckets == {**{repr(float(b)): (0.0 if b < 0.04 else 1.0 if b < 1.5 else 2.0) for b in BUCKETS}, "+Inf": 2.0}  # cumulative
    assert series(samples, "sollol_request_duration_seconds_count") == {(*labels, ("streaming", "false")): 2.0}
    assert series(samples, "sollol_request_duration_seconds_sum") == {(*labels, ("streaming", "false")): 1.54}
    assert series(samples, "sollol_request_errors_total") == {(("model", "llama3.2"), ("node", "10.0.0.5:11434"), ("reason", "timeout")): 1.0}


def test_coordinator_requests_tokens_lifecycle_and_workers():
    coordinator = ("coordinator", "main")
    samples = render(view(coordinator_requests={("main", "tiny", "success"): 4.0}, coordinator_durations={("main", "tiny"): histogram(0.2)},
                          coordinator_tokens={("main", "tiny"): 32.0}, lifecycle={("main", "start"): 1.0, ("main", "model_load"): 1.0},
                          workers_active={"main": 2.0}, workers_configured={"main": 3.0}))
    assert series(samples, "sollol_coordinator_requests_total") == {(coordinator, ("model", "tiny"), ("outcome", "success")): 4.0}
    assert series(samples, "sollol_coordinator_request_duration_seconds_count") == {(coordinator, ("model", "tiny")): 1.0}
    assert series(samples, "sollol_coordinator_request_duration_seconds_bucket")[(coordinator, ("le", "0.25"), ("model", "tiny"))] == 1.0
    assert series(samples, "sollol_coordinator_request_duration_seconds_bucket")[(coordinator, ("le", "0.1"), ("model", "tiny"))] == 0.0
    assert series(samples, "sollol_coordinator_completion_tokens_total") == {(coordinator, ("model", "tiny")): 32.0}
    assert series(samples, "sollol_coordinator_lifecycle_events_total") == {(coordinator, ("event", "start")): 1.0,
                                                                            (coordinator, ("event", "model_load")): 1.0}
    assert series(samples, "sollol_coordinator_rpc_backends_active") == {(coordinator,): 2.0}
    assert series(samples, "sollol_coordinator_rpc_backends_configured") == {(coordinator,): 3.0}


def test_before_any_event_only_the_subscriber_s_state_is_shown():
    assert render(view()) == {("sollol_events_subscribed", ()): 1.0, ("sollol_events_subscription_losses_total", ()): 0.0}


def test_events_turned_off_render_nothing():
    assert list(EventsCollector().collect(Snapshot(now=0.0, budget=10.0, redis=RedisStatus(True)))) == []
