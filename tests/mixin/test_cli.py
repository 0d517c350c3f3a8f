"""The command line the generators share: --set read against the mixin config, --out, and --check."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from mixin import generate
from mixin.cli import Generator, config_from
from mixin.config import Config

ROOT = Path(__file__).resolve().parent.parent.parent


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"generator_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATORS = {"rules": generate.RULES, "dashboards": _load(ROOT / "grafana" / "generate.py").DASHBOARDS,
              "kubernetes": _load(ROOT / "deploy" / "kubernetes" / "generate.py").KUBERNETES}


def test_each_setting_is_read_as_the_type_of_its_default():
    config = config_from(["job_selector=job=\"a\",env=\"b\"", "fixed_request_alerts=true", "dashboard_tags=sollol,,mixin"],
                         ("job_selector", "fixed_request_alerts", "dashboard_tags"))
    assert config.job_selector == 'job="a",env="b"'  # only the first = splits
    assert config.fixed_request_alerts is True
    assert config.dashboard_tags == ("sollol", "mixin")
    assert config_from(["fixed_request_alerts=false"], ("fixed_request_alerts",)).fixed_request_alerts is False
    assert config_from([], ()) == Config()


@pytest.mark.parametrize(("setting", "message"), [
    ("nonsense=1", "KEY=VALUE"),
    ("job_selector", "KEY=VALUE"),
    ("runbook_url_base=https://x.org", "KEY=VALUE"),  # a Config field, but not one this generator reads
    ("fixed_request_alerts=yes", "true or false"),
    ("slo_window=2d", "--set: slo_window"),  # the config's own validation
])
def test_a_bad_setting_stops_with_a_message(setting, message):
    with pytest.raises(SystemExit, match=message):
        config_from([setting], ("job_selector", "fixed_request_alerts", "slo_window"))


@pytest.mark.parametrize("name", GENERATORS)
def test_every_generator_reads_only_config_fields_it_can_parse(name):
    generator = GENERATORS[name]
    fields = {field.name for field in dataclasses.fields(Config)}
    assert set(generator.settings) <= fields
    defaults = Config()
    for key in generator.settings:
        value = getattr(defaults, key)
        text = ",".join(value) if isinstance(value, tuple) else str(value).lower() if isinstance(value, bool) else value
        assert getattr(config_from([f"{key}={text}"], generator.settings), key) == value, key


def _rendering(config: Config) -> dict[str, str]:
    return {"top.txt": f"{config.job_selector}\n", "nested/dir/inner.txt": f"{config.cluster_label}\n"}


SAMPLE = Generator(command="python sample.py", description="A sample.", out=ROOT / "nowhere", render=_rendering,
                   settings=("job_selector", "cluster_label"))


def test_it_writes_every_file_under_out_and_check_then_passes(tmp_path):
    assert SAMPLE.main(["--set", 'job_selector=job="x"', "--out", str(tmp_path)]) == 0
    assert (tmp_path / "top.txt").read_text() == 'job="x"\n'
    assert (tmp_path / "nested" / "dir" / "inner.txt").read_text() == "cluster\n"
    assert SAMPLE.main(["--set", 'job_selector=job="x"', "--out", str(tmp_path), "--check"]) == 0


def test_check_fails_on_a_changed_or_missing_file_and_writes_nothing(tmp_path, capsys):
    SAMPLE.main(["--out", str(tmp_path)])
    (tmp_path / "nested" / "dir" / "inner.txt").unlink()
    assert SAMPLE.main(["--set", "cluster_label=site", "--out", str(tmp_path), "--check"]) == 1
    stale = capsys.readouterr().err
    assert "python sample.py" in stale and "top.txt" not in stale and "inner.txt" in stale
    assert SAMPLE.main(["--set", 'job_selector=job="y"', "--out", str(tmp_path), "--check"]) == 1
    assert "top.txt" in capsys.readouterr().err
    assert (tmp_path / "top.txt").read_text() == 'job="sollol"\n' and not (tmp_path / "nested" / "dir" / "inner.txt").exists()


def test_a_generator_that_reads_no_setting_has_no_set_option(tmp_path, capsys):
    plain = dataclasses.replace(SAMPLE, settings=())
    with pytest.raises(SystemExit) as stopped:
        plain.main(["--set", "job_selector=x", "--out", str(tmp_path)])
    assert stopped.value.code == 2 and "--set" in capsys.readouterr().err
    assert plain.main(["--out", str(tmp_path)]) == 0


def test_the_default_out_is_where_the_committed_files_are():
    assert GENERATORS["rules"].out == ROOT / "prometheus" / "rules"
    assert GENERATORS["dashboards"].out == ROOT / "grafana" / "dashboards"
    assert GENERATORS["kubernetes"].out == ROOT / "deploy" / "kubernetes"
