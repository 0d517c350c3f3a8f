"""The collectors' names, and which of them depend on SOLLOL's Redis.

A name is the collector's `name`, its `--[no-]collector.<name>` flag and the `collector` label of the exporter's
own families; failures, durations, invalid and dropped entries are counted under it. The members are strings, so
the names in `Config.disabled_collectors` compare equal to them.
"""

from __future__ import annotations

from enum import StrEnum


class CollectorName(StrEnum):
    REDIS = "redis"
    METADATA = "metadata"
    GPU = "gpu"
    RPC_NODES = "rpc_nodes"
    ROUTING = "routing"
    COORDINATOR = "coordinator"
    RPC_BACKENDS = "rpc_backends"
    OLLAMA = "ollama"
    APPLICATIONS = "applications"
    EVENTS = "events"
    EXPORTER = "exporter"  # the exporter's own: it reports on the others and cannot be turned off


# Render what the scrape's Redis read returned: with Redis down, each of them fails with it.
RENDER_REDIS_READ = frozenset({
    CollectorName.REDIS, CollectorName.METADATA, CollectorName.GPU, CollectorName.RPC_NODES, CollectorName.ROUTING,
})
# Redis is read in a scrape while any of these is on: those above, and those some of whose targets Redis names.
NEED_REDIS_READ = RENDER_REDIS_READ | {CollectorName.OLLAMA, CollectorName.RPC_BACKENDS}
# Report what SOLLOL writes to its Redis, by the scrape's read or its event channels: while any of these is on, a
# Redis that nothing answers for is a setup question.
REPORT_FROM_REDIS = RENDER_REDIS_READ | {CollectorName.EVENTS}
