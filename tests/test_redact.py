"""Masking by shape: URL user information and secret-named parameters, the same on a line of ten characters as on a
config value of a megabyte, and in time linear in the text (it runs on every log line and every config string)."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sollol_exporter import redact

SECRET = redact.SECRET
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("text", "masked"), [
    ("redis://user:pass@127.0.0.1:6379/0", "redis://<secret>@127.0.0.1:6379/0"),
    ("redis://:p@ss/w@rd@h:1/0", "redis://<secret>@h:1/0"),  # up to the last @ of the word
    ("see http://u:p@a and x-ftp://v@b.", "see http://<secret>@a and x-ftp://<secret>@b."),
    ("1a-b://u@h", "1a-b://<secret>@h"),  # the scheme is b: a starts no word
    ("_http://u@h http://x", "_http://u@h http://x"),  # no scheme starts inside a word
    ("http://no-user/ http://u@h", "http://no-user/ http://<secret>@h"),
    ("http://h/?password=x&user=y&api_key=z#frag", "http://h/?password=<secret>&user=y&api_key=<secret>#frag"),
    ("X-Api-Key=k token= session.id=s", "X-Api-Key=<secret> token= session.id=s"),
    ("'x://a@b' \"token=t\"", "'x://<secret>@b' \"token=<secret>\""),
])
def test_what_is_masked_by_shape(text, masked):
    assert redact.by_shape(text) == masked


# The two patterns as they were written first: clear, but quadratic on long runs of name characters.
REFERENCE_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?:[^\s\"'<>@]*@)+")
REFERENCE_PARAMETER = re.compile(r"(?P<name>[A-Za-z0-9_.\-]+)=(?P<value>[^&#\s\"'<>]*)")
PIECES = ["a", "Z", "9", "_", ".", "-", "+", ":", "/", "@", "=", "&", "#", " ", "\t", "\u2028", '"', "'", "<", ">",
          "é", "٣", "://", "x://", "http://", "password=", "token=", "key", "@h"]


def reference_by_shape(text: str) -> str:
    masked = REFERENCE_USERINFO.sub(lambda m: m["scheme"] + SECRET + "@", text)
    return REFERENCE_PARAMETER.sub(lambda m: f"{m['name']}={SECRET}" if m["value"] and redact.is_secret_name(m["name"]) else m[0], masked)


def reference_parameters(text: str) -> list[str]:
    return [m["value"] for m in REFERENCE_PARAMETER.finditer(text) if m["value"] and redact.is_secret_name(m["name"])]


def test_masking_by_shape_is_what_the_first_patterns_masked():
    """On short texts of every character that matters, the same masking and the same secrets found as the
    straightforward patterns (which are fine there)."""
    rng = random.Random(20240611)
    for _ in range(20_000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 24)))
        assert redact.by_shape(text) == reference_by_shape(text), repr(text)
        found = redact.secrets_in_url(text)
        assert all(value in found for value in reference_parameters(text)), repr(text)


MEGABYTE = 1_000_000
# Texts on which each of the first patterns took minutes: a run of name or scheme characters tried again from each
# character inside it, and a word of many :// without an @ scanned again to its end from each of them.
LONG_TEXTS = {
    "name characters": ("a" * MEGABYTE, "a" * MEGABYTE),
    "dotted name": ("a." * (MEGABYTE // 2), "a." * (MEGABYTE // 2)),
    "scheme characters": ("a-+" * (MEGABYTE // 3), "a-+" * (MEGABYTE // 3)),
    "many schemes": ("x://" * (MEGABYTE // 4), "x://" * (MEGABYTE // 4)),
    "many schemes, then one user": ("x://" * (MEGABYTE // 4) + "u@h", "x://<secret>@h"),
    "a long name then a secret": ("a" * MEGABYTE + "_token=t", "a" * MEGABYTE + "_token=<secret>"),
    "a long password": ("http://user:" + "p" * MEGABYTE + "@h", "http://<secret>@h"),
}


def test_a_megabyte_of_text_is_masked_in_linear_time():
    """Each takes milliseconds; quadratic masking took minutes (and holds the GIL all along: nothing else in the
    process runs meanwhile). Run in a process of its own, so that it can be stopped."""
    script = (
        "from sollol_exporter import redact\n"
        "from tests.test_redact import LONG_TEXTS\n"
        "for name, (text, masked) in LONG_TEXTS.items():\n"
        "    assert redact.text(text) == masked, name\n"
        "    redact.secrets_in_url(text)\n"
        "print('done')\n"
    )
    try:
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail("masking a megabyte of text took more than a minute: quadratic again?")
    assert result.returncode == 0 and result.stdout == "done\n", result.stderr
