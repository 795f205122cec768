"""Bad numbers, database URLs and sweeps, on every command: one ``Error:`` line, nothing changed (issue #13).

Each refusal is checked the way a user would notice it: a non-zero exit,
exactly one ``Error:`` line, no traceback, and every file in the working
folder (the database, its -wal and -lock files, anything a bad ``--db``
might create) byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shlex
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from _store_db import V1_SCHEMA
from click.testing import CliRunner, Result

from ganlab.cli import cli
from ganlab.config import Resolver
from ganlab.registry import load_plugins
from ganlab.store import NewExperiment, Queue, Store
from ganlab.training.run_dir import LOG_NAME

DB_INT_MAX = 2**31 - 1  # PostgreSQL's INTEGER; the bound ganlab.limits sets for ids, steps, priorities
BIG = str(10**20)  # past SQLite's 64-bit integers: an OverflowError in the driver
PG_ONLY = str(2**31)  # SQLite stores it, PostgreSQL's INTEGER columns refuse it


# ----------------------------------------------------------------- helpers


def snapshot(folder: Path) -> dict[str, str]:
    """Every file in ``folder`` with the SHA-256 of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def run(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args)


def error_line(result: Result) -> str:
    """The one ``Error:`` line of a refused command (no traceback, exit code non-zero)."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # a message, not a crash
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def refused(args: list[str], folder: Path, *fragments: str) -> str:
    before = snapshot(folder)
    line = error_line(run(args))
    assert snapshot(folder) == before, line
    for fragment in fragments:
        assert fragment in line, line
    return line


def ok(args: list[str]) -> Result:
    result = run(args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def _configs(n: int, **sets: object) -> list[NewExperiment]:
    resolver = Resolver(load_plugins(None), check_data=False)
    return [NewExperiment(resolver.resolve("dcgan", "digits", "non-saturating", {"steps": 5, "seed": i, **sets}),
                          name=f"exp{i}") for i in range(n)]


def make_db(path: Path, queued: int = 3) -> Path:
    """A real SQLite queue with ``queued`` experiments, and no lock file (so creating one shows)."""
    with Store.open(str(path), create=True) as store:
        if queued:
            store.enqueue(_configs(queued))
    Path(f"{path}-lock").unlink(missing_ok=True)
    return path


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The working folder too: a bad --db must not create ./experiments.db or any other file.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GANLAB_DB", raising=False)
    return tmp_path


@pytest.fixture
def queued(folder: Path) -> Path:
    return make_db(folder / "q.db")


# ------------------------------------------- numbers, on every command


def _queue(db: str, *args: str) -> list[str]:
    return ["queue", "--db", db, *args]  # the group's --db: also how it was given before the leaf took one


INTEGER_CASES = [
    _queue("{db}", "show", BIG), _queue("{db}", "show", "0"), _queue("{db}", "show", PG_ONLY),
    _queue("{db}", "cancel", BIG), _queue("{db}", "cancel", "1", PG_ONLY),
    _queue("{db}", "retry", BIG), _queue("{db}", "rm", BIG), _queue("{db}", "rm", "1", PG_ONLY),
    _queue("{db}", "extend", BIG, "--steps", "9"), _queue("{db}", "extend", "1", "--steps", BIG),
    _queue("{db}", "extend", "1", "--steps", PG_ONLY),
    _queue("{db}", "priority", BIG, "1"), _queue("{db}", "priority", "1", BIG), _queue("{db}", "priority", "1", PG_ONLY),
    _queue("{db}", "list", "--limit", BIG), _queue("{db}", "list", "--limit", "-1"),
    _queue("{db}", "add", "--steps", BIG), _queue("{db}", "add", "--steps", PG_ONLY),
    _queue("{db}", "add", "--priority", BIG), _queue("{db}", "add", "--priority", PG_ONLY),
    _queue("{db}", "add", "--batch-size", BIG), _queue("{db}", "add", "--seed", BIG),
    _queue("{db}", "add", "--seeds", f"0,{BIG}"), _queue("{db}", "add", "--seeds", f"0,{PG_ONLY}"),
    *[_queue("{db}", "add", "--set", f"{key}={value}")
      for key in ("checkpoint_every", "eval_every", "sample_every", "log_every") for value in (BIG, PG_ONLY)],
    _queue("{db}", "add", "-f", "{priority_big}"), _queue("{db}", "add", "-f", "{priority_pg}"),
    _queue("{db}", "add", "--max-experiments", "0"), _queue("{db}", "add", "--max-experiments", BIG),
    ["logs", "--db", "{db}", BIG], ["logs", "--db", "{db}", "1", "-n", "0"], ["logs", "--db", "{db}", "1", "-n", "-5"],
    ["logs", "--db", "{db}", "1", "-n", BIG], ["logs", "--db", "{db}", BIG, "-f", "--raw"],
    ["compare", "--db", "{db}", BIG], ["compare", "--db", "{db}", "1", PG_ONLY],
    ["sample", "--db", "{db}", BIG], ["sample", "--db", "{db}", PG_ONLY], ["sample", "--db", "{db}", "1", "--seed", BIG],
    ["sample", "--db", "{db}", "1", "--ncols", BIG], ["sample", "--db", "{db}", "1", "-n", "0"],
    ["sample", "--db", "{db}", "x" * 5000],
    ["tensorboard", "--db", "{db}", "--id", BIG],
    ["demo", "--db", "{db}", "--steps", BIG], ["demo", "--db", "{db}", "--batch-size", BIG],
    # Leases are computed at the first claim, so these need a queued experiment to reach it.
    *[["worker", "--db", "{db}", "--gpus", "none", "--no-prestart", "--lease", value]
      for value in ("nan", "inf", "-inf", "0", "-1", "1e12")],
]

# Options an idle worker reads: with nothing queued it would exit (--until-empty) instead of failing.
IDLE_WORKER_CASES = [
    *[["worker", "--db", "{db}", "--gpus", "none", "--until-empty", "--poll", value]
      for value in ("nan", "inf", "0", "-1", "1e12")],
    *[["worker", "--db", "{db}", "--gpus", "none", "--until-empty", option, value]
      for option in ("--max-attempts", "--max-experiments") for value in ("0", "-3", BIG)],
]


def _fill(args: list[str], **values: str) -> list[str]:
    return [a.format(**values) for a in args]


@pytest.mark.parametrize("args", INTEGER_CASES, ids=[" ".join(a)[:120] for a in INTEGER_CASES])
def test_numbers_beyond_their_range_are_refused_before_anything_is_written(queued: Path, args: list[str]) -> None:
    big = queued.parent / "priority_big.toml"
    big.write_text(f'priority = {BIG}\n[grid]\narch = "dcgan"\n')
    pg = queued.parent / "priority_pg.toml"
    pg.write_text(f'priority = {PG_ONLY}\n[grid]\narch = "dcgan"\n')
    refused(_fill(args, db=str(queued), priority_big=str(big), priority_pg=str(pg)), queued.parent)


@pytest.mark.parametrize("args", IDLE_WORKER_CASES, ids=[" ".join(a) for a in IDLE_WORKER_CASES])
def test_worker_numbers_are_refused_before_a_worker_is_registered(folder: Path, args: list[str]) -> None:
    db = make_db(folder / "idle.db", queued=0)
    refused(_fill(args, db=str(db)), folder, "Invalid value for")
    with Queue.open(str(db)) as q:
        assert q.list_workers() == []


@pytest.mark.parametrize("value", ["4", "auto", "0", "-1", "65", BIG, "x"])
def test_per_gpu_on_a_worker_without_a_gpu_or_out_of_range_is_refused(folder: Path, value: str) -> None:
    db = make_db(folder / "idle.db", queued=1)
    line = refused(["worker", "--db", str(db), "--gpus", "none", "--until-empty", "--per-gpu", value], folder,
                   f"--per-gpu {value}" if value in ("4", "auto") else f"--per-gpu '{value}' is not valid")
    assert "needs a GPU" in line or "use a count from 1 to 64, or auto" in line
    with Queue.open(str(db)) as q:
        assert q.list_workers() == [] and q.count_by_status()["queued"] == 1


def test_logs_n_must_be_at_least_one(queued: Path) -> None:
    run_dir = queued.parent / "runs" / "exp0"
    run_dir.mkdir(parents=True)
    (run_dir / LOG_NAME).write_text("".join(f"line {i}\n" for i in range(1, 8)))
    with Queue.open(str(queued)) as q:
        claim = q.claim("w", lease_s=60)
        assert claim is not None and claim.id == 1
        q.set_run_dir(claim.id, claim.token, str(run_dir))
    for n in ("0", "-5"):
        refused(["logs", "--db", str(queued), "1", "-n", n], queued.parent, "Invalid value for '-n'", "1<=x")
    assert ok(["logs", "--db", str(queued), "1", "-n", "2"]).output == "line 6\nline 7\n"


def test_logs_prints_stored_text_and_log_lines_as_text(queued: Path) -> None:
    """A run dir stored in the queue, and what a run's log holds, cannot drive the terminal."""
    esc = "\x1b]8;;http://x\x1b\\"
    run_dir = queued.parent / "runs" / f"exp{esc}"
    with Queue.open(str(queued)) as q:
        claim = q.claim("w", lease_s=60)
        assert claim is not None
        q.set_run_dir(claim.id, claim.token, str(run_dir))
    missing = refused(["logs", "--db", str(queued), "1"], queued.parent, "no log at", "\\x1b]8;;http")
    assert "\x1b" not in missing
    run_dir.mkdir(parents=True)
    (run_dir / LOG_NAME).write_text(f"step 1\tok\nname {esc}red\x1b[31m\n")
    shown = ok(["logs", "--db", str(queued), "1"]).output
    assert "\x1b" not in shown and shown == "step 1\tok\nname \\x1b]8;;http://x\\x1b\\red\\x1b[31m\n"


