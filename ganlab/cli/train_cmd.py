"""``ganlab train``: run one experiment in the foreground (the worker runs the same command in a child)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from ganlab.cli.experiment_options import ExperimentOptions, experiment_options, single_config
from ganlab.config import ExperimentConfig, Resolver
from ganlab.errors import ConfigError
from ganlab.limits import DB_INT_MAX
from ganlab.names import check_name, printable
from ganlab.registry import Registry
from ganlab.training.backend import activate_backend, prefer_backend
from ganlab.training.report import EXIT_CODES, MultiReporter, StopFlag, TrainResult
from ganlab.training.run_dir import RunDir, derive_run_dir

DEFAULT_RUNS_DIR = "runs"

#: How long a worker's child waits for another trainer of its run dir to exit (twice the time an
#: orphaned trainer gets to stop: ganlab.worker.lifeline.ORPHAN_GRACE_S).
RUN_DIR_WAIT_S = 120.0


@click.command("train")
@experiment_options
@click.option("--name", default=None,
              help="Run name (letters, digits, _ - . = + , @); the default run dir is runs/NAME.")
@click.option("--run-dir", "run_dir", type=click.Path(file_okay=False), default=None,
              help="Where checkpoints, metrics and TensorBoard events go (default runs/<name or arch-dataset-loss-hash>).")
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir from its latest checkpoint.")
@click.option("--config-file", "config_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Run an already resolved config (JSON, as saved in a run's config.json) instead of the options.")
@click.option("-q", "--quiet", is_flag=True, help="No progress display; print only the result.")
@click.option("--report-fd", "report_fd", type=click.IntRange(0, DB_INT_MAX), default=None, hidden=True,
              help="File descriptor for JSON-lines progress events (used by the worker).")
@click.pass_context
def train(
    ctx: click.Context,
    experiment: ExperimentOptions,
    name: str | None,
    run_dir: str | None,
    resume: bool,
    config_file: str | None,
    quiet: bool,
    report_fd: int | None,
) -> None:
    """Train one experiment in the foreground, with checkpoints, metrics and TensorBoard logs.

    Takes the same options as 'ganlab queue add' (one experiment, no sweep).
    Ctrl-C writes a checkpoint and exits; --resume --run-dir DIR continues it.
    Exit status: 0 succeeded, 1 failed, 3 diverged, 4 stopped (resumable),
    5 refused (a plugin file pinned by the worker changed; nothing ran),
    6 another process is training the run dir.
    """
    # First of all, as a worker's child: notice the worker's death even during the imports below.
    watch = _worker_watch()
    if name is not None:
        check_name(name, what="--name")
    if run_dir is not None:
        # First, and without writing anything: the options below read the run dir, and a bad
        # place should be refused before seconds of imports, not at the first write.
        check_run_dir(Path(run_dir))
    # Plugins and dataset probes may import keras: fix the backend before loading any of them.
    prefer_backend(_backend_hint(experiment, run_dir, resume, config_file))
    registry = ctx.obj.registry()
    config = _config(registry, experiment, run_dir, resume, config_file)
    # --run-dir is the user's choice; a directory made from a name stays inside runs/.
    directory = Path(run_dir) if run_dir else derive_run_dir(DEFAULT_RUNS_DIR, name or default_run_name(config))
    activate_backend(config.train["backend"])
    if run_dir is None:
        check_run_dir(directory)

    from ganlab.training import train as run_training

    stop = StopFlag()
    pipe = _pipe_reporter(report_fd, watch)
    display = _display(escape(printable(directory.name)), quiet)  # the bar's label is rich markup
    reporter = MultiReporter(*(r for r in (display, pipe, watch) if r is not None), stop=stop)
    # A worker's child waits for a previous trainer of its run (one whose worker died) to finish stopping.
    wait_s = RUN_DIR_WAIT_S if watch is not None else 0.0
    try:
        with stop.on_signals((signal.SIGINT, signal.SIGTERM)), _run_dir_errors(directory):
            result = run_training(config, directory, resume=resume, reporter=reporter, registry=registry,
                                  wait_s=wait_s)
    finally:
        if display is not None:
            display.close()
    orphaned = watch is not None and watch.gone()
    if orphaned and result.status == "succeeded":
        # Nobody is left to record it: the worker that resumes the run records it (at once, all steps
        # being done), so the log says "succeeded" once, for the attempt whose result counts.
        result.status = "stopped"
    # The log line first: once the worker has the result it may record it and be killed with this
    # process at any moment, and a row marked succeeded must never have a log that does not say so.
    _print_result(result, stop, orphaned)
    if pipe is not None:
        # The worker stores these in the database: 'ganlab compare' shows final and best values.
        best = {f"best_{k}": v for k, v in result.best_metrics.items()}
        pipe.on_result(result.status, result.step, {**result.metrics, **best}, result.error)
        pipe.close()
    ctx.exit(EXIT_CODES[result.status])


def default_run_name(config: ExperimentConfig) -> str:
    """``arch-dataset-loss-<hash>``: stable for a config, so rerunning it finds its run dir."""
    return f"{config.architecture}-{config.dataset}-{config.loss}-{config.hash[:8]}"


def check_run_dir(directory: Path) -> None:
    """Refuse a run dir that cannot be created, read or written here, naming the folder and why.

    Writes nothing: the nearest folder that exists must be a folder this user may
    write (``os.access`` also says no for root on a read-only file system).
    """
    for folder in (directory, *directory.parents):
        try:
            info = folder.stat()
        except (FileNotFoundError, NotADirectoryError):
            continue  # to be created; a file in the way is found one level up
        except OSError as exc:  # a name too long, a folder this user may not enter, a symlink loop
            raise _refuse(directory, exc.strerror if folder == directory else f"{folder.absolute()}: {exc.strerror}") from None
        if not stat.S_ISDIR(info.st_mode):
            raise _refuse(directory, f"{folder.absolute()} is a file, not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            read_only = " (a read-only file system)" if _read_only(folder) else ""
            raise _refuse(directory, f"{folder.absolute()} is not writable{read_only}")
        if folder == directory and not os.access(folder, os.R_OK):  # a resume reads it
            raise _refuse(directory, f"{folder.absolute()} is not readable")
        return


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _refuse(directory: Path, why: str) -> ConfigError:
    return ConfigError(f"cannot use {directory} as the run dir: {why}; choose another --run-dir")


@contextmanager
def _run_dir_errors(directory: Path) -> Iterator[None]:
    """Turn a failure to create the run dir's files (a full disk, a race with the checks) into one line."""
    try:
        yield
    except OSError as exc:
        where = os.path.abspath(exc.filename) if isinstance(exc.filename, str) else None
        if where is None or not Path(where).is_relative_to(os.path.abspath(directory)):
            raise
        raise ConfigError(f"cannot write the run dir {directory}: {exc.strerror} ({where})") from None


