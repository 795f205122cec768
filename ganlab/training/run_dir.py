"""The files of one run, in one directory that is also its TensorBoard run.

::

    RUN_DIR/
      config.json              the resolved experiment (what --resume reads)
      events.out.tfevents.*    TensorBoard scalars, sample grids, HParams, config text
      checkpoints/latest.npz   the latest step (see ganlab.training.checkpoint)
      checkpoints/previous.npz the latest one before it, for a resume when latest is damaged
      checkpoints/best.npz     the step with the lowest Fréchet distance so far
      metrics.jsonl            one line per evaluation, with its protocol
      samples/latest.png       the latest grid from the fixed noise batch
      train.log                the worker's log of the run (its child's output, each attempt's header)
      train.lock               held by the process training the run (see ganlab.training.run_lock)

Run directories are named here and nowhere else: :func:`user_run_dir` for
``ganlab train`` (``--run-dir``, or ``runs/NAME``), :func:`queued_run_dir`
for the worker (``RUNS/0042-NAME``). A name becomes a directory only through
:func:`derive_run_dir`: it is made a slug again (a name read from the queue
is untrusted) and the result must resolve inside the runs folder. Every file
written in a run dir is first checked by :meth:`RunDir.output`, so a link
inside it cannot redirect a write elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ganlab.atomicfile import atomic_write
from ganlab.config import ExperimentConfig
from ganlab.errors import ConfigError
from ganlab.names import printable, slugify
from ganlab.training.checkpoint import ResumePoint, checkpoint_path, resume_point

#: Where ``ganlab train`` puts a run it names itself (relative to the working directory).
DEFAULT_RUNS_DIR = "runs"

#: The worker's log of the run (the child's output, a header per attempt).
LOG_NAME = "train.log"

#: Where an older worker also copied the config it handed its child: config.json holds it now,
#: and a resumed run loses the copy.
LEGACY_CONFIG = "experiment.json"


def run_dir_name(name: str, exp_id: int | None = None) -> str:
    """``NAME`` (``0042-NAME`` for a queued experiment), the name made a slug: one path component."""
    slug = slugify(name)
    return slug if exp_id is None else f"{exp_id:04d}-{slug}"


def _resolved(path: str | os.PathLike[str]) -> Path | None:
    """``path`` with every link followed; None for a loop of links (or a NUL byte)."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError, ValueError):  # RuntimeError: Python < 3.13 on a loop of links
        return None


def is_inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether ``path``, links followed, is ``folder`` or lies below it."""
    target, root = _resolved(path), _resolved(folder)
    return target is not None and root is not None and target.is_relative_to(root)


def _leads_outside(path: Path, where: str, folder: Path) -> ConfigError:
    return ConfigError(
        f"{printable(str(path))} leads outside {where} {printable(str(folder))} "
        f"(a link to {printable(str(_resolved(path) or 'a loop of links'))}); remove the link. Nothing was written there"
    )


def derive_run_dir(runs_root: str | os.PathLike[str], name: str, exp_id: int | None = None) -> Path:
    """``runs_root/`` :func:`run_dir_name`, refused (ConfigError) if a link there leads outside ``runs_root``."""
    root = Path(runs_root)
    path = root / run_dir_name(name, exp_id)
    if not is_inside(path, root) or _resolved(path) == _resolved(root):
        raise _leads_outside(path, "the runs folder", root)
    return path


def user_run_dir(run_dir: str | os.PathLike[str] | None, name: str) -> Path:
    """``ganlab train``'s run dir: ``--run-dir`` as given (the user's choice), else ``runs/NAME`` inside runs/."""
    return Path(run_dir) if run_dir is not None else derive_run_dir(DEFAULT_RUNS_DIR, name)


def queued_run_dir(runs_root: str | os.PathLike[str], exp_id: int, name: str,
                   stored: str | None = None) -> tuple[Path, str | None]:
    """A queued experiment's run dir, always its own inside ``runs_root``; with why ``stored`` was ignored.

    The stored name and run dir are untrusted (any client can write them).
    The directory is ``RUNS/0042-NAME`` with the name made a slug again; a run
    dir ``stored`` by an earlier attempt is reused (to resume from its
    checkpoint) only if it is this experiment's directory directly inside
    ``runs_root`` (an older ganlab kept names that were no slug: its directory
    still counts, by its id prefix), else it is ignored and the second value
    says why. ConfigError if a link would lead outside, at the directory or at
    one of the files the worker writes there before the trainer starts.
    """
    root = Path(runs_root).resolve()
    path = derive_run_dir(root, name, exp_id)
    note = None
    if stored and Path(stored) != path:
        if _own_dir(stored, exp_id, root):
            path = Path(stored).resolve()
        else:
            note = (f"ignoring its stored run dir {stored}: it is not this experiment's directory in the runs "
                    f"folder {root}; it runs in {path}")
    RunDir(path).output(RunDir(path).log_file)
    return path, note


def _own_dir(stored: str, exp_id: int, root: Path) -> bool:
    """Whether a stored run dir is experiment ``exp_id``'s directory directly inside ``root``."""
    try:
        path = Path(stored).resolve()
    except (OSError, ValueError):  # a NUL byte, a loop of links: not a directory of ours
        return False
    return path.parent == root and path.name.startswith(f"{exp_id:04d}-")


