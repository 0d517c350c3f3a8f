"""Label values: everything from outside is cleaned before it becomes a label."""

from __future__ import annotations

import hashlib
import re

MAX_LABEL_LENGTH = 128
_DIGEST_LENGTH = 8  # hex digits of the full value's digest that end a cut value
OTHER = "other"  # the label value that stands for every value past a cardinality cap
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def sanitize(value: object, max_length: int = MAX_LABEL_LENGTH) -> str:
    """A label value: text, without control characters, at most max_length characters. A longer value is cut and
    ends in "..." and a digest of the whole value, so that two values sharing their beginning stay two label values."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    # Lone surrogates (JSON "\ud800") cannot be written as UTF-8: one would make every later scrape fail.
    text = str(value).encode("utf-8", "replace").decode("utf-8")
    text = _CONTROL.sub("", text).strip()
    return shorten(text, max_length)


def shorten(text: str, max_length: int) -> str:
    """`text` if it fits in max_length characters, else its beginning, "..." and a digest of all of it."""
    if len(text) <= max_length:
        return text
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=_DIGEST_LENGTH // 2).hexdigest()
    return text[: max(0, max_length - 3 - _DIGEST_LENGTH)] + "..." + digest
