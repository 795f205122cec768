"""``ganlab slurm submit|status|cancel``: workers as a SLURM job array on the shared queue."""

from __future__ import annotations

import re
from pathlib import Path

import click

from ganlab.cli.db_option import db_option, db_url, open_db
from ganlab.cli.output import print_json, print_table
from ganlab.cli.types import Count, Seconds
from ganlab.errors import ConfigError
from ganlab.limits import MAX_LEASE_S, MAX_POLL_S
from ganlab.slurm import commands
from ganlab.slurm.paths import check_db_shared, check_runs_shared
from ganlab.slurm.script import DEFAULT_JOB_NAME, DEFAULT_WARN_S, SubmitOptions, log_dir, parse_sbatch_pairs, render
from ganlab.store.queue import Queue
from ganlab.store.urls import display_url, sqlite_path

MAX_WORKERS = 10_000  # SLURM's default MaxArraySize is 1001; sites raise it, sbatch says so when they did not


def _absolute_db(url: str) -> str:
    """The URL with an SQLite path made absolute: the job may start in another folder."""
    path = sqlite_path(url)
    return url if path is None or path.is_absolute() else f"sqlite:///{path.resolve()}"


def _job_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"\d{1,12}", value.strip()):
        raise ConfigError(f"--job {value!r} is not a SLURM job id; give the number sbatch printed (e.g. --job 4242)")
    return value.strip() if value is not None else None


job_option = click.option("--job", "job_id", callback=_job_id, default=None, metavar="JOBID",
                          help="The array's job id (default: every array of yours named --name).")
name_option = click.option("--name", "job_name", default=DEFAULT_JOB_NAME, show_default=True,
                           help="The arrays' job name.")


@click.group("slurm")
def slurm() -> None:
    """Run workers as a SLURM job array on the shared queue (requeued on time limits and preemption)."""


@slurm.command("submit")
@db_option
@click.option("--workers", type=click.IntRange(max=MAX_WORKERS), required=True,
              help="Array tasks, one worker each.")
@click.option("--gpus-per-worker", type=click.IntRange(0, 64), default=0, show_default=True,
              help="GPUs each task asks for (0: the worker trains on the CPU).")
@click.option("--cpus-per-worker", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="CPUs each task asks for.")
@click.option("--time", "time_limit", required=True, metavar="TIME",
              help="Each task's time limit, as SLURM writes it (MINUTES, HH:MM:SS, DAYS-HH:MM:SS).")
@click.option("--warn", "warn_s", type=click.IntRange(1, 65535), default=DEFAULT_WARN_S, show_default=True,
              help="Seconds before the time limit at which SLURM sends SIGUSR1: the worker checkpoints, hands "
                   "its experiments back and requeues its task.")
@click.option("--partition", default=None, help="SLURM partition.")
@click.option("--account", default=None, help="SLURM account to charge.")
@click.option("--sbatch", "extra", multiple=True, metavar="KEY=VALUE",
              help="Any other sbatch option, e.g. --sbatch mem=32G --sbatch qos=long (repeatable).")
@click.option("--runs-dir", type=click.Path(file_okay=False), required=True,
              help="Run folder on a file system every node mounts (checkpoints, logs; SLURM logs in RUNS/slurm).")
@click.option("--lease", "lease_s", type=Seconds(MAX_LEASE_S), default=60.0, show_default=True,
              help="The workers' lease length in seconds.")
@click.option("--poll", "poll_s", type=Seconds(MAX_POLL_S), default=5.0, show_default=True,
              help="Seconds between the workers' looks at an empty queue.")
@click.option("--tag", "tags", multiple=True, help="The workers take only experiments with this tag (repeatable).")
@click.option("--max-attempts", type=Count, default=None, help="Claims per experiment before a crashing one fails.")
@click.option("--prestart/--no-prestart", default=True, show_default=True,
              help="The workers pre-start each next experiment's process (see ganlab worker).")
@click.option("--until-empty/--keep-polling", default=True, show_default=True,
              help="A worker ends its task once nothing is queued or running, or keeps polling until its time limit.")
@click.option("--single-node", is_flag=True,
              help="The cluster is this machine: allow a local SQLite file, runs folder and database host.")
