"""``pykatib``: run Katib Experiment YAML on this machine, and look at what ran.

    pykatib run EXPERIMENT.yaml --local      run (or resume) it here; progress, table, best, report
    pykatib get experiments | trials [-e EXPERIMENT]
    pykatib describe experiment|trial NAME
    pykatib report EXPERIMENT                 (re)write the HTML report
    pykatib delete experiment NAME

State lives in the work directory (``--workdir``, env ``PYKATIB_WORKDIR``, default ``./.pykatib``).
Exit status: 0 succeeded, 1 the experiment failed, 2 bad input (one line, no traceback), 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydantic
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from katib_core import constants, trial_results, validation
from katib_core.errors import AlreadyExistsError, NotFoundError, ValidationError
from katib_core.models import Experiment, Trial, first_error
from pykatib_local import backend, listing, report, summaries
from pykatib_local.progress import ProgressView
from pykatib_local.session import LocalSession, default_workdir

_console = Console(stderr=True)
#: Results on stdout. Piped or redirected, lines are never cut to 80 columns (names stay whole).
_out = Console() if sys.stdout.isatty() else Console(width=100_000)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``pykatib`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    _setup_logging()
    previous = signal.signal(signal.SIGTERM, _interrupt) if _main_thread() else None
    try:
        return int(args.handler(args))
    except (ValidationError, NotFoundError, AlreadyExistsError) as exc:
        _console.print(f"[red]pykatib: error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        _console.print("interrupted: trials stopped; rerun the same command to resume")
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (e.g. from a job scheduler) stops a run as Ctrl-C does: cleanly, resumably."""
    raise KeyboardInterrupt


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _setup_logging() -> None:
    """Local mode's notices (e.g. "container images are ignored") as one line each on stderr."""
    logger = logging.getLogger("pykatib_local")
    if any(isinstance(h, _StderrHandler) for h in logger.handlers):
        return
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("pykatib: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (tests and embedders replace it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pykatib", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="state directory (default ./.pykatib)")
    parser.add_argument("-n", "--namespace", default="default")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run (or resume) an Experiment YAML")
    run.add_argument("file", type=Path)
    run.add_argument("--local", action="store_true", help="run on this machine (required: no cluster mode here)")
    run.add_argument("--db-url", default=None, help="metrics database (default: SQLite in the work directory)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--push-auth",
        action="store_true",
        help="trials may push only their own metrics (a per-trial token in KATIB_TRIAL_TOKEN)",
    )
    run.add_argument(
        "--katib-config",
        default=None,
        help="katib-config file: algorithms served at an endpoint (default $PYKATIB_KATIB_CONFIG,"
        " else katib-config.yaml in the work directory)",
    )
    run.set_defaults(handler=_run)

    get = commands.add_parser("get", help="list experiments or trials")
    get.add_argument("what", choices=["experiments", "trials"])
    get.add_argument("-e", "--experiment", default=None)
    get.add_argument(
        "-o",
        "--output",
        choices=listing.FORMATS,
        default="table",
        help="table (rounded), wide (every metric, failure reasons, times), or json/yaml/csv (exact values)",
    )
    get.set_defaults(handler=_get)

    describe = commands.add_parser("describe", help="one experiment or trial in detail")
    describe.add_argument("what", choices=["experiment", "trial"])
    describe.add_argument("name")
    describe.set_defaults(handler=_describe)

    rep = commands.add_parser("report", help="write the HTML report of an experiment")
    rep.add_argument("name")
    rep.set_defaults(handler=_report)

    delete = commands.add_parser("delete", help="delete an experiment, its trials and metrics")
    delete.add_argument("what", choices=["experiment"])
    delete.add_argument("name")
    delete.set_defaults(handler=_delete)
    return parser


# -- run -------------------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    if not args.local:
        raise ValidationError("--local", "this command runs experiments on this machine: add --local")
    experiment = load_experiment(args.file)
    workdir = args.workdir or default_workdir()
    config_file = Path(args.katib_config) if args.katib_config else None
    with LocalSession(workdir, db_url=args.db_url, push_auth=args.push_auth, katib_config_file=config_file) as session:
        prepared = backend.prepare(experiment, args.namespace, router=session.suggester)
        name, namespace = _identity(prepared)
        try:
            stored = session.store.get(Experiment, namespace, name)
        except NotFoundError:
            session.store.create(prepared)
            _console.print(f"experiment {namespace}/{name}: starting (state in {session.workdir})", soft_wrap=True)
        else:
            if stored.spec != prepared.spec:
                _update(session, stored, prepared)
            else:
                _console.print(f"experiment {namespace}/{name}: resuming")
        stop = threading.Event()
        try:
            _drive(session, namespace, name, stop, quiet=args.quiet)
        except KeyboardInterrupt:
            stop.set()
            raise
        final = session.store.get(Experiment, namespace, name)
        trials = session.store.list_trials(namespace, experiment=name)
        _out.print(_trials_table(final, trials))
        path = _write_report(session, final, trials)
        _console.print(f"report: {path}", soft_wrap=True, highlight=False)
        _out.print(summaries.optimal_text(final, trials), soft_wrap=True)  # last: the outcome, or why none
    # 1: the Experiment failed, or it ended with nothing to use (no trial succeeded).
    return 1 if summaries.failed(final) or not summaries.best_trial(final) else 0


