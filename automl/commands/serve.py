"""`automl serve RUN_DIR`: the run's predictor over HTTP (FastAPI on uvicorn), on 127.0.0.1 unless told."""

from __future__ import annotations

import argparse
import logging
import os

from automl.errors import AutoMLError

log = logging.getLogger("automl.serve")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def main(argv: list[str]) -> int:
    from automl.serve.security import MAX_BODY_BYTES

    parser = argparse.ArgumentParser(
        prog="automl serve",
        description="Serve a run's predictor over HTTP: POST /predict (or /recommend), GET /schema, /health, /docs. "
                    "Scores with the run's ONNX export when there is a current one (automl export), else with torch.")
    parser.add_argument("run_dir", help="the run directory")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--api-key-env", metavar="VAR",
                        help="require the API key held in environment variable VAR on every endpoint but /health "
                             "(header X-API-Key or Authorization: Bearer)")
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES,
                        help=f"refuse larger request bodies with 413 (default {MAX_BODY_BYTES})")
    parser.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto",
                        help="auto (default): the ONNX export if current, else torch; onnx or torch to insist")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    args = parser.parse_args(argv)

    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise AutoMLError(f"--api-key-env {args.api_key_env}: that environment variable is not set or empty; set "
                              f"it to the key clients must send (export {args.api_key_env}=...)")
    if args.max_body_bytes < 1:
        raise AutoMLError(f"--max-body-bytes {args.max_body_bytes} must be at least 1")

    import uvicorn

    from automl.serve.app import create_app

    logging.basicConfig(level=getattr(logging, args.log_level.upper()), format="%(levelname)s: %(message)s")
    app = create_app(args.run_dir, api_key=api_key, max_body_bytes=args.max_body_bytes, backend=args.backend)
    backend = app.state.backend
    access = f"API key required (from ${args.api_key_env})" if api_key else "no API key"
    log.info("serving %s from the %s on http://%s:%d (docs at /docs); %s", args.run_dir, backend.detail,
             args.host, args.port, access)
    if args.host not in LOOPBACK and not api_key:
        log.warning("bound to %s without an API key: anyone who reaches this address can query the model "
                    "(use --api-key-env VAR)", args.host)
    # uvicorn's access log shows method, path and status: never a header, so never the key.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
