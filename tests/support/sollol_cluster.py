"""A SOLLOL cluster that keeps running: the real `sollol` package (PyPI 0.9.66) in its own virtual environment,
serving a steady trickle of requests until its standard input closes. Run by the tests as

    <sollol venv>/bin/python sollol_cluster.py '{"redis_port": P, "nodes": [ports], "coordinator": {...} or null}'

`nodes`: Ollama nodes for an OllamaPool (its defaults: it writes the router metadata and the activity events);
`coordinator`: {"model": path, "workers": [ports], "port": P} for a LlamaCppCoordinator, which starts llama-server
from PATH. It prints one JSON line once the cluster is up ({"llama_server_pid": ...}), then one request to each
part every `period` seconds (failures are expected once a test breaks something), and stops both on EOF.
It imports nothing from this repository.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading


def start_pool(spec: dict):
    from sollol.pool import OllamaPool
    from sollol.routing_strategy import RoutingStrategy

    nodes = [{"host": "127.0.0.1", "port": str(port)} for port in spec["nodes"]]
    return OllamaPool(
        nodes=nodes, routing_strategy=RoutingStrategy.ROUND_ROBIN, enable_intelligent_routing=False,
        exclude_localhost=False, discover_all_nodes=False, register_with_dashboard=False, enable_ray=False,
        enable_dask=False, redis_host="127.0.0.1", redis_port=spec["redis_port"], enable_cache=False,
    )


async def run(spec: dict) -> None:
    closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
    pool = start_pool(spec) if spec.get("nodes") else None
    coordinator = None
    if spec.get("coordinator"):
        from sollol.llama_cpp_coordinator import LlamaCppCoordinator, RPCBackend

        c = spec["coordinator"]
        coordinator = LlamaCppCoordinator(model_path=c["model"], rpc_backends=[RPCBackend(host="127.0.0.1", port=p) for p in c["workers"]],
                                          host="127.0.0.1", port=c["port"], n_gpu_layers=0, ctx_size=256)
        await coordinator.start()
    print(json.dumps({"llama_server_pid": coordinator.process.pid if coordinator else None}), flush=True)
    index = 0
    while not closed.is_set():
        index += 1
        if pool is not None:
            try:
                await asyncio.to_thread(pool.chat, model="llama3.2:3b", messages=[{"role": "user", "content": f"hello {index}"}])
            except Exception:
                pass
        if coordinator is not None:
            try:
                await asyncio.wait_for(coordinator.generate(f"Say {index}", max_tokens=2, temperature=0.0, model="tiny"), 10)
            except Exception:
                pass
        await asyncio.sleep(spec.get("period", 0.5))
    if coordinator is not None:
        await coordinator.stop()
    if pool is not None:
        pool.stop()


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(run(json.loads(sys.argv[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
