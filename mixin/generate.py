"""Writes the mixin's rule files (prometheus/rules/) from mixin/config.py.

    .venv/bin/python -m mixin.generate                 # rewrite prometheus/rules/*.yml
    .venv/bin/python -m mixin.generate --check         # exit 1 if the committed files differ
    .venv/bin/python -m mixin.generate --set job_selector='job="sollol-exporter"' --set cluster_label=k8s_cluster --out DIR

Dashboards come from the same config through grafana/generate.py; the options are mixin/cli.py's.
"""

from __future__ import annotations

from mixin.cli import ROOT, Generator
from mixin.rules import render

RULES = Generator(
    command="python -m mixin.generate",
    description=__doc__.splitlines()[0],
    out=ROOT / "prometheus" / "rules",
    render=render,
    settings=("job_selector", "cluster_label", "instance_label", "runbook_url_base", "slo_window", "fixed_request_alerts"),
)


def main(argv: list[str] | None = None) -> int:
    return RULES.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
