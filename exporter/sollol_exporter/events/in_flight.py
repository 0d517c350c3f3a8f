"""SOLLOL's Ollama requests that have started and not yet ended, to tell whether a failed one was streamed.

SOLLOL's `ollama_request` and `ollama_response` events say `streaming: true` for a stream; its `ollama_error`
events never do. An error is matched to the open request it ends: same node and model, and the start time the
error implies (its timestamp minus its `latency_ms`, both from SOLLOL's own clock and the same `start_time`
variable in OllamaPool) nearest to the open request's timestamp. Requests that run at the same time on different
nodes or models, retried attempts on the next node and concurrent streams therefore keep apart; only a stream and
an unstreamed request to the same node and model that start within a few milliseconds of each other (SOLLOL logs
an event some microseconds, under load some milliseconds, after the moment it describes) can be mistaken for one
another.

Streams a client abandons end with no event at all, so open requests are bounded: at most `per_key` per node and
model (Ollama's default queue is 512 deep) and `limit` in all, the oldest dropped first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

# An error that implies a start further than this from an open request's start does not end that request.
MATCH_WINDOW = 5.0


@dataclass(frozen=True)
class OpenRequest:
    started: float | None  # SOLLOL's clock: the request event's timestamp
    streaming: bool
    seen: float  # this process' monotonic clock


class InFlight:
    def __init__(self, per_key: int = 512, limit: int = 10_000) -> None:
        self.per_key, self.limit = per_key, limit
        self.open: dict[tuple[str, str], list[OpenRequest]] = {}
        self.size = 0

    def start(self, key: tuple[str, str], started: float | None, streaming: bool) -> None:
        requests = self.open.setdefault(key, [])
        if len(requests) >= self.per_key:
            requests.pop(0)
            self.size -= 1
        elif self.size >= self.limit:
            self._drop_oldest(self.limit // 10 or 1)
            requests = self.open.setdefault(key, [])
        requests.append(OpenRequest(started, streaming, time.monotonic()))
        self.size += 1

    def finish(self, key: tuple[str, str], started: float | None, streaming: bool | None = None) -> bool | None:
        """End the open request an outcome belongs to and say whether it was streamed; None if none matches.
        `streaming` narrows the choice when the outcome says it (responses do); `started` is the start the
        outcome implies, None if it does not say (then the oldest open request of the node and model ends)."""
        requests = self.open.get(key)
        if not requests:
            return None
        best, best_rank = None, None
        for index, request in enumerate(requests):
            if streaming is not None and request.streaming != streaming:
                continue
            rank: tuple[int, float]
            if started is None or request.started is None:
                rank = (1, index)
            else:
                distance = abs(request.started - started)
                if distance > MATCH_WINDOW:
                    continue
                rank = (0, distance)
            if best_rank is None or rank < best_rank:
                best, best_rank = index, rank
        if best is None:
            return None
        request = requests.pop(best)
        self.size -= 1
        if not requests:
            del self.open[key]
        return request.streaming

    def _drop_oldest(self, count: int) -> None:
        everything = sorted((request.seen, key, id(request)) for key, requests in self.open.items() for request in requests)
        doomed: dict[tuple[str, str], set[int]] = {}
        for _, key, ident in everything[:count]:
            doomed.setdefault(key, set()).add(ident)
        for key, idents in doomed.items():
            kept = [request for request in self.open[key] if id(request) not in idents]
            self.size -= len(self.open[key]) - len(kept)
            if kept:
                self.open[key] = kept
            else:
                del self.open[key]
