import pytest

from sollol_exporter.addresses import Address, parse_address


@pytest.mark.parametrize(
    "value, expected",
    [
        ("10.0.0.5:11434", Address("10.0.0.5", 11434)),
        ("10.0.0.5", Address("10.0.0.5", 50052)),
        ({"host": "10.0.0.5", "port": "11434"}, Address("10.0.0.5", 11434)),
        ({"host": "10.0.0.5", "port": 50053}, Address("10.0.0.5", 50053)),
        ({"host": "10.0.0.5:11434"}, Address("10.0.0.5", 11434)),
        ({"url": "http://gpu-box:11434"}, Address("gpu-box", 11434)),
        ("http://10.0.0.40:18080/v1/chat/completions", Address("10.0.0.40", 18080)),
        ("[::1]:50052", Address("::1", 50052)),
        ("GPU-Box.local:1", Address("gpu-box.local", 1)),
    ],
)
def test_parse_address_accepts_every_form_sollol_writes(value, expected):
    assert parse_address(value, 50052) == expected


@pytest.mark.parametrize(
    "value",
    ["", "a b:1", "host:0", "host:65536", "host:abc", "x" * 400, {"port": 1}, 12, None, "h\n:1", '"><script>:1', {"host": "h", "port": True}],
)
def test_parse_address_rejects_hostile_or_broken_values(value):
    with pytest.raises(ValueError):
        parse_address(value, 50052)


def test_address_formats_ipv6_with_brackets():
    assert str(Address("::1", 50052)) == "[::1]:50052"
    assert str(Address("10.0.0.1", 50052)) == "10.0.0.1:50052"
