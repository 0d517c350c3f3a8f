"""Drives the real `sollol` package (PyPI 0.9.66) in its own virtual environment; run by the tests as

    <sollol venv>/bin/python sollol_driver.py pool '{"nodes": [...], "requests": N, "redis_port": P}'
    <sollol venv>/bin/python sollol_driver.py pool '{"nodes": [...], "requests": N, "streams": S, "threads": T, "redis_port": P}'
    <sollol venv>/bin/python sollol_driver.py coordinator '{"model": ..., "workers": [...], "port": P, "requests": N, "redis_port": P}'

It imports nothing from this repository. It prints one JSON line with what it did, then exits; SOLLOL's
network observer flushes its events to Redis on exit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def pool(spec: dict) -> dict:
    from sollol.pool import OllamaPool
    from sollol.routing_strategy import RoutingStrategy

    nodes = [{"host": "127.0.0.1", "port": str(port)} for port in spec["nodes"]]
    pool = OllamaPool(
        nodes=nodes, enable_intelligent_routing=False, routing_strategy=RoutingStrategy.ROUND_ROBIN,
        exclude_localhost=False, discover_all_nodes=False, register_with_dashboard=False, enable_ray=False,
        enable_dask=False, enable_gpu_redis=False, redis_host="127.0.0.1", redis_port=spec["redis_port"], enable_cache=False,
    )
    requests, streams = spec["requests"], spec.get("streams", 0)
    # Streamed requests spread evenly among the unstreamed ones; `threads` of them run at once.
    kinds = [streams * (index + 1) // (requests + streams) > streams * index // (requests + streams) for index in range(requests + streams)]

    def ask(index: int, streamed: bool) -> str:
        messages = [{"role": "user", "content": f"hello {index}"}]
        try:
            if streamed:
                chunks = list(pool.chat(model="llama3.2:3b", messages=messages, stream=True))
                return "streams_ok" if chunks and chunks[-1].get("done") is True else "streams_failed"
            pool.chat(model="llama3.2:3b", messages=messages)
            return "ok"
        except Exception:
            return "streams_failed" if streamed else "failed"

    with ThreadPoolExecutor(max_workers=spec.get("threads", 1)) as workers:
        outcomes = list(workers.map(ask, range(len(kinds)), kinds))
    pool.stop()
    return {name: outcomes.count(name) for name in ("ok", "failed", "streams_ok", "streams_failed")}


def coordinator(spec: dict) -> dict:
    from sollol.llama_cpp_coordinator import LlamaCppCoordinator, RPCBackend

    async def run() -> dict:
        backends = [RPCBackend(host="127.0.0.1", port=port) for port in spec["workers"]]
        coordinator = LlamaCppCoordinator(model_path=spec["model"], rpc_backends=backends, host="127.0.0.1",
                                          port=spec["port"], n_gpu_layers=0, ctx_size=spec.get("ctx_size", 256))
        await coordinator.start()
        answered = 0
        try:
            for index in range(spec["requests"]):
                await coordinator.generate(f"Say {index}", max_tokens=4, temperature=0.0, model="tiny")
                answered += 1
        finally:
            await coordinator.stop()
        return {"answered": answered}

    return asyncio.run(run())


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    mode, spec = sys.argv[1], json.loads(sys.argv[2])
    started = time.monotonic()
    result = {"pool": pool, "coordinator": coordinator}[mode](spec)
    result["seconds"] = round(time.monotonic() - started, 3)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
