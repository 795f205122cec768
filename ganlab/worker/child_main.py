"""A worker's training child: ``python -m ganlab.worker.child_main``, one experiment handed over as JSON.

The worker starts this module for each experiment (or hands the experiment
to a pre-started process, :mod:`ganlab.worker.standby`, which runs the same
:func:`run_job` after its rehearsal). The job is one JSON line on stdin::

    {"id": 42, "config": {...}, "run_dir": "RUNS/0042-NAME", "report_fd": 5,
     "plugins_dir": "/abs/plugins" | null, "pins": ["SHA256:PATH", ...]}

``config`` is the queue row's resolved config, checked again here against
the plugins this process loads; ``pins`` are the experiment's recorded local
plugin files, the only ones it may load, each verified against its hash
before any of them runs (:mod:`ganlab.plugin_files`). The run goes through
:func:`ganlab.training.experiment.run_experiment`, like ``ganlab train``,
always resuming (a retried experiment continues from its checkpoint). Its
events and its one ``result`` go to the worker over ``report_fd``
(:mod:`ganlab.training.report_pipe`); a run that cannot start sends a result
too, so the worker never has to guess from the log. The exit status comes
from :data:`ganlab.training.report.EXIT_CODES`.

This module never imports :mod:`ganlab.cli`: the worker's side of a run is
the worker's and the trainer's code only.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, BinaryIO

from ganlab.worker import lifeline

#: How long a child waits for another trainer of its run dir to exit (twice the time an orphaned
#: trainer gets to stop: ganlab.worker.lifeline.ORPHAN_GRACE_S).
RUN_DIR_WAIT_S = 120.0


def read_job(stream: BinaryIO) -> dict[str, Any] | None:
    """The job line from ``stream``; None at end of file (the worker needs no experiment after all)."""
    line = stream.readline()
    return json.loads(line) if line else None


def run_job(job: dict[str, Any], watch: lifeline.WorkerWatch | None) -> int:
    """Run the job's experiment, reporting over its pipe; returns the exit status."""
    from ganlab.training.report_pipe import PipeReporter

    pipe = PipeReporter(int(job["report_fd"]))
    try:
        if "pack" in job:
            return _run_pack(job, pipe, watch)
        return _run(job, pipe, watch)
    finally:
        pipe.close()


def _run(job: dict[str, Any], pipe: Any, watch: lifeline.WorkerWatch | None) -> int:
    from ganlab.config import checked_config
    from ganlab.errors import GanlabError
    from ganlab.names import printable
    from ganlab.training.backend import prefer_backend
    from ganlab.training.experiment import run_experiment
    from ganlab.training.progress_format import LineReporter
    from ganlab.training.report import EXIT_CODES, MultiReporter, exit_code

    try:
        raw = job["config"]
        try:
            # Plugins and dataset probes may import keras: fix the backend before loading any of them.
            prefer_backend(str(raw["train"]["backend"]))
        except (KeyError, TypeError):
            pass  # a malformed config is refused below, with its reason
        if os.environ.get("KERAS_BACKEND") == "tensorflow":
            from ganlab.worker.gpu_share import apply_tf_memory_limit

            apply_tf_memory_limit()  # --per-gpu: this process's share, before TensorFlow touches the GPU
        registry = _registry(job)
        config = checked_config(registry, raw, f"experiment {job.get('id')}'s queued config")
        # The progress lines go to train.log (this process's output), where 'ganlab logs' shows them.
        reporter = MultiReporter(pipe, LineReporter())
        # extend: the queue row is the truth; only 'ganlab queue extend' gives it more steps than its run dir's.
        result = run_experiment(config, job["run_dir"], reporter, registry=registry, resume=True,
                                wait_s=RUN_DIR_WAIT_S, watch=watch, extend=True)
        return EXIT_CODES[result.status]
    except Exception as exc:  # noqa: BLE001 - every ending is reported to the worker, then the log says it
        if isinstance(exc, GanlabError):
            print(f"Error: {printable(str(exc))}", file=sys.stderr)  # what 'ganlab train' would print
        else:
            traceback.print_exc()
        sys.stderr.flush()
        pipe.on_start_failure(exc)
        return exit_code(exc)


def _run_pack(job: dict[str, Any], pipe: Any, watch: lifeline.WorkerWatch | None) -> int:
    """A pack's members (``job["pack"]``: id, config, run_dir, pins each) trained together.

    Every member gets its events and its one result, tagged with its id; a
    pack that cannot start sends each member the same start failure. Each
    member's progress and result lines go to its own ``train.log``.
    """
    from contextlib import ExitStack

    from ganlab.config import checked_config
    from ganlab.errors import GanlabError
    from ganlab.names import printable
    from ganlab.training.backend import prefer_backend
    from ganlab.training.experiment import run_pack_experiment
    from ganlab.training.progress_format import LineReporter
    from ganlab.training.report import EXIT_CODES, MultiReporter, exit_code
    from ganlab.training.run_dir import RunDir

    members = job["pack"] if isinstance(job.get("pack"), list) else []
    member_pipes = [pipe.for_experiment(int(m.get("id", 0))) for m in members]
    try:
        if not members:
            raise ValueError("the job's pack lists no experiment")
        prefer_backend("jax")
        pins = list(dict.fromkeys(p for m in members for p in m.get("pins") or []))
        registry = _registry({"plugins_dir": job.get("plugins_dir"), "pins": pins})
        configs = [checked_config(registry, m["config"], f"experiment {m.get('id')}'s queued config") for m in members]
        with ExitStack() as stack:
            logs = [stack.enter_context(open(RunDir(m["run_dir"]).log_file, "a", encoding="utf-8")) for m in members]
            reporters = [MultiReporter(p, LineReporter(stream=log)) for p, log in zip(member_pipes, logs)]
            results = run_pack_experiment(configs, [m["run_dir"] for m in members], reporters, logs,
                                          registry=registry, wait_s=RUN_DIR_WAIT_S, watch=watch)
        return max(EXIT_CODES[r.status] for r in results)
    except Exception as exc:  # noqa: BLE001 - every member's ending is reported to the worker
        if isinstance(exc, GanlabError):
            print(f"Error: {printable(str(exc))}", file=sys.stderr)
        else:
            traceback.print_exc()
        sys.stderr.flush()
        for member_pipe in member_pipes:
            member_pipe.on_start_failure(exc)
        return exit_code(exc)


def _registry(job: dict[str, Any]) -> Any:
    """The plugins of this run: built-ins, installed ones, and only the experiment's pinned local files.

    Without pins a child given a folder would load all of it: no pins, no folder.
    """
    from ganlab.plugin_files import PinnedFile
    from ganlab.registry import load_plugins

    pins = [PinnedFile.parse(value) for value in job.get("pins") or []]  # a malformed record: refused
    plugins_dir = job.get("plugins_dir")
    return load_plugins(plugins_dir if plugins_dir and pins else "", pinned=pins or None)


def main() -> int:
    # First, before the imports that take seconds: a worker that dies meanwhile ends this process at once.
    watch = lifeline.install_from_env()
    job = read_job(sys.stdin.buffer)
    if job is None:
        return 0
    return run_job(job, watch)


if __name__ == "__main__":
    sys.exit(main())