def test_each_bound_is_the_same_on_sqlite_and_postgresql(db_url: str) -> None:  # noqa: F811
    """The largest value is stored on both dialects and one more is refused on both, with the same message."""
    ok(_queue(db_url, "add", "--steps", str(DB_INT_MAX), "--priority", str(DB_INT_MAX),
              "--set", f"checkpoint_every={DB_INT_MAX}", "--seed", str(DB_INT_MAX)))
    ok(_queue(db_url, "priority", "1", "--", str(-DB_INT_MAX)))
    with Queue.open(db_url) as q:
        rec = q.get(1)
    assert (rec.total_steps, rec.priority, rec.experiment_config().train["seed"]) == (DB_INT_MAX, -DB_INT_MAX, DB_INT_MAX)
    lines = [
        error_line(run(_queue(db_url, "add", "--steps", PG_ONLY))),
        error_line(run(_queue(db_url, "add", "--priority", PG_ONLY))),
        error_line(run(_queue(db_url, "priority", "1", PG_ONLY))),
        error_line(run(_queue(db_url, "show", PG_ONLY))),
    ]
    assert "allowed [1, 2147483647]" in lines[0]
    assert all("2147483647" in line for line in lines[1:]), lines
    # The highest id itself is a valid id: not found, rather than a database error.
    assert "no experiment 2147483647 in" in error_line(run(_queue(db_url, "show", str(DB_INT_MAX))))
    with Queue.open(db_url) as q:
        assert [r.id for r in q.list_experiments()] == [1] and q.get(1).priority == -DB_INT_MAX


