"""Command line: flags in Prometheus style, SIGHUP (or POST /-/reload with --web.enable-lifecycle) reloads the
config, SIGTERM stops cleanly; `sollol-exporter agent` is the per-host gRPC health service."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
import resource
import signal
import sys
import threading

from sollol_exporter import __version__, config, logs
from sollol_exporter.build import revision
from sollol_exporter.collectors import OPTIONAL as OPTIONAL_COLLECTORS
from sollol_exporter.config.secret_files import unreadable_key_files
from sollol_exporter.state import State
from sollol_exporter.web.config import WebConfigError
from sollol_exporter.web.routes import DEFAULT_TELEMETRY_PATH, check_telemetry_path, serve
from sollol_exporter.web.watch import WebConfigWatcher

log = logging.getLogger("sollol_exporter")
DEFAULT_LISTEN = ":9877"
WEB_CONFIG_HELP = "exporter-toolkit web config file (TLS, basic auth, headers); see the README (default: none)"
EPILOG = """\
commands:
  agent                 gRPC health service (grpc.health.v1) for the rpc-server workers of the
                        host it runs on; start one per worker host (sollol-exporter agent --help)

SIGHUP reloads --config.file and --web.config.file; so does POST /-/reload with --web.enable-lifecycle.
A collector turned off is neither read nor reported; --config.check checks the files whatever the collectors.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sollol-exporter",
        usage="%(prog)s [flags]\n       %(prog)s agent --rpc.port PORT [flags]",
        description="Prometheus exporter for SOLLOL clusters: Ollama nodes, llama.cpp coordinators and rpc-server workers.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config.file", dest="config_file", default=None, help="YAML config file (default: none; defaults plus SOLLOL_* environment)")
    p.add_argument("--config.check", dest="config_check", action="store_true", help="validate the config (and the web config) and exit")
    p.add_argument("--web.listen-address", dest="listen", default=DEFAULT_LISTEN, help=f"address to serve on (default {DEFAULT_LISTEN}: IPv4 and IPv6)")
    p.add_argument("--web.config.file", dest="web_config", default=None, help=WEB_CONFIG_HELP)
    p.add_argument("--web.enable-lifecycle", dest="enable_lifecycle", action="store_true",
                   help="enable POST /-/reload, which reloads the config files as SIGHUP does (for config-reloader "
                        "sidecars); without it the endpoint answers 403 (default: off)")
    p.add_argument("--web.telemetry-path", dest="telemetry_path", type=_telemetry_path, metavar="PATH",
                   default=DEFAULT_TELEMETRY_PATH, help=f"path to serve the metrics on (default {DEFAULT_TELEMETRY_PATH})")
    p.add_argument("--web.max-requests", dest="max_requests", type=_non_negative, default=40,
                   help="maximum concurrent requests for the metrics (--web.telemetry-path); more get 503 at once; "
                        "other paths have their own allowance of 8; 0 for no limit (default 40)")
    p.add_argument("--web.disable-exporter-metrics", dest="disable_exporter_metrics", action="store_true",
                   help="leave out the exporter process's own metrics (process_*, python_gc_*, python_info); "
                        "the sollol_exporter_* metrics stay (default: off)")
    p.add_argument("--log.level", dest="log_level", default="info", choices=logs.LEVELS)
    p.add_argument("--log.format", dest="log_format", default="logfmt", choices=("logfmt", "json"))
    p.add_argument("--version", action="version", version=version_text())
    collectors = p.add_argument_group("collectors", "Every collector is on unless turned off with --no-collector.<name>;\n"
                                                    "the exporter's own (sollol_exporter_*) is always on.")
    for name, what in OPTIONAL_COLLECTORS.items():
        # default None, not True: BooleanOptionalAction would append "(default: True)" to the help
        collectors.add_argument(f"--collector.{name}", dest=_collector_dest(name), action=argparse.BooleanOptionalAction,
                                default=None, help=what)
    return p


def version_text() -> str:
    return f"sollol-exporter {__version__} (revision {revision()})"


def _collector_dest(name: str) -> str:
    return f"collector_{name}"


def disabled_collectors(args: argparse.Namespace) -> frozenset[str]:
    """The collectors turned off with --no-collector.<name> (the last of --collector.x / --no-collector.x wins)."""
    return frozenset(name for name in OPTIONAL_COLLECTORS if getattr(args, _collector_dest(name)) is False)


