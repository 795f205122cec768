"""``ganlab demo``: the whole loop on the bundled digits data: queue a sweep, run it, compare."""

from __future__ import annotations

from pathlib import Path

import click

from ganlab.cli.compare_cmd import load_rows, render
from ganlab.cli.db_option import db_option, open_db
from ganlab.cli.worker_cmd import run_worker
from ganlab.compare.table import metric_names, sort_rows
from ganlab.config import Resolver
from ganlab.limits import MAX_BATCH_SIZE, MAX_STEPS
from ganlab.store.queue import Queue
from ganlab.store.records import NewExperiment
from ganlab.sweep import split_list
from ganlab.worker.gpus import parse_gpus
from ganlab.worker.loop import WorkerOptions

DEMO_TAG = "demo"


@click.command("demo")
@db_option
@click.option("--losses", default="non-saturating,hinge,wgan-gp", show_default=True,
              help="Comma list of losses to compare (each trains dcgan on digits).")
@click.option("--steps", type=click.IntRange(1, MAX_STEPS), default=600, show_default=True, help="Generator steps per run.")
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), default=64, show_default=True, help="Images per batch.")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--gpus", default="auto", show_default=True, help="As for 'ganlab worker'.")
@click.pass_context
def demo(ctx: click.Context, losses: str, steps: int, batch_size: int, runs_dir: str, gpus: str) -> None:
    """Queue dcgan x LOSSES on the bundled digits, run them with a worker, print the comparison.

    Running it again with the same settings finds the finished runs and only
    prints the comparison.
    """
    registry = ctx.obj.registry()
    resolver = Resolver(registry)
    # 16x16 digits and a narrower dcgan: a 2-core CPU trains the three runs in a few minutes,
    # and the samples are recognisable digits well before the last step.
    sets = {
        "size": 16, "base_filters": 32,
        "steps": steps, "batch_size": batch_size, "eval_every": max(1, steps // 4), "checkpoint_every": max(1, steps // 4),
        "sample_every": max(1, steps // 8), "eval_samples": 500,
    }
    items = []
    for loss in split_list("--losses", losses):
        config = resolver.resolve("dcgan", "digits", loss, sets)
        items.append(NewExperiment(config, name=f"demo-dcgan-{loss}", tags=(DEMO_TAG,)))
    with open_db(ctx, Queue, create=True) as queue:
        result = queue.enqueue(items)
        ids = [i for i, _ in result.queued]
        for skipped in result.skipped:
            click.echo(f"#{skipped.existing_id} {skipped.name}: already {skipped.existing_status}, not queued again")
            if skipped.existing_id is not None:
                ids.append(skipped.existing_id)
        if result.queued:
            click.echo(f"queued {len(result.queued)} experiment(s): " + ", ".join(f"#{i} {n}" for i, n in result.queued))
        options = WorkerOptions(slots=parse_gpus(gpus), runs_root=Path(runs_dir), lease_s=60.0, poll_s=1.0,
                                tags=(DEMO_TAG,), until_empty=True, plugins_dir=ctx.obj.worker_plugins_dir())
        run_worker(queue, options)
        rows = load_rows(queue, sorted(ids), (), ())
    rows = sort_rows(rows, "fd" if "fd" in metric_names(rows) else None)
    render(rows, None, metric_names(rows), title="demo: dcgan on digits")
    click.echo(f"\nSee every curve, sample grid and the HParams table:  ganlab tensorboard --tag {DEMO_TAG}")
    click.echo(f"(or plain TensorBoard:  tensorboard --logdir {runs_dir})")
    click.echo(f"Samples and curves side by side in one offline page:  ganlab report --tag {DEMO_TAG} -o report.html")
