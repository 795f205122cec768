"""Shared terminal output: rich tables for people, JSON for scripts, warnings on stderr."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ganlab.names import printable


def console() -> Console:
    # A fresh console per call: CliRunner swaps sys.stdout, and tests read it.
    # Piped output is not cut to 80 columns, unless COLUMNS says how wide the reader's screen is.
    wide = sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit()
    return Console(file=sys.stdout, soft_wrap=False, width=None if wide else 200)


def cell(value: Any) -> Text:
    """A table cell from stored data: plain text (``[/]`` is no markup) with control characters escaped."""
    return Text("" if value is None else printable(str(value)))


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    table = Table(title=title, header_style="bold", show_lines=False)
    for col in columns:
        table.add_column(cell(col), overflow="fold")  # headers may be stored names too (a study's parameters)
    for row in rows:
        table.add_row(*(cell(v) for v in row))
    console().print(table)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def warn(message: str) -> None:
    # Warnings quote stored names and run dirs: their control characters are shown, not sent.
    click.echo(printable(f"warning: {message}", keep="\n"), err=True)
