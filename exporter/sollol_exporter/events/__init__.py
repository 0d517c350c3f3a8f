"""SOLLOL's live events (PUB/SUB): what each request did, counted for the life of the process.

`counts` turns one message into counter and histogram updates; `subscriber` holds the Redis connection. Each
channel has a kind (ollama, rpc, traces) that says how its messages are read; the channel names can be
overridden in the config, the kinds are the `channel` label.
"""

OLLAMA, RPC, TRACES = "ollama", "rpc", "traces"
