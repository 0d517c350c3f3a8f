"""The command line every generator shares: `--set KEY=VALUE` over the mixin config, `--out DIR`, and `--check`,
which writes nothing and exits 1 when a file in the output directory differs from what would be written.

A generator only says what it renders and which settings it reads:

    RULES = Generator("python -m mixin.generate", "Writes the rule files.", RULES_DIR, render, settings=("job_selector",))
    raise SystemExit(RULES.main())
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mixin.config import Config

ROOT = Path(__file__).resolve().parent.parent
SWITCHES = {"true": True, "false": False}


@dataclass(frozen=True)
class Generator:
    command: str                                  # how to run it, for the message when committed files drift
    description: str
    out: Path                                     # where the committed files are (the default of --out)
    render: Callable[[Config], Mapping[str, str]]  # file name, relative to the output directory -> its text
    settings: tuple[str, ...] = ()                # the Config fields --set may change; none: no --set option

    def main(self, argv: list[str] | None = None) -> int:
        parser = argparse.ArgumentParser(description=self.description)
        parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file in the output directory is out of date")
        if self.settings:
            parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                                help=f"override a mixin setting, one of {', '.join(self.settings)} (lists comma-separated)")
        parser.add_argument("--out", type=Path, default=self.out, help=f"directory to write to (default {_shown(self.out)})")
        args = parser.parse_args(argv)
        files = self.render(config_from(getattr(args, "set", []), self.settings))
        if args.check:
            stale = [str(args.out / name) for name, text in files.items() if not _holds(args.out / name, text)]
            if stale:
                print(f"out of date (run: {self.command}):", *stale, sep="\n  ", file=sys.stderr)
                return 1
            return 0
        for name, text in files.items():
            path = args.out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return 0


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _holds(path: Path, text: str) -> bool:
    return path.is_file() and path.read_text() == text


def config_from(settings: list[str], settable: tuple[str, ...]) -> Config:
    """The default Config with each KEY=VALUE of `settings` applied, the value read as the type of the key's default
    (true or false for a switch, comma-separated for a list)."""
    defaults = Config()
    changes: dict[str, object] = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or key not in settable:
            raise SystemExit(f"--set takes KEY=VALUE with KEY one of {', '.join(settable)}")
        changes[key] = _parse(key, value, getattr(defaults, key))
    try:
        return defaults.replace(**changes)
    except ValueError as error:
        raise SystemExit(f"--set: {error}") from None


def _parse(key: str, value: str, default: object) -> object:
    if isinstance(default, bool):
        if value not in SWITCHES:
            raise SystemExit(f"--set {key} takes true or false")
        return SWITCHES[value]
    if isinstance(default, tuple):
        return tuple(item for item in value.split(",") if item)
    if isinstance(default, str):
        return value
    raise TypeError(f"{key}: a {type(default).__name__} setting cannot be read from the command line")