def _options_given(experiment: ExperimentOptions) -> list[str]:
    given = experiment.plugin_options_given()
    for key in ("steps", "batch_size", "seed", "backend", "precision"):
        if getattr(experiment, key) is not None:
            given.append("--" + key.replace("_", "-"))
    if experiment.sets:
        given.append("--set")
    return given


def _config(
    registry: Registry, experiment: ExperimentOptions, run_dir: str | None, resume: bool, config_file: str | None
) -> ExperimentConfig:
    """The experiment to run: from --config-file, from the run dir (--resume alone) or from the options."""
    given = _options_given(experiment)
    if config_file is not None:
        if given:
            raise ConfigError(f"--config-file cannot be combined with {', '.join(given)}; edit the file instead")
        return load_config_file(registry, config_file)
    if resume:
        if run_dir is None:
            raise ConfigError("--resume needs --run-dir DIR (the run to continue)")
        rd = RunDir(run_dir)
        if not given:
            if not rd.has_run():
                raise ConfigError(
                    f"{run_dir} holds no run to resume (no config.json); check the path, or drop --resume to start one"
                )
            return rd.load_config()
    return single_config(registry, experiment)


def _backend_hint(experiment: ExperimentOptions, run_dir: str | None, resume: bool, config_file: str | None) -> str:
    """The backend the run will most likely ask for, read without plugins; checked again once resolved."""
    path = Path(config_file) if config_file else Path(run_dir) / "config.json" if resume and run_dir else None
    if path is not None and path.is_file():
        try:
            return str(json.loads(path.read_text())["train"]["backend"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # reported properly when the config is read
    backend = experiment.backend
    for item in experiment.sets:
        key, _, value = item.partition("=")
        if key.strip() in ("backend", "train.backend"):
            backend = value.strip()
    return backend or "tensorflow"


def load_config_file(registry: Registry, path: str) -> ExperimentConfig:
    """Read a resolved config and check it against the installed plugins (same rules as the queue)."""
    try:
        raw = json.loads(Path(path).read_text())
        config = ExperimentConfig.from_dict(raw)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a ganlab config ({type(exc).__name__}: {exc})") from None
    sets: dict[str, Any] = {}
    for section, params in (("arch", config.arch_params), ("dataset", config.dataset_params),
                            ("loss", config.loss_params), ("augment", config.augment_params), ("train", config.train)):
        sets.update({f"{section}.{k}": v for k, v in params.items() if v is not None})
    checked = Resolver(registry).resolve(config.architecture, config.dataset, config.loss, sets, config.augmentation)
    if checked.to_json() != config.to_json():
        raise ConfigError(f"{path} is incomplete or out of date for the installed plugins; re-create it with 'ganlab queue add'")
    return checked


def _worker_watch() -> Any:
    """The lifeline to the worker that started this process, if one did (see ganlab.worker.lifeline)."""
    from ganlab.worker.lifeline import install_from_env

    return install_from_env()


def _pipe_reporter(fd: int | None, watch: Any) -> Any:
    if fd is None:
        return None
    from ganlab.worker.channel import PipeReporter

    return PipeReporter(fd, watch.worker_pid if watch is not None else None)


def _display(label: str, quiet: bool) -> Any:
    from ganlab.cli.train_progress import make_display

    return make_display(label, quiet)


def _print_result(result: TrainResult, stop: StopFlag, orphaned: bool = False) -> None:
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    where = result.run_dir
    metrics = "  ".join(f"{k} {result.metrics[k]:.4g}" for k in ("fd", "fd_floor", "kid") if k in result.metrics)
    if result.status == "succeeded" and result.start_step >= result.step > 0:
        # A resume of a finished run (its worker died before recording it): this process trained nothing.
        click.echo(f"already complete at step {result.step}, nothing left to train  {metrics}  ({where})")
    elif result.status == "succeeded":
        click.echo(f"succeeded at step {result.step}  {metrics}  ({where})")
    elif result.status == "stopped":
        why = " (its worker is gone)" if orphaned else f" on {stop.signal_name}" if stop.signal_name else ""
        click.echo(f"stopped{why} at step {result.step}, checkpoint written; continue with: "
                   f"ganlab train --resume --run-dir {shlex.quote(str(where))}")
    elif result.status == "diverged":
        click.echo(f"diverged: {result.error} ({where})", err=True)
    else:
        if result.traceback:
            click.echo(result.traceback.rstrip(), err=True)
        click.echo(f"Error: training failed at step {result.step}: {result.error}", err=True)
    sys.stdout.flush()
