"""The one schema walker of both config files: a tree of dataclasses built from a parsed YAML document (see
yaml_source), every value checked against the field it fills, every problem a ConfigError `file:line: dotted.key: what`.

A schema is plain dataclasses. Fields are str, bool, int, Literal choices, lists, dict[str, ...] (any keys) or
nested dataclasses; numbers that need a rule say so with `duration()` or `count()`, and `internal()` marks a field
no file may set. The Dialect says how loosely scalars are read.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, TypeVar

from sollol_exporter.config.durations import PROMETHEUS, DurationOutOfRange, Notation, parse_duration
from sollol_exporter.config.yaml_source import Source, shown

MAX_INT = 2**63 - 1

T = TypeVar("T")


def internal(default: Any) -> Any:
    """A field set by the exporter itself (from the command line or from what the file names), never from YAML."""
    return dataclasses.field(default=default, metadata={"internal": True})


def duration(default: float, zero: str | None = None, notation: Notation = PROMETHEUS) -> Any:
    """A field holding seconds, written as a duration in `notation` ("500ms", "2s", "1m30s"; Prometheus' also takes
    a number of seconds and "1d"). It must be longer than 0, unless `zero` says what 0 means (a timeout of 0 would
    fail every read)."""
    return dataclasses.field(default=default, metadata={"duration": notation, "zero": zero})


def count(default: int, zero: str | None = None, maximum: int = MAX_INT) -> Any:
    """A field holding a number of things, at most `maximum`. At least 1, unless `zero` says what 0 means."""
    return dataclasses.field(default=default, metadata={"count": True, "zero": zero, "maximum": maximum})


@dataclasses.dataclass(frozen=True)
class Dialect:
    """How loosely a file's scalars are read."""

    null_is_zero: bool = False  # null (or nothing) after a key: the field's zero value ("", 0, false, empty, defaults)
    scalars_as_text: bool = False  # a string field takes any scalar as written (`true` is the text "true")
    # An error quotes the bad value; else it names only the type found, for a file where any value may be a secret
    # written in the wrong place (a password hash under http2).
    quotes_values: bool = True


# The exporter config: a value is what it looks like, and numbers in a string field keep the text as written.
STRICT = Dialect()
# Go's yaml.v2, which exporter-toolkit reads its web config with: null is the zero value, any scalar fills a string.
# That file holds password hashes and keys, so its errors never quote a value.
GO_YAML = Dialect(null_is_zero=True, scalars_as_text=True, quotes_values=False)


def build(cls: type[T], value: Any, source: Source, dialect: Dialect = STRICT) -> T:
    """`cls` from a parsed document (a mapping at the top level); ConfigError at the first problem."""
    if value is None and dialect.null_is_zero:
        value = {}
    if not isinstance(value, dict):
        raise source.error(source.line_of(()), "the top level must be a mapping")
    return _Walker(source, dialect).section(cls, value, ())


def _zero(hint: Any) -> Any:
    """What a null stands for in a field of type `hint`, under Dialect.null_is_zero."""
    origin = typing.get_origin(hint)
    if (isinstance(hint, type) and dataclasses.is_dataclass(hint)) or origin is dict:
        return {}
    if origin is list:
        return []
    if hint is bool:
        return False
    if hint in (int, float):
        return 0
    return ""


