"""Configuration: YAML file and SOLLOL's own environment, validated when parsed.

Every setting has a default, so an empty file (or none) monitors a default SOLLOL install on localhost.
Errors name the key and the line: `config.yml:12: coordinators[0].timout: unknown key (did you mean 'timeout'?)`.
Whatever the file holds (any bytes, any YAML), loading ends in a Config or a ConfigError, never another exception,
and no error message carries a secret.

yaml_source reads a file's YAML within bounds, schema turns it into dataclasses (both shared with the web config),
model holds the exporter config's dataclasses, checks its rules across fields, load puts them together.
"""

from sollol_exporter.config.durations import MAX_DURATION, parse_duration
from sollol_exporter.config.load import declared_parts, environment_defaults, load
from sollol_exporter.config.model import (
    Config,
    CoordinatorConfig,
    DashboardConfig,
    EventChannelsConfig,
    EventsConfig,
    GrpcProbeConfig,
    MetadataConfig,
    OllamaConfig,
    RedisConfig,
    RpcBackendConfig,
    RpcBackendsConfig,
    ScrapeConfig,
    coordinator_label,
    summary,
)
from sollol_exporter.config.schema import MAX_INT, count, duration, internal
from sollol_exporter.config.secret_files import MAX_KEY_FILE_BYTES, read_secret_file
from sollol_exporter.config.yaml_source import MAX_ALIAS_VALUES, MAX_DEPTH, MAX_NODES, MAX_SHOWN, ConfigError, unknown_tag

__all__ = [
    "MAX_ALIAS_VALUES", "MAX_DEPTH", "MAX_DURATION", "MAX_INT", "MAX_KEY_FILE_BYTES", "MAX_NODES", "MAX_SHOWN",
    "Config", "ConfigError", "CoordinatorConfig", "DashboardConfig", "EventChannelsConfig", "EventsConfig",
    "GrpcProbeConfig", "MetadataConfig", "OllamaConfig", "RedisConfig", "RpcBackendConfig", "RpcBackendsConfig",
    "ScrapeConfig", "coordinator_label", "count", "declared_parts", "duration", "environment_defaults", "internal",
    "load", "parse_duration", "read_secret_file", "summary", "unknown_tag",
]
