#!/usr/bin/env python3
"""Dashboards as code: writes grafana/dashboards/*.json from the mixin's dashboards (mixin/dashboards/, one module per
dashboard, grafana-foundation-sdk) and its configuration (mixin/config.py: job selector, cluster label name, tags,
refresh).

    .venv/bin/python grafana/generate.py            # rewrite the JSON files
    .venv/bin/python grafana/generate.py --check    # exit 1 if the committed JSON differs from the code
    .venv/bin/python grafana/generate.py --set job_selector='job="monitoring/sollol-exporter"' --set cluster_label=k8s_cluster --out DIR

The generated JSON is committed; a test fails when it drifts from the code. The options are mixin/cli.py's.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mixin.cli import Generator  # noqa: E402
from mixin.dashboards import build, render  # noqa: E402

__all__ = ["DASHBOARDS", "build", "main", "render"]

DASHBOARDS = Generator(
    command="python grafana/generate.py",
    description="Writes grafana/dashboards/*.json from the mixin's dashboards (mixin/dashboards/) and its config.",
    out=ROOT / "grafana" / "dashboards",
    render=render,
    settings=("job_selector", "cluster_label", "instance_label", "dashboard_refresh", "dashboard_tags", "slo_window"),
)


def main(argv: list[str] | None = None) -> int:
    return DASHBOARDS.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
