"""Command line: flags in Prometheus style, SIGHUP reloads the config, SIGTERM stops cleanly."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from sollol_exporter import __version__, agent, config, logs
from sollol_exporter.app import State
from sollol_exporter.http import serve

log = logging.getLogger("sollol_exporter")
DEFAULT_LISTEN = ":9877"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sollol-exporter", description="Prometheus exporter for SOLLOL clusters.")
    p.add_argument("--config.file", dest="config_file", default=None, help="YAML config file (default: none; defaults plus SOLLOL_* environment)")
    p.add_argument("--config.check", dest="config_check", action="store_true", help="validate the config and exit")
    p.add_argument("--web.listen-address", dest="listen", default=DEFAULT_LISTEN, help=f"address to serve on (default {DEFAULT_LISTEN})")
    p.add_argument("--log.level", dest="log_level", default="info", choices=logs.LEVELS)
    p.add_argument("--log.format", dest="log_format", default="logfmt", choices=("logfmt", "json"))
    p.add_argument("--version", action="version", version=f"sollol-exporter {__version__}")
    return p


def agent_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sollol-exporter agent",
        description="gRPC health service (grpc.health.v1) for the rpc-server workers on this host.",
    )
    p.add_argument("--web.listen-address", dest="listen", default=agent.DEFAULT_LISTEN, help=f"gRPC address (default {agent.DEFAULT_LISTEN})")
    p.add_argument("--rpc.port", dest="ports", type=int, action="append", required=True, help="worker port; repeat for each worker")
    p.add_argument("--check.interval", dest="interval", type=float, default=1.0, help="seconds between socket-table reads (default 1)")
    p.add_argument("--log.level", dest="log_level", default="info", choices=logs.LEVELS)
    p.add_argument("--log.format", dest="log_format", default="logfmt", choices=("logfmt", "json"))
    return p


def run_agent(argv: list[str]) -> int:
    args = agent_parser().parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    try:
        node_agent = agent.Agent(args.ports, args.listen, args.interval)
    except (OSError, RuntimeError) as err:
        log.error("cannot listen", extra=logs.fields(address=args.listen, error=str(err)))
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    node_agent.start()
    log.info("agent listening", extra=logs.fields(address=args.listen, ports=",".join(map(str, args.ports))))
    stop.wait()
    node_agent.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["agent"]:
        return run_agent(argv[1:])
    args = parser().parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    try:
        loaded = config.load(args.config_file)
    except config.ConfigError as err:
        log.error("invalid configuration", extra=logs.fields(error=str(err)))
        print(f"sollol-exporter: {err}", file=sys.stderr)
        return 2
    if args.config_check:
        print(f"{args.config_file or 'defaults'}: OK")
        return 0
    state = State(loaded, args.config_file)
    try:
        server = serve(state, args.listen)
    except (OSError, ValueError) as err:
        log.error("cannot listen", extra=logs.fields(address=args.listen, error=str(err)))
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=state.reload, args=(config.load,), daemon=True).start())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    log.info("listening", extra=logs.fields(address=args.listen, version=__version__, config=args.config_file or "(defaults)"))
    stop.wait()
    log.info("stopping")
    server.shutdown()
    server.server_close()
    state.close()
    return 0