class _Walker:
    def __init__(self, source: Source, dialect: Dialect):
        self.source = source
        self.dialect = dialect

    def fail(self, path: tuple, what: str) -> typing.NoReturn:
        self.source.fail(path, what)

    def got(self, value: Any) -> str:
        """What was found instead of what a field expects: the value, or only its type."""
        return f", got {shown(value) if self.dialect.quotes_values else type(value).__name__}"

    def got_value(self, value: Any) -> str:
        """The value that is out of a field's range, if this dialect quotes values (its type would say nothing)."""
        return f", got {shown(value)}" if self.dialect.quotes_values else ""

    def section(self, cls: Any, value: Any, path: tuple) -> Any:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {type(value).__name__}")
        hints = typing.get_type_hints(cls)
        known = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
        for key in value:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                self.fail((*path, key), f"unknown key (did you mean {close[0]!r}?)" if close else f"unknown key (known: {', '.join(known)})")
        kwargs = {name: self.convert(hints[name], spec, value[name], (*path, name)) for name, spec in known.items() if name in value}
        return cls(**kwargs)

    def convert(self, hint: Any, spec: dataclasses.Field | None, value: Any, path: tuple) -> Any:
        if value is None and self.dialect.null_is_zero:
            value = _zero(hint)
        origin = typing.get_origin(hint)
        if spec is not None and spec.metadata.get("duration"):
            return self.duration(value, spec, path)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return self.section(hint, value, path)
        if origin is list:
            if not isinstance(value, list):
                self.fail(path, f"expected a list, got {type(value).__name__}")
            (item,) = typing.get_args(hint)
            return [self.convert(item, None, element, (*path, index)) for index, element in enumerate(value)]
        if origin is dict:
            if not isinstance(value, dict):
                self.fail(path, f"expected a mapping, got {type(value).__name__}")
            _, item = typing.get_args(hint)  # keys are the names as written: always text
            return {key: self.convert(item, None, element, (*path, key)) for key, element in value.items()}
        if origin is Literal:
            return self.choice(typing.get_args(hint), value, path)
        if origin in (typing.Union, types.UnionType):
            raise TypeError("unions are not used in config schemas")
        if hint is bool:
            if not isinstance(value, bool):
                self.fail(path, f"expected true or false{self.got(value)}")
            return value
        if hint is int:
            return self.whole_number(value, spec, path)
        if hint is str:
            return self.string(value, path)
        raise TypeError(f"unsupported config type {hint!r}")

    def duration(self, value: Any, spec: dataclasses.Field, path: tuple) -> float:
        notation: Notation = spec.metadata["duration"]
        try:
            seconds = parse_duration(value, notation)
        except DurationOutOfRange:
            self.fail(path, f"duration out of range (0 to {notation.longest}){self.got_value(value)}")
        except ValueError:
            self.fail(path, f"expected a duration such as {notation.examples}{self.got(value)}")
        if seconds == 0 and spec.metadata["zero"] is None:
            self.fail(path, f"must be longer than 0{self.got_value(value)}")
        return seconds

    def choice(self, choices: tuple, value: Any, path: tuple) -> Any:
        if value is False and "off" in choices:
            value = "off"  # YAML 1.1 reads an unquoted `off` as false
        if value not in choices:
            listed = ", ".join(repr(c) for c in choices if c)
            self.fail(path, f"must be one of {listed}{self.got(value)}")
        return value

    def whole_number(self, value: Any, spec: dataclasses.Field | None, path: tuple) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"expected a whole number >= 0{self.got(value)}")
        if value < 0:
            self.fail(path, "expected a whole number >= 0" + (self.got_value(value) or ", got a negative number"))
        if value > MAX_INT:
            self.fail(path, f"too large (at most {MAX_INT})")
        if spec is not None and spec.metadata.get("count"):
            if value == 0 and spec.metadata["zero"] is None:
                self.fail(path, "must be at least 1, got 0")
            if value > spec.metadata["maximum"]:
                self.fail(path, f"must be at most {spec.metadata['maximum']}{self.got_value(value)}")
        return value

    def string(self, value: Any, path: tuple) -> str:
        if isinstance(value, str):
            return value
        if self.dialect.scalars_as_text:
            as_written = not isinstance(value, (dict, list))
        else:
            # `api_key: 0123` is the text 0123, not the octal number 83; but `name: true` is a mistake
            as_written = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not as_written:
            self.fail(path, f"expected a string, got {type(value).__name__}")
        as_text = self.source.texts.get(path)
        return str(value) if as_text is None else as_text