def _update(session: LocalSession, stored: Experiment, prepared: Experiment) -> None:
    """A rerun with a changed spec: Katib's UPDATE rules (only the trial counts may change; a
    finished LongRunning/FromVolume Experiment restarts when its budget grows)."""
    name, namespace = _identity(prepared)
    try:
        validation.validate_experiment(prepared, old=stored, settings=backend.local_settings(session.suggester))
    except ValidationError as exc:
        raise ValidationError(
            exc.field,
            f"{exc.reason} (experiment {namespace}/{name} exists in {session.workdir} with another spec:"
            " rename it or `pykatib delete experiment` first)",
        ) from None
    session.store.update(stored.model_copy(update={"spec": prepared.spec}), spec_changed=True)
    old, new = stored.spec.to_api() if stored.spec else {}, prepared.spec.to_api() if prepared.spec else {}
    changes = ", ".join(f"{key} {old.get(key)} → {new.get(key)}" for key in sorted(new) if old.get(key) != new.get(key))
    _console.print(f"experiment {namespace}/{name}: {changes}; resuming", soft_wrap=True)


def _drive(session: LocalSession, namespace: str, name: str, stop: threading.Event, *, quiet: bool) -> None:
    if quiet:
        session.run(namespace, name, stop=stop)
        return
    with ProgressView(name, console=_console) as view:
        session.run(namespace, name, stop=stop, on_progress=view.show)


