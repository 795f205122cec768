"""``ganlab worker`` and ``ganlab status``: running the queue and watching it (``ganlab logs``: logs_cmd)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from ganlab.cli.db_option import db_option, open_db
from ganlab.cli.output import print_json, print_table
from ganlab.cli.types import Count, Seconds
from ganlab.limits import MAX_LEASE_S, MAX_POLL_S
from ganlab.store.models import utcnow
from ganlab.store.queue import DEFAULT_MAX_ATTEMPTS, Queue
from ganlab.worker.display import WorkerDisplay
from ganlab.worker.gpu_share import check_per_gpu, parse_per_gpu
from ganlab.worker.gpus import parse_gpus
from ganlab.worker.loop import Worker, WorkerOptions


@click.command("worker")
@db_option
@click.option("--gpus", default="auto", show_default=True, metavar="auto|none|0,1,…",
              help="GPUs to run on, one experiment each; none runs one experiment at a time on the CPU.")
@click.option("--per-gpu", "per_gpu", default="1", show_default=True, metavar="K|auto",
              help="Experiments at once on each GPU, each its own process with 1/K of the GPU's memory; auto "
                   "admits another while the GPU's measured memory leaves room (see docs/worker.md).")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Where new run directories are created.")
@click.option("--until-empty", is_flag=True, help="Exit 0 once nothing is queued or running.")
@click.option("--max-experiments", type=Count, default=None, help="Start at most N experiments, then exit.")
@click.option("--poll", "poll_s", type=Seconds(MAX_POLL_S), default=5.0, show_default=True,
              help=f"Seconds between looks at an empty queue (at most {MAX_POLL_S:g}).")
@click.option("--lease", "lease_s", type=Seconds(MAX_LEASE_S), default=60.0, show_default=True,
              help=f"Lease length in seconds, at most {MAX_LEASE_S:g}; renewed every third of it.")
@click.option("--tag", "tags", multiple=True, help="Only take experiments with this tag (repeatable: any of them).")
@click.option("--max-attempts", type=Count, default=DEFAULT_MAX_ATTEMPTS, show_default=True,
              help="Claims per experiment before a crashing one is marked failed.")
@click.option("--prestart/--no-prestart", default=True, show_default=True,
              help="Start each slot's (GPU's, or the CPU's) next process while one trains, and hand it the "
                   "next experiment when the current one's last step is done (its final evaluation overlaps "
                   "the start-up).")
@click.option("--no-local-plugins", is_flag=True,
              help="Run no local plugin file; experiments that need one fail (like ganlab --no-local-plugins worker).")
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
@click.pass_context
def worker(ctx: click.Context, gpus: str, per_gpu: str, runs_dir: str, until_empty: bool, max_experiments: int | None,
           poll_s: float, lease_s: float, tags: tuple[str, ...], max_attempts: int, prestart: bool,
           no_local_plugins: bool, quiet: bool) -> None:
    """Run queued experiments one after another, each in its own process (one per GPU).

    Ctrl-C (or SIGTERM) checkpoints the running experiments, puts them back in
    the queue and exits 0; a second Ctrl-C stops at once.
    """
    per_gpu_count = parse_per_gpu(per_gpu)
    slots = parse_gpus(gpus)
    check_per_gpu(per_gpu_count, slots)
    options = WorkerOptions(
        slots=slots, per_gpu=per_gpu_count, runs_root=Path(runs_dir), lease_s=lease_s, poll_s=poll_s, tags=tags,
        max_attempts=int(max_attempts), max_experiments=max_experiments, until_empty=until_empty,
        plugins_dir=ctx.obj.worker_plugins_dir(local=not no_local_plugins), prestart=prestart,
    )
    with open_db(ctx, Queue) as queue:
        run_worker(queue, options, quiet=quiet)


def run_worker(queue: Queue, options: WorkerOptions, *, quiet: bool = False) -> Worker:
    """Run a worker with a terminal display (shared by ``ganlab demo``)."""
    display = WorkerDisplay(quiet=quiet)
    slots = ", ".join(f"GPU {s}" for s in options.slots if s is not None) or "the CPU"
    if options.per_gpu != 1 and slots != "the CPU":
        slots += f", {'auto' if options.per_gpu is None else options.per_gpu} experiments per GPU"
    display.event(f"worker on {slots}, queue {queue.where}")
    w = Worker(queue, options, display)
    w.run()
    return w


def _ago(when: datetime | None) -> str:
    if when is None:
        return ""
    seconds = max(0, int((utcnow() - when).total_seconds()))
    return f"{seconds}s ago" if seconds < 120 else f"{seconds // 60}m ago" if seconds < 7200 else f"{seconds // 3600}h ago"


@click.command("status")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--all-workers", is_flag=True, help="Include workers that have stopped.")
@click.pass_context
def status(ctx: click.Context, as_json: bool, all_workers: bool) -> None:
    """Workers, running experiments with their progress, and the queue's counts by status."""
    with open_db(ctx, Queue, read_only=True) as queue:
        workers = queue.list_workers(include_stopped=all_workers)
        running = queue.list_experiments(statuses=["running"])
        counts = queue.count_by_status()
        records = [queue.get(r.id) for r in running]
    if as_json:
        print_json({
            "workers": [w.to_dict() for w in workers],
            "running": [{"id": r.id, "name": r.name, "step": r.step, "total_steps": r.total_steps,
                         "worker_host": r.worker_host, "heartbeat_at": r.heartbeat_at, "last_losses": r.last_losses,
                         "run_dir": r.run_dir} for r in records],
            "counts": counts,
        })
        return
    # The SLURM column only when some worker ran as a SLURM job (ganlab slurm submit).
    slurm = ["slurm job"] if any(w.slurm for w in workers) else []
    print_table(["worker", "host", "pid", "gpus", *slurm, "status", "last heartbeat"],
                [(w.worker_id, w.host, w.pid, w.gpus, *([w.slurm] if slurm else []), w.status, _ago(w.heartbeat_at))
                 for w in workers], title="workers")
    print_table(["id", "name", "progress", "host", "heartbeat", "losses"],
                [(r.id, r.name, f"{r.step}/{r.total_steps}", r.worker_host, _ago(r.heartbeat_at),
                  " ".join(f"{k} {v:.3f}" for k, v in (r.last_losses or {}).items()))
                 for r in records], title="running")
    click.echo("queue: " + "  ".join(f"{k} {v}" for k, v in counts.items()))
