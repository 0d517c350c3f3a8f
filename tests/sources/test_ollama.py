import json

from sollol_exporter.sources.ollama import MAX_EXPIRY_SECONDS, parse_ps


def ps(**model) -> bytes:
    entry = {"name": "llama3.2:3b", "size": 3_400_000_000, "size_vram": 3_400_000_000, "expires_at": "2999-01-01T00:00:00Z",
             "context_length": 4096, **model}
    return json.dumps({"models": [entry]}).encode()


def test_a_loaded_model_is_read():
    (model,), invalid = parse_ps(ps())
    assert (model.name, model.size, model.size_vram, model.context_length, invalid) == ("llama3.2:3b", 3.4e9, 3.4e9, 4096, 0)
    assert model.expires_in == MAX_EXPIRY_SECONDS


def test_sizes_no_memory_holds_are_invalid_and_count_as_zero():
    (model,), invalid = parse_ps(ps(size=1e308, size_vram=-1, context_length=1e300))
    assert (model.size, model.size_vram, model.context_length) == (0.0, 0.0, None)
    assert invalid == 3
