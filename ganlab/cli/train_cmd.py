"""``ganlab train``: run one experiment in the foreground (through the same entry as the worker's children)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from ganlab.cli.experiment_options import ExperimentOptions, experiment_options, single_config
from ganlab.config import ExperimentConfig, checked_config
from ganlab.errors import ConfigError
from ganlab.names import check_name, printable
from ganlab.registry import Registry
from ganlab.training.backend import prefer_backend
from ganlab.training.experiment import run_experiment
from ganlab.training.report import EXIT_CODES
from ganlab.training.run_dir import RunDir, user_run_dir


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
@click.pass_context
def train(
    ctx: click.Context,
    experiment: ExperimentOptions,
    name: str | None,
    run_dir: str | None,
    resume: bool,
    config_file: str | None,
    quiet: bool,
) -> None:
    """Train one experiment in the foreground, with checkpoints, metrics and TensorBoard logs.

    Takes the same options as 'ganlab queue add' (one experiment, no sweep).
    Ctrl-C writes a checkpoint and exits; --resume --run-dir DIR continues it.
    Exit status: 0 succeeded (or ended by a train.* stop setting), 1 failed,
    3 diverged, 4 stopped on request (resumable), 6 another process is training
    the run dir.
    """
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
    directory = user_run_dir(run_dir, name or default_run_name(config))
    if run_dir is None:
        check_run_dir(directory)

    display = _display(escape(printable(directory.name)), quiet)  # the bar's label is rich markup
    result = run_experiment(config, directory, display, registry=registry, resume=resume)
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
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not a ganlab config ({type(exc).__name__}: {exc})") from None
    return checked_config(registry, raw, path)


def _display(label: str, quiet: bool) -> Any:
    from ganlab.cli.train_progress import make_display

    return make_display(label, quiet)
