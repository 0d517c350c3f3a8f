"""Readers for what SOLLOL and its peers serve: Redis, llama-server, Ollama, the dashboard service."""