# -------------------------------------------------------------- --db values


BAD_URLS = {
    "port not a number": "postgresql+psycopg://u@h:abc/db",
    "unclosed IPv6 address": "postgresql+psycopg://u@[::1/db",
    "5000-character name": "x" * 5000,
    "5000-character sqlite URL": "sqlite:///" + "x" * 5000,
    "path longer than PATH_MAX": "d/" * 2100 + "q.db",
    "in memory": "sqlite:///:memory:",
    "in memory, no path": "sqlite://",
    "in memory, URI": "sqlite:///file::memory:?uri=true",
    "in memory, mode=memory": "sqlite:///file:mem?mode=memory&uri=true",
    "control character": "q\nx.db",
    "empty": "",
    "blank": "   ",
}

URL_COMMANDS = [
    ["queue", "--db", "{url}", "list"], ["queue", "--db", "{url}", "show", "1"], ["queue", "--db", "{url}", "add"],
    ["queue", "--db", "{url}", "add", "--dry-run"], ["queue", "--db", "{url}", "cancel", "1"],
    ["db", "--db", "{url}", "upgrade"], ["status", "--db", "{url}"], ["logs", "--db", "{url}", "1"],
    ["compare", "--db", "{url}"], ["sample", "--db", "{url}", "1"], ["tensorboard", "--db", "{url}", "--id", "1"],
    ["worker", "--db", "{url}", "--gpus", "none", "--until-empty"],
]


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
@pytest.mark.parametrize("args", URL_COMMANDS, ids=[" ".join(a).replace(" --db {url}", "") for a in URL_COMMANDS])
def test_malformed_db_values_are_one_line_errors(folder: Path, url: str, args: list[str]) -> None:
    make_db(folder / "q.db")
    line = refused([a.replace("{url}", url) for a in args], folder)
    if "memory" in url or url == "sqlite://":
        assert "in-memory" in line and "give a file path" in line
    if "\n" in url:
        assert "contains a control character" in line


def test_a_leading_space_in_db_is_ignored(queued: Path) -> None:
    assert "exp0" in ok(_queue(f"  {queued}", "list")).output


# ------------------------------------------------------------------ sweeps


def _limited_memory() -> None:
    # 1 GiB of address space: a sweep that is expanded before it is counted dies here
    # (the unbounded version reached 6 GB); counting first needs a fraction of it.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def _ganlab(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ganlab", *args], cwd=cwd, capture_output=True, text=True, check=False,
                          preexec_fn=_limited_memory, timeout=600)


# Ten valid values per axis, so that every point of the sweep would resolve.
TEN = {
    "lr_g": [(i + 1) / 10_000 for i in range(10)], "lr_d": [(i + 1) / 10_000 for i in range(10)],
    "beta_1": [i / 10 for i in range(10)], "ema": [i / 10 for i in range(10)],
    "n_critic": list(range(1, 11)), "latent_dim": list(range(1, 11)),
}


@pytest.mark.parametrize("how", ["file", "file --dry-run", "--set x --seeds"])
def test_a_huge_sweep_is_counted_and_refused_before_it_is_expanded(folder: Path, how: str) -> None:
    db = make_db(folder / "q.db")
    # 10 values on each of 7 axes: a 300-byte file describing 10,000,000 experiments.
    axes = ", ".join(f"{key} = {values}" for key, values in TEN.items())
    (folder / "huge.toml").write_text(f"seeds = {list(range(10))}\n[grid]\nset = {{ {axes} }}\n")
    if how.startswith("file"):
        args = ["queue", "--db", str(db), "add", "-f", "huge.toml", *how.split()[1:]]
    else:
        lrs = ",".join(f"{1e-6 * (i + 1):g}" for i in range(1000))
        args = ["queue", "--db", str(db), "add", "--set", f"lr_g={lrs}", "--seeds", ",".join(map(str, range(10_000)))]
    before = snapshot(folder)
    proc = _ganlab(args, folder)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: this sweep is 10,000,000 experiments"), proc.stderr[-2000:]
    assert "more than the limit of 100,000" in lines[0] and "--max-experiments N" in lines[0]
    assert snapshot(folder) == before


def test_max_experiments_raises_the_limit(queued: Path) -> None:
    args = ["queue", "add", "--db", str(queued), "--set", "lr_g=1e-4,2e-4,3e-4", "--seeds", "0,1"]
    refused([*args, "--max-experiments", "5"], queued.parent, "this sweep is 6 experiments (3 lr_g x 2 seed)",
            "more than the limit of 5")
    refused([*args, "--max-experiments", "5", "--dry-run"], queued.parent, "this sweep is 6 experiments")
    assert "6 experiment(s) queued" in ok([*args, "--max-experiments", "6"]).output


