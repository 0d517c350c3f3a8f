"""A YAML config file read within bounds: its text, then plain dicts, lists and scalars, with the line of every value
so that an error can read `file:line: dotted.key: what`.

Whatever the file holds (any bytes, any YAML), reading ends in values or a ConfigError, never another exception:
the size, the nesting, the number of nodes and what aliases expand to are bounded, and tags other than YAML's own
are refused wherever they stand.
"""

from __future__ import annotations

import codecs
import re
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from sollol_exporter import files


class ConfigError(Exception):
    """A configuration problem, with the place it was found."""


MAX_DEPTH = 32
MAX_NODES = 50_000
# Aliases are handy for repeating a setting, but each use is a copy: bounded, a few lines cannot expand to millions.
MAX_ALIAS_VALUES = 10_000
MAX_SHOWN = 60  # characters of a bad value echoed in an error


def dotted(path: tuple) -> str:
    """A path for a message: `coordinators[0].url`, `top level` for the document itself."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{shown_key(part)}" if text else shown_key(part))
    return text or "top level"


# A password hash written where a name belongs: `$2y$10$...:` under basic_auth_users, the hash taken for a user name.
_BCRYPT_LIKE = re.compile(r"\$2[abxy]?\$\d\d\$")


def shown_key(key: Any) -> str:
    """A key for a message, unless it looks like a bcrypt password hash."""
    return "<a bcrypt hash>" if _BCRYPT_LIKE.search(str(key)) else str(key)


def shown(value: Any) -> str:
    """A bad value for an error message: short, and never a whole pasted blob."""
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python turns into text (YAML reads hexadecimal and octal numbers of any length)
        return "a number too long to show"
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


@dataclass
class Source:
    """Where values came from: the file's name, the line of each path (of its key, in a mapping), and the text of
    each plain scalar."""

    where: str
    lines: dict[tuple, int] = field(default_factory=dict)
    texts: dict[tuple, str] = field(default_factory=dict)

    def line_of(self, path: tuple) -> int | None:
        """The line of `path`, else of the nearest enclosing value the file holds (None: not from the file)."""
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path)

    def error(self, line: int | None, what: str) -> ConfigError:
        return ConfigError(f"{self.where}{'' if line is None else f':{line}'}: {what}")

    def fail(self, path: tuple, what: str) -> typing.NoReturn:
        raise self.error(self.line_of(path), f"{dotted(path)}: {what}")


def read_text(path: str, where: str) -> str:
    """The file's text: a regular file of at most files.MAX_FILE_BYTES, in UTF-8 (a byte order mark dropped)."""
    try:
        data = files.read_bytes(path, files.MAX_FILE_BYTES)
    except files.FileTooLarge:
        raise ConfigError(f"{where}: larger than {files.MAX_FILE_BYTES} bytes, which no config needs; is this the right file?") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {files.reason(err)}") from None
    return decode(data, where)