class RunDir:
    """Paths and small files of a run directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def samples_png(self) -> Path:
        return self.path / "samples" / "latest.png"

    @property
    def lock_file(self) -> Path:
        return self.path / "train.lock"

    @property
    def log_file(self) -> Path:
        return self.path / LOG_NAME

    def checkpoint(self, which: str = "latest") -> Path:
        return checkpoint_path(self.path, which)

    def output(self, path: str | os.PathLike[str]) -> Path:
        """``path`` (relative to the run dir, or one of its paths) to write; ConfigError if it leads outside.

        A run dir is the user's choice, but a link inside it (``checkpoints ->
        /elsewhere``) must not carry the trainer's or worker's writes out of it.
        """
        target = Path(path)
        if not target.is_relative_to(self.path):
            target = self.path / target
        if not is_inside(target, self.path):
            raise _leads_outside(target, "its run dir", self.path)
        return target

    def has_run(self) -> bool:
        """True once a run has saved its config here."""
        return self.config_file.is_file()

    def load_config(self) -> ExperimentConfig:
        """The config saved by the run, or a one-line ConfigError."""
        if not self.config_file.is_file():
            raise ConfigError(f"{self.path} holds no run (no config.json); check the path, or start one with 'ganlab train'")
        try:
            return ExperimentConfig.from_dict(json.loads(self.config_file.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{self.config_file} is not a ganlab config ({type(exc).__name__}: {exc})") from None

    def claim(self, config: ExperimentConfig, resume: bool, *, extend: bool = False) -> ResumePoint | None:
        """Check this directory may take ``config``'s run; the checkpoint to continue from, if ``resume``.

        Raises a one-line ConfigError for a directory that already holds a run
        (without ``resume``) or holds a different experiment. ``extend``: a run
        that is ``config`` with a smaller step budget counts as the same one.
        """
        if self.has_run():
            saved = self.load_config()
            if not resume:
                raise ConfigError(
                    f"run dir {self.path} already holds a run; pass --resume to continue it, or choose another --run-dir"
                )
            # A larger step budget is the same run continued (ganlab queue extend); config.json then says it.
            if saved.to_json() != config.to_json() and not (extend and config.extends(saved)):
                raise ConfigError(
                    f"run dir {self.path} holds a different experiment (config {saved.hash}, this one {config.hash}); "
                    "resume it with only --run-dir, or choose another --run-dir"
                )
        return resume_point(self.path) if resume else None

    def save_config(self, config: ExperimentConfig) -> None:
        """Write config.json, the run's one copy of its config (an older worker's experiment.json goes)."""
        self.path.mkdir(parents=True, exist_ok=True)
        # Durable: a resume after a power cut starts from this file. Written once per run.
        with atomic_write(self.output(self.config_file)) as fh:
            fh.write((json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n").encode())
        with contextlib.suppress(OSError):  # a copy that cannot go does no harm: nothing reads it
            (self.path / LEGACY_CONFIG).unlink()

    def append_metrics(self, record: Mapping[str, Any]) -> None:
        with open(self.output(self.metrics_file), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(dict(record), sort_keys=True) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_file.is_file():
            return []
        return [json.loads(line) for line in self.metrics_file.read_text().splitlines() if line.strip()]

    def truncate_metrics(self, after_step: int) -> None:
        """Drop evaluations logged after ``after_step`` (by a process that died before checkpointing them)."""
        records = self.read_metrics()
        kept = [r for r in records if int(r.get("step", 0)) <= after_step]
        if len(kept) != len(records):
            with atomic_write(self.output(self.metrics_file)) as fh:
                fh.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept).encode())