@name_option
@click.option("--dry-run", is_flag=True, help="Print the batch script; contact neither SLURM nor the database.")
@click.option("--json", "as_json", is_flag=True, help="Print the job id as JSON.")
@click.pass_context
def submit(ctx: click.Context, workers: int, gpus_per_worker: int, cpus_per_worker: int, time_limit: str,
           warn_s: int, partition: str | None, account: str | None, extra: tuple[str, ...], runs_dir: str,
           lease_s: float, poll_s: float, tags: tuple[str, ...], max_attempts: int | None, prestart: bool, until_empty: bool, single_node: bool,
           job_name: str, dry_run: bool, as_json: bool) -> None:
    """Submit one job array whose every task runs `ganlab worker` on the shared queue."""
    url = _absolute_db(db_url(ctx))
    runs = Path(runs_dir).resolve()
    plugins = ctx.obj.worker_plugins_dir()
    options = SubmitOptions(
        db_url=url, runs_dir=runs, workers=workers, time=time_limit, gpus_per_worker=gpus_per_worker,
        cpus_per_worker=cpus_per_worker, partition=partition, account=account, job_name=job_name, warn_s=warn_s,
        extra=parse_sbatch_pairs(extra), plugins_dir=plugins or "", lease_s=lease_s, poll_s=poll_s, tags=tags,
        max_attempts=max_attempts, prestart=prestart, until_empty=until_empty,
    )
    script = render(options)
    check_db_shared(url, single_node=single_node)
    check_runs_shared(runs, single_node=single_node)
    if dry_run:
        click.echo(script, nl=False)
        return
    with open_db(ctx, Queue, read_only=True) as queue:  # reachable, and at this ganlab's schema
        counts = queue.count_by_status()
    log_dir(options).mkdir(parents=True, exist_ok=True)
    job = commands.submit(script)
    if as_json:
        print_json({"job_id": job, "workers": workers, "logs": str(log_dir(options))})
        return
    click.echo(f"submitted job array {job}: {workers} worker(s) on {display_url(url)} "
               f"({counts.get('queued', 0)} queued); logs in {log_dir(options)}")
    click.echo(f"watch: ganlab slurm status --job {job}    stop: ganlab slurm cancel --job {job}")


@slurm.command("status")
@db_option
@job_option
@name_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(ctx: click.Context, job_id: str | None, job_name: str, as_json: bool) -> None:
    """The arrays' tasks as SLURM sees them, with the worker and experiment each holds in the queue."""
    tasks = commands.list_tasks(job_id=job_id, name=None if job_id else job_name)
    with open_db(ctx, Queue, read_only=True) as queue:
        workers = {(w.slurm_job_id, w.slurm_task): w for w in queue.list_workers() if w.slurm_job_id}
        running = [queue.get(r.id) for r in queue.list_experiments(statuses=["running"])]  # summaries lack worker ids
        holding = {r.worker_id: r for r in running if r.worker_id}
    rows = []
    for t in tasks:
        worker = workers.get((t.job_id, t.task)) if t.state == "RUNNING" else None
        exp = holding.get(worker.worker_id) if worker is not None else None
        rows.append({"task": t.name, "state": t.state, "elapsed": t.elapsed, "limit": t.limit, "where": t.where,
                     "worker": worker.worker_id if worker else None,
                     "experiment": exp.id if exp else None, "name": exp.name if exp else None,
                     "step": exp.step if exp else None, "total_steps": exp.total_steps if exp else None})
    if as_json:
        print_json(rows)
        return
    if not rows:
        which = f"job {job_id}" if job_id else f"named {job_name}"
        click.echo(f"no SLURM tasks {which} of yours are pending or running")
        return
    print_table(["task", "state", "elapsed", "limit", "node/reason", "worker", "experiment"],
                [(r["task"], r["state"], r["elapsed"], r["limit"], r["where"], r["worker"] or "",
                  f"#{r['experiment']} {r['name']} {r['step']}/{r['total_steps']}" if r["experiment"] else "")
                 for r in rows], title="SLURM workers")


@slurm.command("cancel")
@job_option
@name_option
@click.pass_context
def cancel(ctx: click.Context, job_id: str | None, job_name: str) -> None:
    """Stop the workers gracefully: pending tasks are removed, running ones checkpoint and hand their experiments back."""
    tasks = commands.list_tasks(job_id=job_id, name=None if job_id else job_name)
    if not tasks:
        which = f"job {job_id}" if job_id else f"named {job_name}"
        click.echo(f"no SLURM tasks {which} of yours are pending or running: nothing to cancel")
        return
    for job in sorted({t.job_id for t in tasks}, key=int):
        mine = [t for t in tasks if t.job_id == job]
        pending = sum(t.state == "PENDING" for t in mine)
        running = sum(t.state in ("RUNNING", "CONFIGURING") for t in mine)
        if running:
            # SIGINT to each worker only: it checkpoints and hands back its experiments itself, and exits
            # without requeueing (SIGUSR1 is the one that requeues). SLURM's own SIGTERM banner says "CANCELLED".
            commands.signal_running(job, "INT")
        # After the signal: a task that requeued itself meanwhile is pending now, and goes too.
        commands.cancel_pending(job)
        click.echo(f"job {job}: {running} running worker(s) asked to checkpoint and stop, "
                   f"{pending} pending task(s) removed")
