"""PromQL the dashboards share: the selectors every query is written with, the filter variables' matchers, and the
expressions more than one dashboard shows."""

from __future__ import annotations

from dataclasses import dataclass

from mixin.config import Config

# The filter variables, as matchers on the label each one filters.
C, B, N, M = 'coordinator=~"$coordinator"', 'backend=~"$backend"', 'node=~"$node"', 'model=~"$model"'
# Latency defaults to unary requests: a stream's latency is its whole generation.
UNARY, STREAMED = 'streaming="false"', 'streaming="true"'
QUANTILES = ("0.5", "0.95", "0.99")


@dataclass(frozen=True)
class Selectors:
    """The selectors of one rendering, as the rules write theirs (Config.series): every selector of the exporter's
    series starts with the job selector and `<cluster label>=~"$cluster"`; recording rules and alerts drop the job
    label, so theirs start with the cluster matcher alone. The SLO constants Sloth writes (slo:objective:ratio,
    slo:error_budget:ratio, slo:time_period:days, sloth_slo_info) carry no cluster label and are written bare."""

    cfg: Config

    @property
    def cluster(self) -> str:
        return f'{self.cfg.cluster_label}=~"$cluster"'

    def series(self, name: str, *matchers: str) -> str:
        """A selector of the exporter's series (or of its scrape job's: `up`, `process_*`); with no name, `{...}`."""
        return self.cfg.series(name, self.cluster, *matchers)

    def recorded(self, name: str, *matchers: str) -> str:
        """A selector of a recording rule's series or of ALERTS."""
        return f"{name}{{{','.join((self.cluster, *matchers))}}}"


def quantile(q: str) -> str:
    """The matcher of one quantile of a recorded percentile."""
    return f'quantile="{q}"'


def percentile(q: str) -> str:
    """"0.95" -> "p95", "0.5" -> "p50"."""
    return f"p{q[2:].ljust(2, '0')}"


@dataclass(frozen=True)
class StateCodes:
    """The states of one family (`<metric>{state=...} == 1` per part) as one number each, 1, 2, ... in the order
    given, so that a table or a timeline can colour and name them."""

    metric: str
    part: str                                  # the label of the part the states are of
    filtered_by: str                           # the matcher of that label's filter variable
    states: tuple[tuple[str, str, str], ...]   # (state matcher, name shown, colour)

    def expr(self, sel: Selectors) -> str:
        codes = [f"({sel.series(self.metric, matcher, self.filtered_by)} == 1) * 0 + {code}"
                 for code, (matcher, _, _) in enumerate(self.states, start=1)]
        return f"max by ({self.part}) (" + " or ".join(codes) + ")"

    def names(self) -> dict[str, tuple[str, str]]:
        return {str(code): (name, colour) for code, (_, name, colour) in enumerate(self.states, start=1)}


# A worker by the exporter's rule: busy is held by its coordinator, not down.
RPC_STATES = StateCodes("sollol_rpc_backend_state", "backend", B, (
    ('state=~"reachable|serving"', "HEALTHY", "green"),
    ('state="busy"', "BUSY", "blue"),
    ('state=~"refused|not_serving|error"', "OFFLINE", "red"),
    ('state=~"unreachable|dns_error"', "UNREACHABLE", "orange"),
))
# ABSENT: a default address where no coordinator was ever expected or seen (no llama.cpp here); not an outage.
COORDINATOR_STATES = StateCodes("sollol_coordinator_state", "coordinator", C, (
    ('state="ok"', "OK", "green"),
    ('state="loading"', "LOADING", "blue"),
    ('state="stalled"', "STALLED", "orange"),
    ('state=~"hung|unreachable|error"', "DOWN", "red"),
    ('state="absent"', "ABSENT", "text"),
))


def lifecycle_events(sel: Selectors) -> str:
    """A coordinator lifecycle event is an increase of its counter, or the counter's first appearance (its first
    event after the exporter started: the series is born at 1, which increase() cannot see)."""
    events = sel.series("sollol_coordinator_lifecycle_events_total", C)
    return (f"sum by (coordinator, event) (increase({events}[$__rate_interval]) > 0 or "
            f"({events} unless {events} offset $__rate_interval))")
