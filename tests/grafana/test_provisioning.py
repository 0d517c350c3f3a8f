from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
PROVISIONING = ROOT / "grafana" / "provisioning"
DASHBOARD_MOUNT = "/var/lib/grafana/dashboards/sollol"  # where grafana/dashboards is mounted


def test_datasources_have_fixed_uids_and_the_scrape_interval():
    doc = yaml.safe_load((PROVISIONING / "datasources" / "sollol.yml").read_text())
    assert doc["apiVersion"] == 1
    by_type = {d["type"]: d for d in doc["datasources"]}
    prometheus = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    assert by_type["prometheus"]["uid"] == "sollol-prometheus"
    assert by_type["prometheus"]["jsonData"]["timeInterval"] == prometheus["global"]["scrape_interval"]
    assert by_type["prometheus"]["isDefault"] is True
    assert by_type["alertmanager"]["uid"] == "sollol-alertmanager"
    assert by_type["alertmanager"]["jsonData"]["implementation"] == "prometheus"
    assert by_type["prometheus"]["jsonData"]["alertmanagerUid"] == "sollol-alertmanager"


def test_dashboard_provider_points_at_the_dashboards_folder():
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "sollol.yml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == DASHBOARD_MOUNT
    assert sorted(p.name for p in (ROOT / "grafana" / "dashboards").glob("*.json"))