def _telemetry_path(text: str) -> str:
    try:
        return check_telemetry_path(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def agent_parser() -> argparse.ArgumentParser:
    from sollol_exporter.agent import service as agent  # with grpc: only the agent pays for it

    p = argparse.ArgumentParser(
        prog="sollol-exporter agent",
        description="gRPC health service (grpc.health.v1) for the rpc-server workers on this host.",
    )
    p.add_argument("--web.listen-address", dest="listen", default=agent.DEFAULT_LISTEN, help=f"gRPC address (default {agent.DEFAULT_LISTEN})")
    p.add_argument("--web.config.file", dest="web_config", default=None,
                   help="exporter-toolkit web config file: its tls_server_config secures the gRPC port (default: none)")
    p.add_argument("--rpc.port", dest="ports", type=int, action="append", required=True, help="worker port; repeat for each worker")
    p.add_argument("--check.interval", dest="interval", type=float, default=1.0, help="seconds between socket-table reads (default 1)")
    p.add_argument("--log.level", dest="log_level", default="info", choices=logs.LEVELS)
    p.add_argument("--log.format", dest="log_format", default="logfmt", choices=("logfmt", "json"))
    return p


def _load_web_config(path: str | None) -> WebConfigWatcher | None:
    """The web config watcher, or None without a file; exits with a clear line if the file is unusable."""
    if not path:
        return None
    try:
        return WebConfigWatcher(path)
    except WebConfigError as err:
        log.error("invalid web configuration", extra=logs.fields(error=str(err)))
        print(f"sollol-exporter: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def _raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard one, as Go programs do; the connection cap follows it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def run_agent(argv: list[str]) -> int:
    from sollol_exporter.agent import service as agent

    args = agent_parser().parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    web = _load_web_config(args.web_config)
    try:
        node_agent = agent.Agent(args.ports, args.listen, args.interval, web=web)
    except (OSError, RuntimeError) as err:
        log.error("cannot listen", extra=logs.fields(address=args.listen, error=str(err)))
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if web is not None:
        signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=web.reload, name="web-config-reload", daemon=True).start())
    node_agent.start()
    log.info("agent listening", extra=logs.fields(address=args.listen, ports=",".join(map(str, args.ports)), tls=node_agent.tls))
    stop.wait()
    node_agent.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["agent"]:
        return run_agent(argv[1:])
    args = parser().parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    disabled = disabled_collectors(args)

    def load(path: str | None) -> config.Config:
        """The config file, plus what the command line says about it (at start and on every reload)."""
        return dataclasses.replace(config.load(path), disabled_collectors=disabled)

    try:
        loaded = load(args.config_file)
    except config.ConfigError as err:
        log.error("invalid configuration", extra=logs.fields(error=str(err)))
        print(f"sollol-exporter: {err}", file=sys.stderr)
        return 2
    web = _load_web_config(args.web_config)
    if args.config_check:
        # A key file is read at every scrape, and may come later (an optional Kubernetes Secret, say): one that
        # cannot be used now is a warning, as it is at run time, not a refusal.
        for problem in unreadable_key_files(loaded.coordinators, args.config_file):
            print(f"sollol-exporter: warning: {problem}", file=sys.stderr)
        checked = [args.config_file or "defaults"] + ([args.web_config] if args.web_config else [])
        print(f"{', '.join(checked)}: OK")
        return 0
    max_connections = max(64, min(16384, _raise_open_files_limit() - 128))
    state = State(loaded, args.config_file, exporter_metrics=not args.disable_exporter_metrics)

    def reload() -> bool:
        """Both files again; True when both loaded (a failed one keeps its previous version)."""
        ok = state.reload(load)
        if web is not None:
            ok = web.reload() and ok
        return ok

    reloader = Reloader(reload)
    try:
        server = serve(state, args.listen, web, max_requests=args.max_requests, max_connections=max_connections,
                       reload=reloader.reload if args.enable_lifecycle else None, telemetry_path=args.telemetry_path)
    except (OSError, ValueError) as err:
        log.error("cannot listen", extra=logs.fields(address=args.listen, error=str(err)))
        reloader.stop()
        state.close()
        return 1

    stop = threading.Event()
    signal.signal(signal.SIGHUP, lambda *_: reloader.request())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    gc.freeze()  # what start-up made lives for the process: the collector need not walk it at every scrape
    log.info("listening", extra=logs.fields(address=args.listen, version=__version__, revision=revision(),
                                            config=args.config_file or "(defaults)", telemetry_path=args.telemetry_path,
                                            disabled_collectors=",".join(sorted(disabled)) or "none",
                                            tls=bool(web and web.tls), basic_auth=bool(web and web.loaded.config.users),
                                            lifecycle=args.enable_lifecycle))
    stop.wait()
    log.info("stopping")
    _stop_within(SHUTDOWN_SECONDS, server.shutdown, server.server_close, reloader.stop, state.close)
    # A read stuck in the kernel (a name lookup, a peer that never answers) must not keep the process alive: every
    # resource has been released above, so leave without waiting for such threads.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


SHUTDOWN_SECONDS = 5.0


def _stop_within(seconds: float, *steps) -> None:
    """Run the shutdown steps in order on a thread of their own, waiting for them at most `seconds`."""
    def run() -> None:
        for step in steps:
            try:
                step()
            except Exception:
                log.debug("shutdown step failed", exc_info=True)

    worker = threading.Thread(target=run, name="shutdown", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        log.warning("shutdown took too long; exiting anyway", extra=logs.fields(seconds=seconds))


class Reloader:
    """Reloads on one thread, in order. SIGHUP asks without waiting (requests arriving during a reload are served
    by one more reload after it); POST /-/reload asks and waits for the result of a reload that starts after it."""

    def __init__(self, reload):
        self._reload = reload
        self._wanted = 0  # requests made
        self._done = 0  # requests served by a finished reload
        self._result = True
        self._stopping = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="reload", daemon=True)
        self._thread.start()

    def request(self) -> int:
        """Ask for a reload; the number to wait for."""
        with self._cond:
            self._wanted += 1
            self._cond.notify_all()
            return self._wanted

    def reload(self) -> bool:
        """Reload and wait for it (POST /-/reload): True when every file loaded."""
        ticket = self.request()
        with self._cond:
            self._cond.wait_for(lambda: self._done >= ticket or self._stopping)
            return self._result and self._done >= ticket

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(SHUTDOWN_SECONDS)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._wanted > self._done or self._stopping)
                if self._stopping:
                    return
                serving = self._wanted  # every request made so far is served by this reload
            try:
                result = self._reload()
            except Exception:
                log.error("reload failed", exc_info=logs.debug_traceback(log))
                result = False
            with self._cond:
                self._done, self._result = serving, result
                self._cond.notify_all()
