"""SOLLOL's per-node Redis values, parsed: GPU reports (`sollol:gpu:{node}`) and worker registrations
(`sollol:rpc:node:{ip}:{port}`). A bad value costs that key only and is counted."""

from __future__ import annotations

from dataclasses import dataclass, field

from sollol_exporter.labels import parse_address, sanitize
from sollol_exporter.sources.redis_reader import Value
from sollol_exporter.values import BadValue, decode_json, flag, items, number, text

MIB = 1_048_576
MAX_DEVICES = 64


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


_GPU_FIELDS = (
    ("memory_total", "memory_total_mb", MIB),
    ("memory_free", "memory_free_mb", MIB),
    ("memory_used", "memory_used_mb", MIB),
    ("utilization", "utilization_percent", 0.01),
    ("temperature", "temperature_c", 1.0),
)


def _document(value: Value, what: str) -> dict:
    if value.error:
        raise BadValue(value.error)
    doc = decode_json(value.raw, what)
    if not isinstance(doc, dict):
        raise BadValue(f"{what}: not a JSON object")
    return doc


def gpu_reports(values: dict[str, Value]) -> Parsed:
    parsed = Parsed()
    for node_id, value in sorted(values.items()):
        node = sanitize(node_id)
        if value.dropped:
            parsed.dropped += 1
            continue
        try:
            doc = _document(value, f"sollol:gpu:{node}")
        except BadValue as err:
            parsed.invalid += 1
            parsed.errors.append(str(err))
            continue
        listed = items(doc.get("gpus"))
        parsed.dropped += max(0, len(listed) - MAX_DEVICES)
        gpus = []
        for position, gpu in enumerate(listed[:MAX_DEVICES]):
            if not isinstance(gpu, dict):
                parsed.invalid += 1
                continue
            index = number(gpu.get("index"))
            values_by_field = {}
            for name, field_name, scale in _GPU_FIELDS:
                amount = number(gpu.get(field_name))
                if amount is not None:
                    values_by_field[name] = amount * scale
                elif field_name in gpu:
                    parsed.invalid += 1
            label = str(int(index)) if index is not None and abs(index) < 2**31 else str(position)
            gpus.append(Gpu(label, sanitize(text(gpu.get("name")) or "unknown", 64), values_by_field))
        vendor = sanitize(text(doc.get("vendor")) or "unknown", 32)
        parsed.items.append(GpuReport(node, vendor, tuple(gpus), number(doc.get("timestamp"))))
    return parsed


def registrations(values: dict[str, Value]) -> Parsed:
    parsed = Parsed()
    for suffix, value in sorted(values.items()):
        if value.dropped:
            parsed.dropped += 1
            continue
        try:
            backend = str(parse_address(suffix, 50052))
            doc = _document(value, f"sollol:rpc:node:{backend}")
        except (BadValue, ValueError) as err:
            parsed.invalid += 1
            parsed.errors.append(str(err))
            continue
        names = items(doc.get("gpu_names"))
        listed = items(doc.get("gpu_vram_mb"))
        parsed.dropped += max(0, len(listed) - MAX_DEVICES)
        memory = []
        for index, megabytes in enumerate(listed[:MAX_DEVICES]):
            amount = number(megabytes)
            if amount is None:
                parsed.invalid += 1
                continue
            name = text(names[index]) if index < len(names) else None
            memory.append((str(index), sanitize(name or "unknown", 64), amount * MIB))
        cpu = number(doc.get("cpu_ram_mb"))
        parsed.items.append(
            Registration(backend, flag(doc.get("has_gpu")), tuple(memory), None if cpu is None else cpu * MIB, number(doc.get("total_parallel_workers")))
        )
    return parsed
