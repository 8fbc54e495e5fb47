"""`automl dashboard RUN_DIR`: optuna-dashboard on the run's own study, served on 127.0.0.1.

The storage is the run's: its journal file (`RUN_DIR/study.journal`), or the `search.storage` URL its config
recorded (a database shared by several machines), or `--storage URL` (the recorded URL has its password
replaced by *** and cannot connect). optuna-dashboard's WSGI app is served by the standard library's server,
bound to loopback unless `--host` says otherwise; it has no authentication, so it is not for a shared network.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from automl.errors import AutoMLError, ConfigError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="automl dashboard",
        description="Serve optuna-dashboard on a run's study (its journal file, or the storage URL it used) and "
                    "print the URL. Ctrl-C stops it.")
    parser.add_argument("run_dir", help="the run directory")
    parser.add_argument("--port", type=int, default=8080, help="the port to listen on (default 8080; 0: any free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to bind (default 127.0.0.1: this machine only; the dashboard has no login)")
    parser.add_argument("--storage", metavar="URL",
                        help="the Optuna storage URL, when the run used a database whose password the run "
                             "directory does not keep")
    args = parser.parse_args(argv)
    storage = open_storage(Path(args.run_dir).expanduser(), args.storage)
    server = make_server(storage, args.host, args.port)
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    if args.host not in LOOPBACK:
        print(f"automl: warning: the dashboard listens on {args.host}, reachable from other machines, and has no "
              "login", file=sys.stderr)
    print(f"optuna-dashboard for {args.run_dir}: http://{shown}:{port}/dashboard/ (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def open_storage(run_dir: Path, url: str | None) -> Any:
    """The run's Optuna storage: `url`, else the config's `search.storage`, else its journal file."""
    from automl.report.run_view import RunView
    from automl.search.study import JOURNAL, make_storage

    if not run_dir.is_dir():
        raise AutoMLError(f"no run directory at {run_dir}: give the run_dir of a run")
    recorded = None
    config = RunView(run_dir).config
    if config is not None:
        recorded = config.search.storage
    url = url or recorded
    if url and "***" in url:
        raise ConfigError(f"the run's study is in search.storage={url}, whose password is not kept: pass "
                          "--storage URL with the password")
    if not url and not (run_dir / JOURNAL).exists():
        raise AutoMLError(f"no study in {run_dir}: {JOURNAL} is missing (a run with search.storage=URL: pass "
                          "--storage URL)")
    return make_storage(url, run_dir)


def make_server(storage: Any, host: str, port: int) -> Any:
    """optuna-dashboard's WSGI app on a threaded standard-library server, bound now (so a busy port is a
    one-line error) and quiet (no line per request)."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server as wsgi_server

    import optuna_dashboard

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the standard library's name
            pass

    app = optuna_dashboard.wsgi(storage)
    try:
        return wsgi_server(host, port, app, server_class=Server, handler_class=Quiet)
    except OSError as exc:
        raise AutoMLError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose another --port") from None