def load_experiment(path: Path) -> Experiment:
    """The Experiment document of a YAML file (other kinds in the file are ignored)."""
    try:
        documents = list(yaml.safe_load_all(path.read_text()))
    except OSError as exc:
        raise ValidationError(str(path), f"cannot read it: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValidationError(str(path), f"is not valid YAML: {_yaml_problem(exc)}") from None
    found = [d for d in documents if isinstance(d, dict) and d.get("kind") == constants.EXPERIMENT_KIND]
    if len(found) != 1:
        raise ValidationError(str(path), f"must hold exactly one Experiment (found {len(found)})")
    try:
        return Experiment.from_api(found[0])
    except pydantic.ValidationError as exc:
        where, message = first_error(exc)
        raise ValidationError(str(path), f"is not a valid Experiment: {where}: {message}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error on one line: what, and where."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem


# -- reading ---------------------------------------------------------------------------------------


def _get(args: argparse.Namespace) -> int:
    with _reader(args) as session:
        if args.what == "experiments":
            experiments = session.store.list_experiments(args.namespace)
            if args.output in ("table", "wide"):
                _out.print(_experiments_table(experiments, wide=args.output == "wide"))
            else:
                _print_raw(listing.render([listing.experiment_record(e) for e in experiments], args.output))
            return 0
        trials = session.store.list_trials(args.namespace, experiment=args.experiment)
        if args.experiment is not None:
            experiment = session.store.get(Experiment, args.namespace, args.experiment)
            if args.output in ("table", "wide"):
                _out.print(_trials_table(experiment, trials, wide=args.output == "wide"))
                return 0
            rows = trial_results.trial_rows(experiment, trials)
            records = [listing.trial_csv_row(r) if args.output == "csv" else listing.trial_record(r) for r in rows]
            _print_raw(listing.render(records, args.output))
            return 0
        plain = [
            {
                "name": _trial_name(trial),
                "experiment": ((trial.metadata.labels if trial.metadata else None) or {}).get(
                    constants.EXPERIMENT_LABEL, ""
                ),
                "status": trial_results.trial_condition(trial),
            }
            for trial in trials
        ]
        if args.output in ("table", "wide"):
            table = Table("NAME", "EXPERIMENT", "STATUS")
            for record in plain:
                table.add_row(record["name"], record["experiment"], record["status"])
            _out.print(table)
        else:
            _print_raw(listing.render(plain, args.output))
    return 0


def _print_raw(text: str) -> None:
    """Machine-readable output exactly as rendered (no rich markup, wrapping or highlighting)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def _experiments_table(experiments: Sequence[Experiment], *, wide: bool) -> Table:
    columns = ["NAME", "STATUS", "TRIALS", "SUCCEEDED", "FAILED", "BEST TRIAL", "BEST VALUE"]
    table = Table(*columns, *(("ALGORITHM", "OBJECTIVE", "MAX TRIALS", "STARTED") if wide else ()))
    for exp in experiments:
        record = listing.experiment_record(exp)
        cells = [
            record["name"],
            record["status"],
            str(record["trials"]),
            str(record["succeeded"]),
            str(record["failed"] + record["metricsUnavailable"]),
            record["bestTrial"],
            summaries.for_people(summaries.best_value(exp)),
        ]
        if wide:
            budget = record["maxTrialCount"]
            cells += [
                record["algorithm"],
                record["objective"],
                "" if budget is None else str(budget),
                record["startTime"],
            ]
        table.add_row(*cells)
    return table


def _describe(args: argparse.Namespace) -> int:
    with _reader(args) as session:
        obj: Any
        if args.what == "experiment":
            obj = session.store.get(Experiment, args.namespace, args.name)
        else:
            obj = session.store.get(Trial, args.namespace, args.name)
        _out.print(escape(yaml.safe_dump(obj.to_api(), sort_keys=False)), highlight=False, soft_wrap=True)
        if args.what == "trial":
            logs = session.db.get(args.name, timeout=60)
            _out.print(f"metric logs ({len(logs)}):")
            for log in logs:
                _out.print(
                    escape(f"  {log.time_stamp}  {log.metric.name}={log.metric.value}"), highlight=False, soft_wrap=True
                )
    return 0


def _report(args: argparse.Namespace) -> int:
    with _reader(args) as session:
        experiment = session.store.get(Experiment, args.namespace, args.name)
        trials = session.store.list_trials(args.namespace, experiment=args.name)
        _out.print(str(_write_report(session, experiment, trials)), soft_wrap=True, highlight=False)
    return 0


def _delete(args: argparse.Namespace) -> int:
    with _reader(args) as session:
        config = _local_config(args)
        backend.LocalBackend(config, session=session).delete_experiment(args.name, args.namespace, None, 60)
        _console.print(f"experiment {args.namespace}/{args.name} deleted")
    return 0


def _reader(args: argparse.Namespace) -> LocalSession:
    workdir = args.workdir or default_workdir()
    if not workdir.is_dir():
        raise NotFoundError(f"no pykatib work directory at {workdir} (run an experiment first, or pass --workdir)")
    return LocalSession(workdir)


def _local_config(args: argparse.Namespace) -> Any:
    from pykatib.backends import LocalBackendConfig

    return LocalBackendConfig(namespace=args.namespace, workdir=args.workdir)


def _write_report(session: LocalSession, experiment: Experiment, trials: list[Trial]) -> Path:
    logs = {
        _trial_name(t): [
            report.MetricLog(log.time_stamp, log.metric.name, log.metric.value)
            for log in session.db.get(_trial_name(t), timeout=60)
        ]
        for t in trials
    }
    name, namespace = _identity(experiment)
    path = session.store.experiment_dir(namespace, name) / "report.html"
    path.write_text(report.render(experiment, trials, logs))
    return path


def _trials_table(experiment: Experiment, trials: Sequence[Trial], *, wide: bool = False) -> Table:
    """Best first; each metric's value is the one its strategy picks (what the optimum is chosen by)."""
    rows = trial_results.trial_rows(experiment, trials)
    metrics = trial_results.metric_names(experiment)
    shown = metrics if wide else metrics[:1]
    names = list(rows[0].parameters) if rows else []
    headers = [f"{m} ({trial_results.strategy(experiment, m)})" for m in shown] or ["OBJECTIVE"]
    extra = ("REASON", "STARTED", "COMPLETED") if wide else ()
    table = Table("TRIAL", "STATUS", *names, *headers, *extra, title=f"experiment {_identity(experiment)[0]}")
    for row in rows:
        cells = [row.name, row.status, *(summaries.for_people(row.parameters[n]) for n in names)]
        cells += [summaries.for_people(row.metrics.get(m, "")) for m in shown] or [""]
        if wide:
            cells += [escape(row.reason), row.start, row.completion]
        table.add_row(*cells)
    return table


def _identity(experiment: Experiment) -> tuple[str, str]:
    meta = experiment.metadata
    return (meta.name if meta else None) or "", (meta.namespace if meta else None) or "default"


def _trial_name(trial: Trial) -> str:
    return (trial.metadata.name if trial.metadata else None) or ""


if __name__ == "__main__":
    sys.exit(main())
