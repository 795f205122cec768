"""``ganlab queue list`` and ``ganlab queue show``: the queue's read-only views."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ganlab.cli.db_option import db_option, open_db
from ganlab.cli.output import print_json, print_table, warn
from ganlab.cli.types import ExperimentId
from ganlab.compare.table import CARDS_KEY
from ganlab.limits import DB_INT_MAX
from ganlab.logfilter import without_noise
from ganlab.metrics.card import card_line
from ganlab.names import printable
from ganlab.store.lifecycle import STATUSES
from ganlab.store.models import utcnow
from ganlab.store.records import ExperimentRecord, ExperimentSummary
from ganlab.store.storage import Store

ERROR_TAIL_LINES = 20


# ------------------------------------------------------------------------ list


def _age(then: datetime | None, now: datetime) -> str:
    if then is None:
        return ""
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _progress(row: ExperimentSummary | ExperimentRecord) -> str:
    if row.status == "queued" and row.step == 0:
        return ""
    if not row.total_steps:
        return str(row.step)
    return f"{row.step}/{row.total_steps} ({100 * row.step // row.total_steps}%)"


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "n/a" if value is None else str(value)


def _status(row: ExperimentSummary | ExperimentRecord) -> str:
    return f"{row.status} (cancel requested)" if row.cancel_requested and row.status == "running" else row.status


@click.command("list")
@db_option
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Only this status. Repeatable.")
@click.option("--tag", "tags", multiple=True, help="Only experiments with this tag (any of several). Repeatable.")
@click.option("--arch", default=None, help="Only this architecture.")
@click.option("--limit", type=click.IntRange(0, DB_INT_MAX), default=50, show_default=True, help="Newest N (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_cmd(ctx: click.Context, statuses: tuple[str, ...], tags: tuple[str, ...], arch: str | None,
             limit: int, as_json: bool) -> None:
    """List experiments, oldest first: id, name, plugins, status, progress, age."""
    with open_db(ctx, Store, read_only=True) as store:
        rows = store.list_experiments(statuses=statuses, tags=tags, architecture=arch,
                                      limit=limit + 1 if limit else None)
    more = bool(limit) and len(rows) > limit
    if more:
        rows = rows[1:]
    if as_json:
        print_json([r.to_dict() for r in rows])
    else:
        now = utcnow()
        print_table(
            ["id", "name", "arch", "dataset", "loss", "status", "progress", "age"],
            [(r.id, r.name, r.architecture, r.dataset, r.loss, _status(r), _progress(r), _age(r.queued_at, now))
             for r in rows],
        )
    if more:
        warn(f"showing the newest {limit}; --limit 0 shows all")


# ------------------------------------------------------------------------ show


@click.command("show")
@db_option
@click.argument("exp_id", metavar="ID", type=ExperimentId)
@click.option("--json", "as_json", is_flag=True, help="Print the whole record as JSON.")
@click.pass_context
def show(ctx: click.Context, exp_id: int, as_json: bool) -> None:
    """Show one experiment: status, claim, progress, metrics, run dir, config and error."""
    with open_db(ctx, Store, read_only=True) as store:
        rec = store.get(exp_id)
    if as_json:
        print_json(rec.to_dict())
        return
    now = utcnow()

    def echo(text: str) -> None:
        # Names, tags, errors and config values are stored data: no raw escape sequence reaches the terminal.
        click.echo(printable(text))

    def line(label: str, value: Any) -> None:
        if value not in (None, ""):
            echo(f"  {label:<12}{value}")

    def when(t: datetime | None) -> str | None:
        return f"{t:%Y-%m-%d %H:%M:%S} UTC ({_age(t, now)} ago)" if t else None

    echo(f"experiment {rec.id}  {rec.name}")
    line("status", _status(rec) + (f" (attempt {rec.attempts})" if rec.attempts else ""))
    line("stop reason", rec.stop_reason)  # why a GAN-aware stop or a pruner ended it early
    augment = rec.experiment_config().augmentation
    line("plugins", f"{rec.architecture} / {rec.dataset} / {rec.loss}" + (f" / {augment}" if augment != "none" else ""))
    line("priority", rec.priority)
    line("tags", ", ".join(rec.tags))
    line("queued", when(rec.queued_at))
    line("started", when(rec.started_at))
    line("finished", when(rec.finished_at))
    line("progress", _progress(rec))
    line("heartbeat", when(rec.heartbeat_at))
    if rec.last_losses:
        line("losses", " ".join(f"{k}={_num(v)}" for k, v in rec.last_losses.items()))
    if rec.status == "running":
        lease = f", lease until {rec.lease_expires_at:%H:%M:%S} UTC" if rec.lease_expires_at else ""
        line("worker", f"{rec.worker_id} on {rec.worker_host} (pid {rec.worker_pid}), token {rec.fence}{lease}")
    if rec.run_dir:
        line("run dir", f"{rec.run_host}:{rec.run_dir}" if rec.run_host else rec.run_dir)
    if rec.metrics:
        line("metrics", " ".join(f"{k}={_num(v)}" for k, v in rec.metrics.items() if k != CARDS_KEY))
        cards = rec.metrics.get(CARDS_KEY)
        if isinstance(cards, dict) and cards:
            echo("  metric cards")
            for name in sorted(cards):
                if isinstance(cards[name], dict):
                    echo(f"    {card_line(cards[name])}")
    line("config hash", rec.config_hash)
    _plugin_files(rec)
    echo("  config")
    for key, value in rec.experiment_config().flat().items():
        echo(f"    {key} = {value}")
    if rec.error:
        lines = without_noise(rec.error.rstrip().splitlines())  # rows stored before the filter had it
        tail = lines[-ERROR_TAIL_LINES:]
        echo(f"  error (last {len(tail)} of {len(lines)} lines)" if len(lines) > len(tail) else "  error")
        for text in tail:
            echo(f"    {text}")


def _plugin_files(rec: ExperimentRecord) -> None:
    """The local plugin files recorded at enqueue: what a worker will run, and the reproducibility record."""
    if rec.plugin_files is None:
        click.echo("  plugin files not recorded (queued before schema 2): a worker runs it with no local plugin file")
        return
    if not rec.plugin_files:
        return
    click.echo("  plugin files")
    for f in rec.plugin_files:
        # Stored values are untrusted: printed as text, control characters made visible.
        click.echo(printable(f"    {f.get('kind')} {f.get('name')}: {f.get('path')}"))
        click.echo(printable(f"      sha256 {f.get('sha256')}"))
