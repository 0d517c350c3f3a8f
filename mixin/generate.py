"""Writes the mixin's rule files (prometheus/rules/) from mixin/config.py.

    .venv/bin/python -m mixin.generate                 # rewrite prometheus/rules/*.yml
    .venv/bin/python -m mixin.generate --check         # exit 1 if the committed files differ
    .venv/bin/python -m mixin.generate --set job_selector='job="sollol-exporter"' --set cluster_label=k8s_cluster --out DIR

Dashboards come from the same config through grafana/generate.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mixin.config import Config
from mixin.rules import render

RULES_DIR = Path(__file__).resolve().parent.parent / "prometheus" / "rules"
SETTABLE = ("job_selector", "cluster_label", "instance_label", "runbook_url_base", "slo_window", "fixed_request_alerts")
SWITCHES = {"true": True, "false": False}


def config_from(settings: list[str]) -> Config:
    changes: dict[str, object] = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or key not in SETTABLE:
            raise SystemExit(f"--set takes KEY=VALUE with KEY one of {', '.join(SETTABLE)}")
        if key == "fixed_request_alerts":
            if value not in SWITCHES:
                raise SystemExit("--set fixed_request_alerts takes true or false")
            changes[key] = SWITCHES[value]
        else:
            changes[key] = value
    try:
        return Config().replace(**changes)
    except ValueError as error:
        raise SystemExit(f"--set: {error}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is out of date")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=f"override one of {', '.join(SETTABLE)}")
    parser.add_argument("--out", type=Path, default=RULES_DIR, help="directory to write to (default prometheus/rules)")
    args = parser.parse_args(argv)
    files = render(config_from(args.set))
    stale = []
    for name, text in files.items():
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("out of date (run: python -m mixin.generate):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
