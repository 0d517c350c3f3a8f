#!/bin/sh
# Writes sample SOLLOL data into the demo Redis every 5 seconds, as SOLLOL's writers would: OllamaPool and
# SynapticLlamas metadata in turn, a GPU report, a worker registration and a routing event.
set -eu
r() { redis-cli -h "${REDIS_HOST:-demo-redis}" "$@" >/dev/null; }
while true; do
    now=$(date +%s)
    r SET sollol:router:metadata "{\"source\":\"demo_pool\",\"app_name\":\"Demo Pool\",\"timestamp\":$now,\"metrics\":{\"analytics\":{\"p50_latency_ms\":812.4,\"p95_latency_ms\":2310.0,\"p99_latency_ms\":4100.2,\"success_rate\":0.98,\"avg_duration_ms\":990.3,\"total_requests\":$((now % 100000)),\"successful_requests\":$((now % 100000))},\"ollama_pool\":{\"nodes_configured\":1,\"cache\":{\"hits\":3,\"misses\":247,\"evictions\":0,\"size\":12,\"max_size\":1000}}},\"nodes\":[{\"url\":\"http://demo-ollama:11434\",\"host\":\"demo-ollama:11434\",\"available\":true,\"latency_ms\":640.2,\"success_rate\":1.0,\"total_requests\":$((now % 100000)),\"failed_requests\":0,\"gpu_free_mem\":9800,\"active_requests\":1,\"priority\":999}]}" EX 30
    r SET sollol:gpu:demo-ollama:11434 "{\"vendor\":\"nvidia\",\"gpus\":[{\"index\":0,\"name\":\"Demo GPU\",\"memory_total_mb\":24576,\"memory_free_mb\":$((12000 + now % 6000)),\"memory_used_mb\":$((12576 - now % 6000)),\"utilization_percent\":$((now % 100)),\"temperature_c\":61}],\"timestamp\":$now,\"node_id\":\"demo-ollama:11434\"}" EX 120
    r SET sollol:rpc:node:demo-worker:50052 "{\"has_gpu\":true,\"gpu_devices\":[\"cuda:0\"],\"gpu_vram_mb\":[19660],\"gpu_names\":[\"Demo GPU\"],\"cpu_ram_mb\":25600,\"total_parallel_workers\":2}" EX 3600
    r XADD sollol:routing_stream MAXLEN "~" 10000 "*" event "{\"timestamp\":\"$(date -u +%Y-%m-%dT%H:%M:%S)\",\"event_type\":\"OLLAMA_NODE_SELECTED\",\"model\":\"llama3.2:3b\",\"backend\":\"ollama\",\"node_url\":\"demo-ollama:11434\"}"
    sleep 5
done