def decode(data: bytes, where: str) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ConfigError(f"{where}:1: the file is UTF-16; save it as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(
            f"{where}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); save the file as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


def parse(text: str, source: Source, *, aliases: bool = True) -> Any:
    """The document as plain dicts, lists and scalars ({} for a file without one), the line of every path and the
    text of every plain scalar recorded in `source`. Without `aliases`, a file using one is refused."""
    try:
        node, value = _compose_and_expand(text, source, aliases)
    except _Refused as refused:
        raise source.error(refused.line, refused.what) from None
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        raise source.error(line, f"character U+{err.character:04X} is not allowed in YAML") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        raise source.error(mark.line + 1 if mark else None, f"invalid YAML: {_yaml_problem(err)}") from None
    return {} if node is None else value


class _Refused(Exception):
    def __init__(self, line: int, what: str):
        super().__init__(what)
        self.line, self.what = line, what


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that stops composing past MAX_DEPTH levels or MAX_NODES nodes (PyYAML composes recursively), and
    at the first alias when aliases are not allowed."""

    def __init__(self, stream: str, aliases: bool):
        super().__init__(stream)
        self.aliases = aliases
        self.depth = 0
        self.nodes = 0

    def compose_node(self, parent, index):
        line = self.peek_event().start_mark.line + 1
        if not self.aliases and self.check_event(yaml.AliasEvent):
            raise _Refused(line, "YAML aliases are not allowed in this file")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Refused(line, f"more than {MAX_NODES} YAML nodes, which no config needs")
        if self.depth >= MAX_DEPTH:
            raise _Refused(line, f"nested deeper than {MAX_DEPTH} levels")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _compose_and_expand(text: str, source: Source, aliases: bool) -> tuple[yaml.Node | None, Any]:
    loader = _BoundedLoader(text, aliases)  # checks every character first: may raise ReaderError
    try:
        loader.get_event()  # the stream's start
        node = None if loader.check_event(yaml.StreamEndEvent) else loader.compose_document()
        if not loader.check_event(yaml.StreamEndEvent):
            raise _Refused(loader.peek_event().start_mark.line + 1, "more than one YAML document")
        return node, (None if node is None else _Expander(loader, source).plain(node, ()))
    finally:
        loader.dispose()


def _yaml_problem(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None) or type(err).__name__
    context = getattr(err, "context", None)
    if context and problem == "second occurrence":  # "found duplicate anchor 'x'; first occurrence"
        return context.partition(";")[0]
    return f"{context}, {problem}" if context else problem


_CORE_TAG = "tag:yaml.org,2002:"
_MERGE_TAG = _CORE_TAG + "merge"
# YAML's own tags that this loader reads, per kind of node; any other tag (`!secret`, `!!python/name:...`, `!!set`)
# is refused wherever it stands: on a value, a list, a mapping or a key. `value` and `merge` are what a plain `=` and
# `<<` resolve to: they are refused later, with their own message.
_KNOWN_TAGS = {
    yaml.ScalarNode: frozenset(_CORE_TAG + t for t in ("null", "bool", "int", "float", "str", "binary", "timestamp", "value", "merge")),
    yaml.SequenceNode: frozenset({_CORE_TAG + "seq"}),
    yaml.MappingNode: frozenset({_CORE_TAG + "map"}),
}


def unknown_tag(node: yaml.Node) -> str | None:
    """The node's tag as written (`'!secret'`, `'!!set'`) if this loader does not read it; None for YAML's own."""
    if node.tag in _KNOWN_TAGS[type(node)]:
        return None
    return shown("!!" + node.tag.removeprefix(_CORE_TAG) if node.tag.startswith(_CORE_TAG) else node.tag)


class _Expander:
    """Turns composed nodes into plain values, following aliases within a budget and refusing cycles."""

    def __init__(self, loader: _BoundedLoader, source: Source):
        self.loader = loader
        self.source = source
        self.remaining = loader.nodes + MAX_ALIAS_VALUES  # without aliases every node is visited exactly once
        self.open: set[int] = set()
        self.furthest = 1  # nodes reached through an alias keep their anchor's line; this is where the walk is

    def plain(self, node: yaml.Node, path: tuple) -> Any:
        line = node.start_mark.line + 1
        self.furthest = max(self.furthest, line)
        self.remaining -= 1
        if self.remaining < 0:
            raise _Refused(self.furthest, f"YAML aliases expand to more than {MAX_ALIAS_VALUES} values; refusing (an alias bomb?)")
        if id(node) in self.open:
            raise _Refused(line, f"{dotted(path)}: a YAML alias refers to a value that contains it")
        if len(path) > MAX_DEPTH:
            raise _Refused(line, f"nested deeper than {MAX_DEPTH} levels")
        self.source.lines[path] = line
        if tag := unknown_tag(node):
            raise _Refused(line, f"{dotted(path)}: unknown YAML tag {tag}")
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            return [self.plain(item, (*path, index)) for index, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: tuple) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                raise _Refused(line, f"{dotted(path)}: merge keys (<<) are not supported; use an alias for the whole value")
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused(line, "keys must be plain names")
            key = key_node.value
            if tag := unknown_tag(key_node):
                raise _Refused(line, f"{dotted((*path, key))}: unknown YAML tag {tag} on the key")
            if key in result:
                raise _Refused(line, f"{dotted((*path, key))}: duplicate key")
            result[key] = self.plain(value_node, (*path, key))
            self.source.lines[(*path, key)] = line  # a value's problem is shown at its key, where an alias is used
        return result

    def scalar(self, node: yaml.ScalarNode, path: tuple) -> Any:
        if node.style is None:
            self.source.texts[path] = node.value
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or "cannot read the value"
            raise _Refused(node.start_mark.line + 1, f"{dotted(path)}: {problem}") from None
        except (ValueError, TypeError, OverflowError):
            kind = node.tag.rpartition(":")[2]
            raise _Refused(node.start_mark.line + 1, f"{dotted(path)}: cannot read this {kind} value (malformed or too long)") from None
