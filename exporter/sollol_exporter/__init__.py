"""Prometheus exporter for SOLLOL clusters."""

__version__ = "0.1.0"
