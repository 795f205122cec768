"""``ganlab logs``: an experiment's training log as a worker's child wrote it, without the C++ start-up noise."""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import click

from ganlab.cli.db_option import db_option, open_db
from ganlab.cli.types import Count, ExperimentId
from ganlab.errors import ConfigError, GanlabError, NotFound
from ganlab.logfilter import is_noise
from ganlab.names import printable
from ganlab.store.lifecycle import FINAL_STATUSES
from ganlab.store.queue import Queue
from ganlab.store.records import ExperimentRecord
from ganlab.training.run_dir import LOG_NAME

#: Seconds between looks at a followed log (and at its experiment's status once the log is quiet).
FOLLOW_POLL_S = 0.5


@click.command("logs")
@db_option
@click.argument("exp_id", type=ExperimentId)
@click.option("-f", "--follow", is_flag=True,
              help="Keep printing new lines until the experiment succeeds, fails, diverges or is cancelled "
                   "(Ctrl-C to leave).")
@click.option("-n", "--lines", type=Count, default=None, help="Only the last N lines (N >= 1).")
@click.option("--raw", is_flag=True, help="Every line as written, TensorFlow's and absl's start-up messages included.")
@click.pass_context
def logs(ctx: click.Context, exp_id: int, follow: bool, lines: int | None, raw: bool) -> None:
    """Show the training log of experiment EXP_ID: each attempt's start, its progress
    (step, steps/s, losses), evaluations, checkpoints and how it ended."""
    path = _log_path(_record(ctx, exp_id))
    keep: Callable[[str], bool] = (lambda _line: True) if raw else (lambda line: not is_noise(line))
    decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character may straddle two reads
    with open(path, "rb") as fh:
        complete, partial = _split(decoder.decode(fh.read(), final=not follow))
        shown = [line for line in complete if keep(line)]
        if not follow and partial and keep(partial):
            shown.append(partial)  # a line still being written, shown as it is
        for line in shown[-lines:] if lines else shown:
            _echo(line)
        if follow:
            try:
                _follow(ctx, exp_id, fh, decoder, partial, keep)
            except KeyboardInterrupt:
                click.echo("", err=True)  # leave the shell's prompt on a line of its own; exit 0


def _record(ctx: click.Context, exp_id: int) -> ExperimentRecord:
    with open_db(ctx, Queue, read_only=True) as queue:
        return queue.get(exp_id)


def _log_path(record: ExperimentRecord) -> Path:
    if not record.run_dir:
        raise ConfigError(f"experiment {record.id} has not started yet (status {record.status}); it has no log")
    path = Path(record.run_dir) / LOG_NAME
    if not path.is_file():
        host = f" on host {record.run_host}" if record.run_host else ""
        raise GanlabError(f"no log at {printable(str(path))}{host}; run 'ganlab logs' on the host that ran it, "
                          "or share the runs folder")
    return path


def _echo(line: str) -> None:
    # The log holds stored names and whatever plugin code printed: escape sequences show as text.
    click.echo(printable(line, keep="\t"))


def _follow(ctx: click.Context, exp_id: int, fh: BinaryIO, decoder: codecs.IncrementalDecoder, partial: str,
            keep: Callable[[str], bool]) -> None:
    """Print each new complete line until the experiment reaches a final status, then what is left."""
    waiting_shown = False
    with open_db(ctx, Queue, read_only=True) as queue:
        while True:
            chunk = fh.read()
            if chunk:
                partial = _emit(partial + decoder.decode(chunk), keep)
                continue
            try:
                status = queue.get(exp_id).status
            except NotFound:
                status = "removed"
            if status in FINAL_STATUSES or status == "removed":
                # The child wrote its last line before the worker recorded the end: read once more.
                rest = _emit(partial + decoder.decode(fh.read(), final=True), keep)
                if rest and keep(rest):
                    _echo(rest)
                return
            if status == "queued" and not waiting_shown:
                click.echo(f"(experiment {exp_id} is back in the queue; waiting for a worker to resume it)", err=True)
            waiting_shown = status == "queued"
            time.sleep(FOLLOW_POLL_S)


def _split(text: str) -> tuple[list[str], str]:
    """``text``'s complete lines, and the unfinished last one ("" if it ends with a newline)."""
    *complete, partial = text.split("\n")
    return [line.removesuffix("\r") for line in complete], partial


def _emit(text: str, keep: Callable[[str], bool]) -> str:
    """Print the complete lines of ``text``; return the unfinished last one."""
    complete, partial = _split(text)
    for line in complete:
        if keep(line):
            _echo(line)
    return partial
