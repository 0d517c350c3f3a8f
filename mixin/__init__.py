"""The SOLLOL monitoring mixin: alert and recording rules and Grafana dashboards, generated from one config."""
