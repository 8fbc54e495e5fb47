"""The `automl` command.

    automl [KEY=VALUE ...] [--multirun]     a search, configured by Hydra overrides
    automl plugins [--check] [--json]       installed plugins, what they register, load errors
    automl new-plugin NAME [--dir PATH]     render the plugin template
    automl predict RUN_DIR FILE [--out CSV] score new rows with a run's saved predictor

Start-up stays light: nothing here imports torch, pandas or Lightning before a search actually runs, so
`automl --help` and `automl plugins` answer in well under two seconds.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Optional

from automl.errors import AutoMLError, Interrupted

log = logging.getLogger("automl")

#: `automl <command> ...`: the module of each command, imported only when it runs; its `main(argv) -> int`
#: takes the arguments after the command's name. Anything else is a search, configured by Hydra overrides.
COMMANDS = {
    "plugins": "automl.commands.plugins",
    "new-plugin": "automl.commands.new_plugin",
    "predict": "automl.commands.predict",
    "export": "automl.commands.export",
    "serve": "automl.commands.serve",
    "report": "automl.commands.report",
    "dashboard": "automl.commands.dashboard",
}


def main(argv: Optional[list[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] and args[0] in COMMANDS:
            import importlib

            return importlib.import_module(COMMANDS[args[0]]).main(args[1:])
        return _search(args)
    except AutoMLError as exc:
        return _fail(exc, debug=_debug_requested(args))
    except Interrupted as exc:  # the files of the finished trials are written; the message says what next
        print(f"automl: stopped by {exc.reason}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("automl: interrupted; the study keeps every finished trial: run the same command again to continue",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # `automl plugins | head`: the reader left early, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def console() -> None:
    """The `automl` command: `main()`, then exit without the interpreter's teardown.

    With pandas, scikit-learn, Hydra and Optuna loaded, a normal exit spends about 0.4 s tearing modules
    down after the work is done and every file is written; the command leaves as soon as its output is
    flushed. `main()` itself returns normally, for tests and for callers that embed it.
    """
    try:
        code = main()
    except SystemExit as exc:  # Hydra exits this way on composition errors
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _debug_requested(args: list[str]) -> bool:
    return os.environ.get("AUTOML_DEBUG") == "1" or "debug=true" in args


def _fail(exc: AutoMLError, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exception(exc)
    print(f"automl: error: {exc}", file=sys.stderr)
    return 2


HELP = """automl: search architectures and hyperparameters of deep-learning models for a business vertical.

Usage:
  automl [KEY=VALUE ...]              run a search (Hydra overrides; --multirun sweeps)
  automl plugins [--check] [--json]   installed plugins, what they register, load errors; the contract check
  automl new-plugin NAME [--dir DIR]  scaffold a domain plugin (guide: docs/plugins.md)
  automl predict RUN_DIR FILE         score new rows with a run's predictor (--out CSV, --keep ID_COLUMN)
  automl report RUN_DIR               write RUN_DIR/report.html again from the run's files (offline, printable)
  automl dashboard RUN_DIR            optuna-dashboard on the run's study at http://127.0.0.1:8080 (--port P)
  automl export RUN_DIR               the predictor as one ONNX graph, checked against it (--quantize int8)
  automl serve RUN_DIR                serve it over HTTP on 127.0.0.1 (--port, --api-key-env VAR; docs at /docs)

Examples:
  automl                                            short search on the default dataset
  automl dataset=penguins search.n_trials=30
  automl domain=tabular data.path=loans.csv data.target=Status run_dir=runs/loans
  automl --multirun search.sampler=tpe,random
  automl domain=medical --help                      this help, with that domain's config

Installed domains: {domains} (`automl plugins` lists their datasets, model families and metrics)

== Config (override any key with KEY=VALUE) ==
{config}
Results go to run_dir: leaderboard.csv, metrics.json, predictor/ (load it with automl.load(run_dir)), run.json,
model_card.md, report.html.
Errors are one line; debug=true (or AUTOML_DEBUG=1) adds the traceback. Hydra: --cfg job, --multirun.
"""


def _help(args: list[str]) -> int:
    """The config as the given overrides compose it, without Hydra's slow listing of its own groups."""
    from omegaconf import OmegaConf

    from automl.compose import compose
    from automl.host import PluginHost

    host = PluginHost.installed()
    cfg = compose(host, [a for a in args if a not in ("--help", "-h")])
    print(HELP.format(domains=", ".join(host.domains.names()), config=OmegaConf.to_yaml(cfg, resolve=False)))
    return 0


def _search(args: list[str]) -> int:
    import hydra

    from automl.compose import CONFIG_MODULE, CONFIG_NAME, rewrite_domain_args, searchpath_override
    from automl.host import PluginHost
    from automl.search.worker_handle import WorkerHandle

    if "--help" in args or "-h" in args:
        return _help(args)
    # The worker starts before Hydra composes the config: its imports (torch, about three seconds) overlap
    # everything the host does. A run that ends up needing no worker closes it.
    spare = [] if "search.n_workers=0" in args else [WorkerHandle()]
    host = PluginHost.installed()
    overrides = rewrite_domain_args(args, host) + searchpath_override(host)

    def task(dict_cfg) -> None:  # noqa: ANN001 - Hydra passes a DictConfig
        from hydra.core.hydra_config import HydraConfig

        from automl.config import RunConfig
        from automl.run import run
        from automl.search.study import redact_files

        try:
            cfg = RunConfig.from_container(dict_cfg)
            cfg.run_dir = HydraConfig.get().runtime.output_dir  # per job under --multirun
            redact_files(Path(cfg.run_dir) / ".hydra", cfg.search.storage)
            result = run(cfg, host, workers=spare.pop() if spare else None)
        except AutoMLError as exc:
            raise SystemExit(_fail(exc, debug=_debug_requested(args) or bool(dict_cfg.get("debug")))) from None
        _print_summary(result)
        if result.outcome.problems:  # a worker died: the files are written, but trials were lost
            print(f"automl: error: {'; '.join(result.outcome.problems)}. The files were written from the trials "
                  "that finished; run the same command again to run the lost ones", file=sys.stderr)
            raise SystemExit(1)

    hydra_main = hydra.main(version_base=None, config_path=f"pkg://{CONFIG_MODULE}", config_name=CONFIG_NAME)(task)
    saved = sys.argv
    sys.argv = ["automl", *overrides]
    try:
        hydra_main()
    finally:
        sys.argv = saved
        for workers in spare:  # never used (the run failed before its search)
            workers.close()
    return 0


def _print_summary(result) -> None:  # noqa: ANN001
    shown = ", ".join(f"{k} {v:.4f}" if v is not None and v == v else f"{k} undefined"
                      for k, v in list(result.test_metrics.items())[:6])
    if result.outcome.final.report.n_test == 0:
        shown = "no test rows (data.test_size=0: measure the model on rows of your own)"
    scored = "cross-validated" if result.cross_validated else "validation"
    print(f"best {result.family} ({scored} {result.metric} {result.best_value:.4f}); test: {shown}")
    print(f"results in {result.run_dir}: leaderboard.csv, metrics.json, predictor/")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
