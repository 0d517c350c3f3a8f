from sollol_exporter.labels import sanitize


def test_sanitize_strips_control_characters_and_truncates():
    assert sanitize("a\x00b\nc\x7f") == "abc"
    assert len(sanitize("x" * 1000)) == 128
    assert sanitize(b"\xff\xfeok").endswith("ok")


def test_values_cut_to_the_limit_stay_distinct_and_within_it():
    shared = "gpu-box-" + "a" * 200
    first, second = sanitize(shared + "1"), sanitize(shared + "2")
    assert first != second
    assert len(first) == len(second) == 128
    assert first.startswith(shared[:100]) and "..." in first
    assert sanitize(shared + "1") == first  # the same value always gets the same label
    assert len(sanitize("x" * 40, 32)) == 32 and sanitize("x" * 40, 32) != sanitize("x" * 39 + "y", 32)
    assert sanitize("y" * 128) == "y" * 128  # a value that fits is not touched
