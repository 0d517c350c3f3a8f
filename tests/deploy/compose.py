"""What `docker compose config` does with our files, without a Docker engine: load (with the `!reset` tag), merge
later files over earlier ones, and interpolate `${VAR...}` as the Compose Specification defines it. Strict: a
template the specification does not define is an error here too."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import yaml

# Compose's exception to "sequences are appended": a later file's command or healthcheck test replaces the earlier.
REPLACED_SEQUENCES = {"command", "entrypoint", "test"}
NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")


class Reset:
    """`!reset`: the later file removes the attribute."""


class InvalidTemplate(ValueError):
    pass


class MissingVariable(ValueError):
    """`${VAR:?message}` or `${VAR?message}` with VAR missing: compose stops with this message."""

    def __init__(self, name: str, message: str):
        super().__init__(f"required variable {name} is missing a value: {message}")
        self.name, self.message = name, message


class ComposeLoader(yaml.SafeLoader):
    pass


ComposeLoader.add_constructor("!reset", lambda loader, node: Reset())


def load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=ComposeLoader)


def merge(base, override, key: str | None = None):
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            if isinstance(value, Reset):
                merged.pop(name, None)
            else:
                merged[name] = merge(base[name], value, name) if name in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in REPLACED_SEQUENCES:
        return base + [item for item in override if item not in base]
    return override


def interpolate(value, env: dict[str, str]):
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, str):
        return substitute(value, env)
    if isinstance(value, Reset):
        raise InvalidTemplate("!reset left after merging")
    return value


def substitute(text: str, env: dict[str, str]) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if text.startswith("${", i):
            end = closing_brace(text, i + 2)
            out.append(braced(text[i + 2:end], env))
            i = end + 1
            continue
        name = NAME.match(text, i + 1)
        if name is None:
            raise InvalidTemplate(f"invalid template: {text!r}")
        out.append(env.get(name.group(), ""))
        i = name.end()
    return "".join(out)


def closing_brace(text: str, start: int) -> int:
    depth = 1
    for position in range(start, len(text)):
        if text.startswith("${", position):
            depth += 1
        elif text[position] == "}":
            depth -= 1
            if depth == 0:
                return position
    raise InvalidTemplate(f"unclosed ${{ in {text!r}")


def braced(inner: str, env: dict[str, str]) -> str:
    name = NAME.match(inner)
    if name is None:
        raise InvalidTemplate(f"invalid template: ${{{inner}}}")
    variable, rest = name.group(), inner[name.end():]
    value = env.get(variable)
    if rest == "":
        return value or ""
    operator = re.match(r":?[-?+]", rest)
    if operator is None:
        raise InvalidTemplate(f"invalid template: ${{{inner}}}")
    word = rest[operator.end():]
    missing = value is None or (operator.group().startswith(":") and value == "")
    kind = operator.group()[-1]
    if kind == "-":
        return substitute(word, env) if missing else value
    if kind == "?":
        if missing:
            raise MissingVariable(variable, word)
        return value
    return "" if missing else substitute(word, env)


def variables(value) -> set[str]:
    """Every variable a file's values refer to."""
    if isinstance(value, dict):
        return set().union(*(variables(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(variables(v) for v in value))
    if isinstance(value, str):
        return set(re.findall(r"(?<!\$)\$\{?([_A-Za-z][_A-Za-z0-9]*)", value.replace("$$", "")))
    return set()


def render(files: list[Path], env: dict[str, str]) -> dict:
    """`docker compose -f FILE [-f FILE ...] config` with this environment (and no .env)."""
    return interpolate(functools.reduce(merge, (load(f) for f in files)), env)
