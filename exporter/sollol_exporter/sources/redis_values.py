"""SOLLOL's per-node Redis values, parsed: GPU reports (`sollol:gpu:{node}`) and worker registrations
(`sollol:rpc:node:{ip}:{port}`). A bad value costs that key only and is counted; so does a number outside what the
reporter could have measured, and a report timestamp from the future.

Parsing has a CPU budget per read (MAX_PARSE_SECONDS of this thread's CPU time for each prefix): keys left when it is
spent are counted as dropped, so a read of many large values cannot hold a scrape.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sollol_exporter.addresses import parse_address
from sollol_exporter.labels import sanitize
from sollol_exporter.peers import GPU_PREFIX, RPC_NODE_PREFIX, RPC_SERVER_PORT
from sollol_exporter.sources.redis_reader import Value
from sollol_exporter.values import MAX_COUNT, MAX_MEBIBYTES, BadValue, decode_json, epoch_seconds, flag, items, number, text

MIB = 1_048_576
MAX_DEVICES = 64
# GPUs in all the reports of one read: a few boxes have a few dozen; thousands of keys of 64 devices each would be
# hundreds of thousands of series. Past it, devices are counted as dropped.
MAX_TOTAL_DEVICES = 1024
MAX_PARSE_SECONDS = 0.5


@dataclass(frozen=True)
class Gpu:
    index: str
    name: str
    values: dict[str, float]  # memory_total/free/used (bytes), utilization (ratio), temperature (celsius)


@dataclass(frozen=True)
class GpuReport:
    node: str
    vendor: str
    gpus: tuple[Gpu, ...]
    timestamp: float | None


@dataclass(frozen=True)
class Registration:
    backend: str
    has_gpu: float | None
    gpu_memory: tuple[tuple[str, str, float], ...]  # (index, name, bytes)
    cpu_memory: float | None
    parallel_workers: float | None


@dataclass
class Parsed:
    items: list = field(default_factory=list)
    invalid: int = 0
    dropped: int = 0
    errors: list[str] = field(default_factory=list)


# (exported field, reporter's field, scale, plausible range of the reporter's value)
_GPU_FIELDS = (
    ("memory_total", "memory_total_mb", MIB, (0.0, MAX_MEBIBYTES)),
    ("memory_free", "memory_free_mb", MIB, (0.0, MAX_MEBIBYTES)),
    ("memory_used", "memory_used_mb", MIB, (0.0, MAX_MEBIBYTES)),
    ("utilization", "utilization_percent", 0.01, (0.0, 100.0)),
    ("temperature", "temperature_c", 1.0, (-100.0, 250.0)),
)


def _document(value: Value, what: str) -> dict:
    if value.error:
        raise BadValue(value.error)
    if value.raw is None:  # the reader sets an error whenever it leaves the value out
        raise BadValue(f"{what}: no value")
    doc = decode_json(value.raw, what)
    if not isinstance(doc, dict):
        raise BadValue(f"{what}: not a JSON object")
    return doc


class _CpuBudget:
    """This thread's CPU time, from the first parse of a read."""

    def __init__(self, seconds: float):
        self.ends = time.thread_time() + seconds

    def spent(self) -> bool:
        return time.thread_time() > self.ends


def _left_out(value: Value, parsed: Parsed, budget: _CpuBudget) -> bool:
    """Whether the value is not parsed: dropped by the reader or by the CPU budget (counted either way)."""
    if value.dropped or budget.spent():
        parsed.dropped += 1
        if value.late and not parsed.errors:
            parsed.errors.append(value.error)
        return True
    return False


def gpu_reports(values: dict[str, Value], now: float | None = None, cpu_seconds: float = MAX_PARSE_SECONDS) -> Parsed:
    parsed = Parsed()
    now = time.time() if now is None else now
    budget = _CpuBudget(cpu_seconds)
    nodes = set()
    total = 0
    for node_id, value in sorted(values.items()):
        node = sanitize(node_id)
        if _left_out(value, parsed, budget):
            continue
        try:
            if node in nodes:  # two keys that differ only in characters a label cannot carry
                raise BadValue(f"{GPU_PREFIX}{node}: another key has the same node label")
            doc = _document(value, f"{GPU_PREFIX}{node}")
        except BadValue as err:
            parsed.invalid += 1
            parsed.errors.append(str(err))
            continue
        nodes.add(node)
        listed = items(doc.get("gpus"))
        room = max(0, min(MAX_DEVICES, MAX_TOTAL_DEVICES - total))
        parsed.dropped += max(0, len(listed) - room)
        total += min(len(listed), room)
        gpus = []
        labels: set[str] = set()
        for position, gpu in enumerate(listed[:room]):
            if not isinstance(gpu, dict):
                parsed.invalid += 1
                continue
            index = number(gpu.get("index"), 0, 2**31 - 1)
            values_by_field = {}
            for name, field_name, scale, (low, high) in _GPU_FIELDS:
                amount = number(gpu.get(field_name), low, high)
                if amount is not None:
                    values_by_field[name] = amount * scale
                elif field_name in gpu:
                    parsed.invalid += 1
            label = str(int(index)) if index is not None else str(position)
            if label in labels:  # two entries claim one index: the first is kept
                parsed.invalid += 1
                continue
            labels.add(label)
            gpus.append(Gpu(label, sanitize(text(gpu.get("name")) or "unknown", 64), values_by_field))
        vendor = sanitize(text(doc.get("vendor")) or "unknown", 32)
        stamp = epoch_seconds(doc.get("timestamp"), now)
        if stamp is None and doc.get("timestamp") is not None:
            parsed.invalid += 1  # a report from the future would keep SollolGpuTelemetryStale quiet
        parsed.items.append(GpuReport(node, vendor, tuple(gpus), stamp))
    return parsed


def registrations(values: dict[str, Value], cpu_seconds: float = MAX_PARSE_SECONDS) -> Parsed:
    parsed = Parsed()
    budget = _CpuBudget(cpu_seconds)
    for suffix, value in sorted(values.items()):
        if _left_out(value, parsed, budget):
            continue
        try:
            backend = str(parse_address(suffix, RPC_SERVER_PORT))
            doc = _document(value, f"{RPC_NODE_PREFIX}{backend}")
        except (BadValue, ValueError) as err:
            parsed.invalid += 1
            parsed.errors.append(str(err))
            continue
        names = items(doc.get("gpu_names"))
        listed = items(doc.get("gpu_vram_mb"))
        parsed.dropped += max(0, len(listed) - MAX_DEVICES)
        memory = []
        for index, megabytes in enumerate(listed[:MAX_DEVICES]):
            amount = number(megabytes, 0.0, MAX_MEBIBYTES)
            if amount is None:
                parsed.invalid += 1
                continue
            name = text(names[index]) if index < len(names) else None
            memory.append((str(index), sanitize(name or "unknown", 64), amount * MIB))
        cpu = _field(doc, "cpu_ram_mb", MAX_MEBIBYTES, parsed)
        workers = _field(doc, "total_parallel_workers", MAX_COUNT, parsed)
        parsed.items.append(Registration(backend, flag(doc.get("has_gpu")), tuple(memory), None if cpu is None else cpu * MIB, workers))
    return parsed


def _field(doc: dict, name: str, high: float, parsed: Parsed) -> float | None:
    """A non-negative number up to `high`; one that is there but outside is counted as invalid."""
    amount = number(doc.get(name), 0.0, high)
    if amount is None and doc.get(name) is not None:
        parsed.invalid += 1
    return amount
