"""What SOLLOL and its peers use, defined once: their default ports and SOLLOL's Redis keys, streams and channels
(docs/sollol.md, docs/peers.md say how each was observed)."""

OLLAMA_PORT = 11434  # an Ollama node named without a port
RPC_SERVER_PORT = 50052  # llama.cpp's rpc-server, and SOLLOL's default for a worker named without a port
COORDINATOR_PORT = 18080  # where SOLLOL starts llama-server (SOLLOL_COORDINATOR_PORT)
DASHBOARD_PORT = 8080  # sollol.dashboard_service (SOLLOL_DASHBOARD_PORT)
REDIS_PORT = 6379

METADATA_KEY = "sollol:router:metadata"
GPU_PREFIX = "sollol:gpu:"
GPU_STREAM = "sollol:gpu:stats"  # under GPU_PREFIX, but a stream, not a report
RPC_NODE_PREFIX = "sollol:rpc:node:"
ROUTING_STREAM = "sollol:routing_stream"

OLLAMA_ACTIVITY_CHANNEL = "sollol:dashboard:ollama:activity"
RPC_ACTIVITY_CHANNEL = "sollol:dashboard:rpc:activity"
TRACES_CHANNEL = "sollol:traces"