PACK_CASES = [
    (["--seeds", "0", "--pack", "2", "--backend", "jax"], "needs at least two seeds"),
    (["--pack", "2", "--backend", "jax"], "needs at least two seeds"),
    (["--seeds", "0,1", "--pack", "1", "--backend", "jax"], "a pack holds at least 2 seeds"),
    (["--seeds", "0,1,2", "--pack", "2", "--backend", "jax"], "does not divide the 3 seeds"),
    (["--seeds", "0,1", "--pack", "4", "--backend", "jax"], "does not divide the 2 seeds"),
    (["--seeds", "0,1", "--pack", "2"], "--pack needs --backend jax"),
    (["--seeds", "0,1", "--pack", "2", "--backend", "tensorflow"], "--pack needs --backend jax"),
    (["--seeds", "0,1", "--pack", "2", "--backend", "jax", "--set", "lr_g=1e-4,2e-4"], "but lr_g varies too"),
    (["--seeds", "0,1", "--pack", "2", "--backend", "jax", "--loss", "hinge,non-saturating"], "but loss varies too"),
    (["--seeds", "0,1", "--pack", "2", "--backend", "jax", "--dry-run", "--set", "lr_g=1e-4,2e-4"], "varies too"),
    (["--seeds", "0,1", "--pack", "0", "--backend", "jax"], "'--pack'"),
    (["--pack", "2", "-f", "{sweep}"], "--pack cannot be combined with -f"),
]


@pytest.mark.parametrize(("args", "fragment"), PACK_CASES)
def test_a_pack_that_cannot_be_made_is_refused_and_nothing_stored(queued: Path, args: list[str], fragment: str) -> None:
    sweep = queued.parent / "seeds.toml"
    sweep.write_text('seeds = [0, 1]\n[grid]\nset = { steps = [5] }\n')
    args = [a.replace("{sweep}", str(sweep)) for a in args]
    refused(_queue(str(queued), "add", "--steps", "5", *args), queued.parent, fragment)


def test_a_valid_pack_is_queued_with_one_key_per_pack(queued: Path) -> None:
    out = ok(_queue(str(queued), "add", "--steps", "5", "--backend", "jax", "--seeds", "0,1,2,3", "--pack", "2")).output
    assert "4 experiment(s) queued in packs of up to 2 seeds" in out
    with Store.open(f"sqlite:///{queued}") as store:
        records = [store.get(r.id) for r in store.list_experiments()]
        keys = [r.pack_key for r in sorted(records, key=lambda r: r.id) if r.config["train"]["backend"] == "jax"]
    assert len(keys) == 4 and keys[0] == keys[1] != keys[2] == keys[3] and None not in keys


def test_a_sweep_file_over_the_size_limit_is_refused_unread(queued: Path) -> None:
    path = queued.parent / "padded.toml"
    path.write_text('[grid]\narch = "dcgan"\n' + "#" * 10_000_100 + "\n")
    refused(_queue(str(queued), "add", "-f", str(path)), queued.parent,
            "is more than 10 MB", "lists in [grid]")
    # A device has no size to check first: it is read only up to the limit.
    refused(_queue(str(queued), "add", "-f", "/dev/zero"), queued.parent, "sweep file /dev/zero is more than 10 MB")
    refused(_queue(str(queued), "add", "-f", "a\x00b.toml"), queued.parent, "cannot read sweep file")


