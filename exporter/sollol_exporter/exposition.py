"""The metrics as text, byte for byte what prometheus_client writes, at a fraction of its cost.

prometheus_client formats every sample through general escaping code (names checked against the escaping scheme,
every value through its Go float formatting): with a thousand workers that is 11,000 samples and a third (text format)
to a half (OpenMetrics) of a scrape's CPU. Gauges are nearly all of them, and a gauge's sample lines are the same in the Prometheus text
format and in OpenMetrics, so plain gauges take a short path: label names checked once per name, label values
escaped only when they hold a character that needs it, 0 and 1 written without formatting. Every other family
(counters, histograms, info, a unit, a timestamp, an exemplar, a name that needs escaping, the "dots" escaping
scheme) is written by prometheus_client itself, one family at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from math import copysign
from typing import Any

from prometheus_client import exposition as client_text
from prometheus_client.openmetrics import exposition as client_openmetrics
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

# Escaping schemes (the Accept header's escaping=) under which a name of the classic character set without ":" is
# written unchanged, in both formats; older prometheus_client versions know no schemes and write names as they are.
_NAMES_UNCHANGED = ("underscores", "allow-utf-8")
_METRIC_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_LABEL_NAME = re.compile(r"(?!__)[a-zA-Z_][a-zA-Z0-9_]*")  # names starting with __ are reserved
_HAS_NATIVE_HISTOGRAMS = "native_histogram" in Sample._fields
_EOF = "# EOF\n"
_MAX_KNOWN_NAMES = 10_000
_INFINITY = float("inf")
_plain_label_names: set[str] = set()  # label names seen that every scheme writes unchanged


def _plain_label_name(name: str) -> bool:
    if not _LABEL_NAME.fullmatch(name):
        return False
    if len(_plain_label_names) >= _MAX_KNOWN_NAMES:
        _plain_label_names.clear()
    _plain_label_names.add(name)
    return True


def _plain_gauge(metric, keywords: dict[str, Any]) -> bool:
    return (metric.type == "gauge" and not metric.unit and keywords.get("escaping", "underscores") in _NAMES_UNCHANGED
            and _METRIC_NAME.fullmatch(metric.name) is not None)


def _label_value(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class _Written:
    """The lines written for the samples of the last scrape, by sample object. Collectors keep a sample whose value
    has not changed (rpc_backends keeps ten of each worker's eleven): the next scrape writes its line again without
    formatting it. A line is found by the id of its sample and taken only if the entry holds that very sample (the
    entry keeps it alive, so no other object can have its id meanwhile); each scrape keeps only what it wrote."""

    def __init__(self) -> None:
        self.last: dict[int, tuple[Sample, str]] = {}
        self.now: dict[int, tuple[Sample, str]] = {}

    def next_scrape(self) -> None:
        # Scrapes running at once may take each other's lines: an entry is only ever used for its own sample.
        self.last, self.now = self.now, {}


_written = _Written()


def _gauge_lines(metric) -> list[str] | None:
    """The family's sample lines, or None if one of them needs prometheus_client's own formatting. Written for
    speed: this runs once per sample."""
    lines: list[str] = []
    append = lines.append
    name = metric.name
    plain = _plain_label_names
    last, now = _written.last, _written.now
    for sample in metric.samples:
        if sample.name != name:  # a _created sample, say: placed and named by prometheus_client's rules
            return None
        written = last.get(id(sample))
        if written is not None and written[0] is sample:
            append(written[1])
            now[id(sample)] = written
            continue
        value = sample.value
        if (value is None or sample.timestamp is not None or sample.exemplar is not None
                or (_HAS_NATIVE_HISTOGRAMS and sample.native_histogram is not None)):
            return None
        # floatToGoString's answer, without its work for the common values
        if value == 1.0:
            shown = "1.0"
        elif value == 0.0:
            shown = "-0.0" if copysign(1.0, value) < 0 else "0.0"
        elif type(value) is float and -_INFINITY < value < 1e6:  # Go switches to exponents only from 1e6 up
            shown = repr(value)
        else:
            shown = floatToGoString(value)
        labels = sample.labels
        if len(labels) == 1:
            ((key, text),) = labels.items()
            if key not in plain and not _plain_label_name(key):
                return None
            if "\\" in text or "\n" in text or '"' in text:
                text = _label_value(text)
            line = f'{name}{{{key}="{text}"}} {shown}\n'
        elif len(labels) == 2:
            (key, text), (key2, text2) = labels.items()
            if key2 < key:
                key, text, key2, text2 = key2, text2, key, text
            if (key not in plain and not _plain_label_name(key)) or (key2 not in plain and not _plain_label_name(key2)):
                return None
            if "\\" in text or "\n" in text or '"' in text:
                text = _label_value(text)
            if "\\" in text2 or "\n" in text2 or '"' in text2:
                text2 = _label_value(text2)
            line = f'{name}{{{key}="{text}",{key2}="{text2}"}} {shown}\n'
        elif labels:
            parts = []
            for key, text in sorted(labels.items()):
                if key not in plain and not _plain_label_name(key):
                    return None
                if "\\" in text or "\n" in text or '"' in text:
                    text = _label_value(text)
                parts.append(f'{key}="{text}"')
            line = f'{name}{{{",".join(parts)}}} {shown}\n'
        else:
            line = f"{name} {shown}\n"
        append(line)
        now[id(sample)] = (sample, line)
    return lines


class _One:
    """One family, as the collector prometheus_client's encoders take."""

    def __init__(self, metric):
        self.metric = metric

    def collect(self):
        return [self.metric]


def text(registry, **keywords: Any) -> bytes:
    """What prometheus_client.exposition.generate_latest(registry, **keywords) writes (the Prometheus text format)."""
    _written.next_scrape()
    out: list[str] = []
    for metric in registry.collect():
        lines = _gauge_lines(metric) if _plain_gauge(metric, keywords) else None
        if lines is None:
            out.append(client_text.generate_latest(_One(metric), **keywords).decode("utf-8"))
            continue
        help_text = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {metric.name} {help_text}\n# TYPE {metric.name} gauge\n")
        out.extend(lines)
    return "".join(out).encode("utf-8")


def openmetrics(registry, **keywords: Any) -> bytes:
    """What prometheus_client.openmetrics.exposition.generate_latest(registry, **keywords) writes."""
    _written.next_scrape()
    out: list[str] = []
    for metric in registry.collect():
        lines = _gauge_lines(metric) if _plain_gauge(metric, keywords) else None
        if lines is None:
            family = client_openmetrics.generate_latest(_One(metric), **keywords).decode("utf-8")
            out.append(family[: -len(_EOF)])
            continue
        out.append(f"# HELP {metric.name} {_label_value(metric.documentation)}\n# TYPE {metric.name} gauge\n")
        out.extend(lines)
    out.append(_EOF)
    return "".join(out).encode("utf-8")


def choose_encoder(accept_header: str) -> tuple[Callable[..., bytes], str]:
    """prometheus_client's content negotiation (same formats, same content types), answered by the encoders above."""
    encoder, content_type = client_text.choose_encoder(accept_header)
    function = encoder.func if isinstance(encoder, partial) else encoder
    keywords = encoder.keywords if isinstance(encoder, partial) else {}
    if function is client_text.generate_latest:
        return partial(text, **keywords), content_type
    if function is client_openmetrics.generate_latest:
        return partial(openmetrics, **keywords), content_type
    return encoder, content_type