def test_a_large_dry_run_prints_every_row_as_plain_columns(queued: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ganlab.cli import queue_cmd

    monkeypatch.setattr(queue_cmd, "RICH_TABLE_ROWS", 3)  # the real threshold is 1,000 rows
    out = ok(["queue", "add", "--db", str(queued), "--set", "lr_g=1e-4,2e-4", "--seeds", "0,1", "--dry-run"]).output
    lines = out.splitlines()
    assert lines[0].split() == ["#", "name", "arch", "dataset", "loss", "settings", "priority", "tags", "note"]
    assert [line.split()[0] for line in lines[1:5]] == ["1", "2", "3", "4"]
    assert "dcgan-digits-non-saturating-lr_g=2e-4-seed=1" in lines[4]
    assert lines[-1].startswith("dry run: would queue 4 experiment(s)")


# ------------------------------------------- read-only and damaged databases


def _as_reader(argv: list[str]) -> list[str]:
    """``argv`` run as a user who may read but not write what the test made read-only.

    Root may write anything (CAP_DAC_OVERRIDE), so as root the command runs
    without the capabilities that bypass file permissions.
    """
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("READ-ONLY VARIANT NOT RUN: running as root, and setpriv (util-linux) is missing to drop root's powers")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--", *argv]


def _reader(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_as_reader([sys.executable, "-m", "ganlab", *args]), cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=300)


# Runs several ganlab commands in one reader process (one start-up instead of one per command).
_RUN_ALL = """
import json, sys
from click.testing import CliRunner
from ganlab.cli import cli
out = []
for args in json.loads(sys.argv[1]):
    r = CliRunner().invoke(cli, args)
    out.append([r.exit_code, r.stdout, r.stderr, repr(r.exception)])
print(json.dumps(out))
"""


def _reader_runs(commands: list[list[str]], cwd: Path) -> list[tuple[int, str, str, str]]:
    proc = subprocess.run(_as_reader([sys.executable, "-c", _RUN_ALL, json.dumps(commands)]), cwd=cwd,
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return [tuple(r) for r in json.loads(proc.stdout)]  # type: ignore[misc]


@pytest.fixture
def read_only(folder: Path) -> Iterator[Path]:
    """A queue in a folder its reader cannot write; ``folder/ro/q.db``."""
    where = folder / "ro"
    where.mkdir()
    db = make_db(where / "q.db")
    os.chmod(where, 0o555)
    try:
        _skip_unless_read_only(where)
        yield db
    finally:
        os.chmod(where, 0o755)


def _skip_unless_read_only(where: Path) -> None:
    probe = subprocess.run(_as_reader([sys.executable, "-c", f"open({str(where / 'probe')!r}, 'w')"]),
                           capture_output=True, check=False)
    if probe.returncode == 0:
        pytest.skip(f"READ-ONLY VARIANT NOT RUN: the reader can write into {where} (mode 0555)")


# Each read command, and what it prints of the database.
READ_COMMANDS = {("queue", "list"): "exp2", ("queue", "show", "1"): "experiment 1  exp0", ("status",): "queued 3",
                 ("compare", "--status", "queued"): "exp1",
                 ("queue", "add", "--dry-run", "--set", "lr_g=1e-4"): "would queue 1 experiment(s)"}


@pytest.mark.parametrize("unwritable", ["folder", "folder and file"])
def test_read_commands_work_on_a_database_they_cannot_write(read_only: Path, unwritable: str) -> None:
    if unwritable == "folder and file":
        os.chmod(read_only, 0o444)
    before = snapshot(read_only.parent)
    db = str(read_only)
    commands = [_queue(db, *args[1:]) if args[0] == "queue" else [*args, "--db", db] for args in READ_COMMANDS]
    commands += [["logs", "--db", db, "1"], _queue(db, "cancel", "1")]
    *reads, logs, cancel = _reader_runs(commands, read_only.parent.parent)
    for (args, shows), (code, stdout, stderr, exc) in zip(READ_COMMANDS.items(), reads):
        assert code == 0, (args, stderr, exc)
        assert shows in stdout, (args, stdout)
    assert logs[0] == 1 and logs[2].startswith("Error: experiment 1 has not started yet"), logs
    # A write is refused up front, in one line, leaving no -wal/-shm/-lock files behind.
    part = "the file" if "file" in unwritable else f"its folder {read_only.parent}"
    assert cancel[0] == 1 and cancel[2].strip().splitlines() == [
        f"Error: cannot write {read_only}: {part} is read-only for you; check the path and its permissions"], cancel
    assert snapshot(read_only.parent) == before


def test_a_reader_sees_commits_still_in_the_wal_of_a_database_it_cannot_write(folder: Path) -> None:
    where = folder / "live"
    where.mkdir()
    db = make_db(where / "q.db")
    writer = sqlite3.connect(db)  # the owner's process, still running: its commits sit in q.db-wal
    try:
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("UPDATE experiments SET priority = 7 WHERE id = 1")
        writer.commit()
        assert Path(f"{db}-wal").stat().st_size > 0
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            os.chmod(path, 0o444)
        os.chmod(where, 0o555)
        try:
            _skip_unless_read_only(where)
            main_before = snapshot(where)
            proc = _reader(_queue(str(db), "show", "1"), folder)
            assert proc.returncode == 0, proc.stderr
            assert "priority    7" in proc.stdout
            after = snapshot(where)
            assert after[db.name] == main_before[db.name] and after[f"{db.name}-wal"] == main_before[f"{db.name}-wal"]
        finally:
            os.chmod(where, 0o755)
            for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                os.chmod(path, 0o644)
    finally:
        writer.close()


def _corrupt_page(path: Path, page: int) -> None:
    """Overwrite one page of a real SQLite file with garbage, as a failing disk would."""
    size = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    with open(path, "r+b") as fh:
        fh.seek((page - 1) * size)
        fh.write(bytes([0xA5]) * size)


def test_db_upgrade_refuses_a_damaged_database(folder: Path) -> None:
    db = make_db(folder / "q.db", queued=40)
    conn = sqlite3.connect(db)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'ix_experiments_claim'").fetchone()[0]
    conn.close()
    _corrupt_page(db, root)
    line = refused(["db", "--db", str(db), "upgrade"], folder, f"{db} is damaged (quick_check: ", "restore it from a backup",
                   f"sqlite3 {db} .recover")
    assert "nothing to upgrade" not in line


# ------------------------------------------------------------- queue extend


def test_queue_extend_refuses_what_it_cannot_extend_and_changes_nothing(folder: Path) -> None:
    db = make_db(folder / "q.db", queued=6)  # 1 stays queued; 2 running, 3 failed, 4 and 5 succeeded, 6 stopped
    with Queue.open(str(db)) as q:
        claims = {c.id: c for c in (q.claim("w", lease_s=300) for _ in range(6))}
        q.release(1, claims[1].token)
        q.finish(3, claims[3].token, "failed", error="boom")
        for exp_id in (4, 5):
            q.finish(exp_id, claims[exp_id].token, "succeeded", step=5)
        q.finish(6, claims[6].token, "stopped", step=3, stop_reason="no fd improvement in 2 evaluations")
    # 5's config, with 9 steps, queued separately: extending 5 to 9 would make a second copy of it.
    with Store.open(str(db)) as store:
        twin = store.get(5).experiment_config()
        store.enqueue([NewExperiment(type(twin).from_dict({**twin.to_dict(), "train": {**twin.train, "steps": 9}}),
                                     name="twin")])
    Path(f"{db}-lock").unlink(missing_ok=True)
    base = _queue(str(db), "extend")
    refused([*base, "99", "--steps", "9"], folder, "no experiment 99")
    for exp_id, status in ((1, "queued"), (2, "running"), (3, "failed")):
        refused([*base, str(exp_id), "--steps", "9"], folder, f"experiment {exp_id} is {status}",
                "only succeeded, pruned, stopped experiments can be extended")
    refused([*base, "4", "--steps", "5"], folder, "experiment 4 already trains for 5 steps", "new total")
    refused([*base, "4", "--steps", "3"], folder, "must be more than that")
    refused([*base, "4", "1", "--steps", "9"], folder, "experiment 1 is queued")  # all or nothing
    refused([*base, "5", "--steps", "9"], folder, "experiment 7 (queued) already has experiment 5's config with 9 steps")
    refused([*base, "4", "--steps", "0"], folder, "--steps")
    # What is allowed goes through: the stopped one, with its reason cleared and the same row.
    assert "extended 6 from 5 to 9 steps; queued, resumes" in ok([*base, "6", "--steps", "9"]).output
    with Store.open(str(db)) as store:
        rec = store.get(6)
    assert (rec.status, rec.total_steps, rec.step, rec.stop_reason, rec.attempts) == ("queued", 9, 3, None, 0)
    assert rec.config["train"]["steps"] == 9 and rec.config_hash == rec.experiment_config().hash


# ------------------------------------------------------------- lock file


@pytest.mark.parametrize("args", [["cancel", "99"], ["retry", "1"], ["rm", "99"], ["priority", "99", "1"],
                                  ["cancel", "1", "99"], ["extend", "1", "--steps", "10"]], ids=" ".join)
def test_a_refused_write_leaves_no_lock_file(queued: Path, args: list[str]) -> None:
    refused(_queue(str(queued), *args), queued.parent)
    assert not Path(f"{queued}-lock").exists()


def test_the_lock_file_stays_once_a_write_went_through(queued: Path) -> None:
    ok(["queue", "cancel", "--db", str(queued), "1"])
    assert Path(f"{queued}-lock").exists()
    refused(["queue", "cancel", "--db", str(queued), "99"], queued.parent)
    assert Path(f"{queued}-lock").exists()  # it belongs to the database now: other writers may hold it


# ------------------------------------------------------------- --db placement


def _db_commands(group: object = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    import click

    assert isinstance(group, click.Group)
    for name, cmd in group.commands.items():
        yield (*path, name), cmd
        if isinstance(cmd, click.Group):
            yield from _db_commands(cmd, (*path, name))


def test_every_command_that_opens_the_database_takes_db_itself() -> None:
    for path, cmd in _db_commands():
        opts = {opt for p in cmd.params for opt in p.opts}  # type: ignore[attr-defined]
        if path[0] in ("queue", "db"):
            assert "--db" in opts, path
    takes = {path for path, cmd in _db_commands() if any("--db" in p.opts for p in cmd.params)}  # type: ignore[attr-defined]
    assert {("worker",), ("status",), ("logs",), ("compare",), ("sample",), ("tensorboard",), ("demo",),
            ("queue", "add"), ("queue", "list"), ("db", "upgrade")} <= takes


def test_db_goes_before_or_after_the_subcommand_and_the_nearest_wins(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = make_db(folder / "a.db", queued=1)
    b = make_db(folder / "b.db", queued=2)
    assert len(ok(["queue", "list", "--db", str(b), "--json"]).output.split('"id"')) == 3
    assert len(ok(["queue", "--db", str(a), "list", "--json"]).output.split('"id"')) == 2
    assert len(ok(["queue", "--db", str(a), "list", "--db", str(b), "--json"]).output.split('"id"')) == 3
    # GANLAB_DB is read by both options; it must not override a --db typed on the group.
    monkeypatch.setenv("GANLAB_DB", str(b))
    assert len(ok(["queue", "--db", str(a), "list", "--json"]).output.split('"id"')) == 2
    assert len(ok(["db", "--db", str(a), "upgrade"]).output.splitlines()) == 1
    assert "q.db" not in " ".join(p.name for p in folder.iterdir())


# ------------------------------------------------- the fixes the CLI prints


def _printed(text: str, pattern: str) -> list[str]:
    """The command the message suggests (``pattern`` finds it), split as a shell would, without 'ganlab'."""
    found = re.search(pattern, text)
    assert found, text
    argv = shlex.split(found.group(1))
    assert argv[0] == "ganlab", argv
    return argv[1:]


def test_every_fix_command_the_cli_prints_runs(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = folder / "sub dir" / "q.db"  # a space: the suggested commands must quote the path
    db.parent.mkdir()

    # No database yet: "queue something to create it: ganlab queue add --db ..."
    line = error_line(run(["queue", "list", "--db", str(db)]))
    ok(_printed(line, r"create it: (ganlab queue add.*?) \(or point"))
    assert db.exists()

    # An older schema: "upgrade it with: ganlab db upgrade --db ..." (the real steps from version 1 to 4).
    db.unlink()
    for leftover in db.parent.glob(db.name + "-*"):  # the WAL files of the new one
        leftover.unlink()
    conn = sqlite3.connect(db)
    conn.executescript(V1_SCHEMA)
    conn.close()
    line = error_line(run(["queue", "list", "--db", str(db)]))
    assert "from schema version 1 to 4" in ok(_printed(line, r"upgrade it with: (ganlab db upgrade.*)$")).output
    ok(["queue", "list", "--db", str(db)])

    # A duplicate: "--allow-duplicates queues it anyway".
    add = ["queue", "add", "--db", str(db), "--steps", "5"]
    ok(add)
    again = ok(add).output
    assert "1 skipped as duplicates" in again and "--allow-duplicates queues it anyway" in again
    assert "1 experiment(s) queued" in ok([*add, "--allow-duplicates"]).output
    ok([*add, "--allow-duplicates"])  # a third row: three claims follow

    # More rows than shown: "--limit 0 shows all".
    assert "--limit 0 shows all" in ok(["queue", "list", "--db", str(db), "--limit", "1"]).output
    assert len(ok(["queue", "list", "--db", str(db), "--limit", "0", "--json"]).output.split('"id"')) == 4

    # Unknown id, cancel without ids, nothing to compare or show: "see: ganlab queue list --db ...".
    for args in (["queue", "show", "--db", str(db), "99"], ["queue", "cancel", "--db", str(db)],
                 ["tensorboard", "--db", str(db), "--tag", "nope"]):
        ok(_printed(error_line(run(args)), r"see: (ganlab queue list.*?)\)?$"))
    ok(_printed(ok(["compare", "--db", str(db), "--tag", "nope"]).output.strip(), r"see: (ganlab queue list.*)\)$"))

    # Removing a running experiment: "cancel it first (ganlab queue cancel N --db ...)".
    with Queue.open(str(db)) as q:
        claim = q.claim("w", lease_s=30)
        assert claim is not None
    line = error_line(run(["queue", "rm", "--db", str(db), str(claim.id)]))
    assert "cancel requested" in ok(_printed(line, r"cancel it first \((ganlab queue cancel[^)]*)\)")).output

    # A run failed by its last allowed attempt: "to try again: ganlab queue retry N --db ...", in queue show.
    with Queue.open(str(db)) as q:
        retry = q.claim("w", lease_s=30)
        assert retry is not None and q.requeue(retry.id, retry.token, reason="killed", max_attempts=1) == "failed"
        lapsed = q.claim("w", lease_s=1)
        assert lapsed is not None
        later = lapsed.lease_expires_at + timedelta(seconds=1)
        assert [r.status for r in q.reclaim_expired(max_attempts=1, now=later)] == ["failed"]
    for exp_id in (retry.id, lapsed.id):
        shown = ok(["queue", "show", "--db", str(db), str(exp_id)]).output
        assert f"requeued {exp_id}" in ok(_printed(shown, r"to try again: (ganlab queue retry.*?)\)?$")).output


AUTHORING_CASES = [
    (["plugins", "new", "Bad", "--kind", "architecture"], "is not allowed"),
    (["plugins", "new", "../x", "--kind", "loss"], "is not allowed"),
    (["plugins", "new", "ok", "--kind", "optimizer"], "available kinds: architecture, dataset, loss, augmentation, metric"),
    (["--no-local-plugins", "plugins", "new", "ok", "--kind", "loss"], "local plugins are off"),
    (["plugins", "new", "mlp", "--kind", "architecture"], "architecture 'mlp' already exists (builtin)"),
    (["plugins", "check", "nosuch"], "no plugin named 'nosuch'"),
    (["plugins", "check", "mlp", "--set", "nosuch=1"], "no such hyperparameter"),
    (["plugins", "check", "mlp", "--dataset", "nosuch"], "unknown dataset 'nosuch'"),
    (["plugins", "check", "mlp", "--kind", "loss"], "unknown loss 'mlp'"),
    (["queue", "add", "--arch", "mlp", "--set", "hidden_units=0"], "hidden_units"),
]


@pytest.mark.parametrize(("args", "fragment"), AUTHORING_CASES, ids=[" ".join(a) for a, _ in AUTHORING_CASES])
def test_plugin_authoring_refusals_leave_no_file(folder: Path, args: list[str], fragment: str) -> None:
    refused(args, folder, fragment)
    assert not (folder / "plugins").exists()  # plugins new creates ./plugins only once it will write into it


# ------------------------------------------------------------------ presets


PRESET_CASES = [
    (["queue", "add", "--db", "{db}", "--preset", "small_data"], "--preset 'small_data' is not a preset"),
    (["queue", "add", "--db", "{db}", "--preset", "small-data,none"], "is not a preset"),
    (["train", "--steps", "1", "--preset", "nosuch"], "choose one of: small-data"),
    (["queue", "add", "--db", "{db}", "--preset", "small-data", "--set", "ema=1.5"], "ema='1.5' is out of range"),
]


@pytest.mark.parametrize(("args", "fragment"), PRESET_CASES, ids=[" ".join(a[-2:]) for a, _ in PRESET_CASES])
def test_a_bad_preset_is_one_line_naming_the_presets_and_nothing_is_stored(queued: Path, args: list[str], fragment: str) -> None:
    refused(_fill(args, db=str(queued)), queued.parent, fragment)
    assert not (queued.parent / "runs").exists()  # train refused before making a run dir


# ------------------------------------------- searches (issue #15): one line, nothing stored

SEARCH = ["--search", "random", "--trials", "3", "--no-build-check"]
SEARCH_CASES = [
    (["--set", "lr_g=normal(1e-4,1e-3)", *SEARCH], "unknown distribution 'normal'"),
    (["--set", "lr_g=loguniform(1e-5,1e-3)", *SEARCH], "did you mean 'log'?"),
    (["--set", "lr_g=log(1e-12,1e-3)", *SEARCH], "the bound 1e-12 is outside the range declared for lr_g"),
    (["--set", "base_filters=int(16,5000)", *SEARCH], "the bound 5000 is outside the range declared for base_filters"),
    (["--set", "steps=uniform(1,9)", *SEARCH], "steps is an integer; sample it with int(1,9)"),
    (["--set", "backend=int(1,9)", *SEARCH], "not a number range"),
    (["--set", "lr_g=log(1e-5,1e-3)", "--search", "random", "--trials", "0"], "--trials 0"),
    (["--set", "lr_g=log(1e-5,1e-3)", "--search", "random", "--trials", "-2"], "at least 1 trial"),
    (["--set", "lr_g=log(1e-5,1e-3)", "--search", "random"], "needs a budget: give --trials N"),
    (["--set", "lr_g=log(1e-5,1e-3)", *SEARCH, "--objective", "fid"], "--objective 'fid'"),
    (["--set", "lr_g=log(1e-5,1e-3)", *SEARCH, "--prune", "hyperband"], "--prune 'hyperband'"),
    (["--set", "lr_g=log(1e-5,1e-3)", "--search", "bayes", "--trials", "3"], "--search 'bayes'"),
    (["--set", "lr_g=log(1e-5,1e-3)"], "a grid cannot expand"),
    (["--set", "lr_g=log(1e-5,1e-3)", "--prune", "asha"], "a grid cannot expand"),
    (["--set", "lr_g=1e-4,2e-4", "--trials", "3"], "--trials is the budget of --search random or tpe"),
    (["--set", "lr_g=log(1e-5,1e-3)", *SEARCH, "--seeds", "0,1"], "--seeds repeats the points of a grid"),
    (["--set", "lr_g=log(1e-5,1e-3)", *SEARCH, "--study", "a/b"], "--study"),
    (["--set", "lr_g=2e-4", *SEARCH], "nothing to search"),
    (["--set", "lr_g=log(1e-5,1e-3)", *SEARCH, "--max-experiments", "2"], "--trials 3 is more than the limit"),
    (["--set", "lr_g=log(1e-5,1e-3)", *SEARCH, "--study", "taken"], "study 'taken' already exists"),
]


@pytest.mark.parametrize(("args", "fragment"), SEARCH_CASES, ids=[" ".join(a)[:80] for a, _ in SEARCH_CASES])
def test_a_bad_search_is_refused_and_stores_nothing(queued: Path, args: list[str], fragment: str) -> None:
    ok(["queue", "add", "--db", str(queued), "--set", "lr_g=log(1e-5,1e-3)", *SEARCH, "--study", "taken"])
    refused(["queue", "add", "--db", str(queued), *args], queued.parent, fragment)


@pytest.mark.parametrize(("toml", "fragment"), [
    ('[search]\nsampler = "tpe"\n[set]\nlr_g = "log(1e-5,1e-3)"\n[grid]\narch = "dcgan"\n', "needs a budget"),
    ('[search]\nsampler = "tpe"\ntrials = "5"\n[grid]\narch = "dcgan"\n', "trials must be an integer"),
    ('[search]\ntrails = 5\n[grid]\narch = "dcgan"\n', "did you mean 'trials'"),
    ('search = 5\n[grid]\narch = "dcgan"\n', "search must be a table"),
    ('[search]\nsampler = "random"\ntrials = 2\n[set]\nlr_g = "log(1e-5,1e-3)"\n[grid]\narch = "dcgan"\n'
     '[[experiments]]\narch = "mlp"\n', "a search samples one block"),
    ('[set]\nlr_g = "lognormal(1,2)"\n[grid]\narch = "dcgan"\n', "unknown distribution 'lognormal'"),
])
def test_a_bad_search_in_a_sweep_file_is_refused(queued: Path, toml: str, fragment: str) -> None:
    (queued.parent / "s.toml").write_text(toml)
    refused(["queue", "add", "--db", str(queued), "-f", str(queued.parent / "s.toml"), "--no-build-check"],
            queued.parent, fragment)


@pytest.mark.parametrize(("args", "fragment"), [
    (["study", "show", "nosuch"], "no study 'nosuch'"),
    (["study", "show", "a/b"], "study name"),
    (["compare", "--study", "nosuch"], "no study 'nosuch'"),
    (["compare", "--study", "x", "1"], "leave out IDS"),
])
def test_study_views_refuse_unknown_studies(queued: Path, args: list[str], fragment: str) -> None:
    refused([*args, "--db", str(queued)], queued.parent, fragment)


# ------------------------------------------------------------- metric selection (train.metrics)


METRIC_CASES = [
    (["queue", "--db", "{db}", "add", "--set", "train.metrics=fd,nosuch"], "unknown metric 'nosuch'"),
    (["queue", "--db", "{db}", "add", "--set", "train.metrics=fd,pr", "--set", "eval_samples=50"],
     "metric 'pr' needs at least 100 samples but eval_samples=50"),
    (["queue", "--db", "{db}", "add", "--set", "metrics=dc", "--set", "eval_samples=10,500"],
     "metric 'dc' needs at least 100 samples"),  # one point of a sweep too few: the whole sweep is refused
    (["queue", "--db", "{db}", "add", "--set", "train.metrics=fd,,kid"], "has an empty item"),
    (["queue", "--db", "{db}", "add", "--set", "train.metrics=kd"], "did you mean 'kid'?"),
    (["train", "--steps", "1", "--set", "train.metrics=pr", "--set", "eval_samples=99"], "needs at least 100 samples"),
]


@pytest.mark.parametrize(("args", "fragment"), METRIC_CASES, ids=[" ".join(a[3:]) for a, _ in METRIC_CASES])
def test_unknown_metrics_and_too_few_samples_are_refused_at_enqueue(queued: Path, args: list[str], fragment: str) -> None:
    refused(_fill(args, db=str(queued)), queued.parent, fragment)
    with Store.open(str(queued)) as store:
        assert len(store.list_experiments()) == 3  # the three experiments make_db queued, nothing more
