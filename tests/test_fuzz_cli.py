"""Every command, driven with bad values: one ``Error:`` line, no traceback, nothing changed.

A table of hostile and malformed values per command (huge and negative
integers, NaN and infinity, markup, escape sequences, path traversal, broken
database URLs, oversized sweeps), plus generated text through hypothesis.
Each case runs in-process through click's runner against a real SQLite file
holding two queued experiments, and asserts what a user would see: a
non-zero exit, exactly one ``Error:`` line, no traceback, the database's rows
unchanged, and no file created next to it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from _store_db import sqlite_snapshot
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganlab.cli import cli
from ganlab.registry import reset_cache
from ganlab.store import Queue

HUGE = "100000000000000000000"
HUGE_NEG = "-100000000000000000000"
BAD_INTS = (HUGE, HUGE_NEG, "2147483648", "nan", "1.5", "", "x")
BAD_FLOATS = ("nan", "inf", "-inf", "0", "-1", "1e400", "abc", "")
ESC = "\x1b[31m"
HOSTILE_NAMES = ("x/../../../../escaped_run", "../x", "a/b", "..", "[/]", f"{ESC}red", "a" * 5000, "x\x00y",
                 "/abs/path", "line\nbreak")
BAD_DB_URLS = ("postgresql+psycopg://u:s3cret@h:abc/db", " ", "sqlite:///:memory:", "sqlite://", "x" * 5000,
               "postgresql+psycopg://u:s3cret@[::1/db", "nosuchdialect://x/y", "sqlite:///nosuchdir/q.db")


def _cases() -> Iterator[tuple[str, list[str]]]:
    """(id, argv after ``ganlab``) of inputs every one of which must be refused."""
    add = ["queue", "add", "--steps", "5"]
    for v in BAD_INTS + ("0", "-3"):
        yield f"add-steps-{v!r}", ["queue", "add", "--steps", v]
        yield f"add-batch-{v!r}", [*add, "--batch-size", v]
        yield f"add-set-steps-{v!r}", ["queue", "add", "--set", f"steps={v}"]
    for v in (HUGE, HUGE_NEG, "2147483648", "nan", "x"):
        yield f"add-priority-{v!r}", [*add, "--priority", v]
        yield f"add-seed-{v!r}", [*add, "--seed", v]
        yield f"add-seeds-{v!r}", [*add, "--seeds", f"0,{v}"]
    for v in HOSTILE_NAMES[:4] + ("a" * 5000, "x\x00y", "line\nbreak", f"{ESC}red"):
        yield f"add-name-{v[:12]!r}", [*add, "--name", v]
    for v in (f"{ESC}x", "a b", "", "t" * 500, "a,"):
        yield f"add-tag-{v[:12]!r}", [*add, "--tag", v]
    for v in ("nan", "inf", "-1", "1e400", "x"):
        yield f"add-lr-{v!r}", [*add, "--set", f"lr_g={v}"]
    for v in ("[/]", "=1", "nosuch=1", "train.=1", "arch.x.y=1", f"{ESC}=1", "lr_g"):
        yield f"add-set-{v!r}", [*add, "--set", v]
    for opt in ("--arch", "--dataset", "--loss"):
        for v in ("[/]", "nosuch", "", f"{ESC}x", ",", "../plugins/x"):
            yield f"add{opt}-{v!r}", [*add, opt, v]
    for v in ("[/]", "nosuch", "", f"{ESC}x", ",", "../plugins/x", "none,"):
        yield f"add-augment-{v!r}", [*add, "--augment", v]
    for v in ("policy=blur", "policy=+", "policy=color+", "augment.policy=x", "augment.cutout=nan", "augment.cutout=2"):
        yield f"add-augment-set-{v!r}", [*add, "--augment", "diffaugment", "--set", v]
    for v in ("nan", "inf", "-0.5", "1.5", HUGE, "x"):
        yield f"add-augment-p-{v!r}", [*add, "--augment", "ada", "--set", f"augment.p_init={v}"]
    yield "train-augment-list", ["train", "--steps", "1", "--augment", "ada,diffaugment"]
    for v in ("nosuch", "", "[/]", f"{ESC}x", "small-data,none", "../plugins/x", "SMALL-DATA", "a" * 5000):
        yield f"add-preset-{v[:12]!r}", [*add, "--preset", v]
        yield f"train-preset-{v[:12]!r}", ["train", "--steps", "1", "--preset", v]
    yield "add-preset-bad-override", [*add, "--preset", "small-data", "--set", "ema=2"]
    for v in ("nosuch", ",", "fd,,kid", f"{ESC}x", "[/]", "fd," + "x" * 5000, ",".join(["fd"] * 3 + [f"m{i}" for i in range(20)])):
        yield f"add-metrics-{v[:12]!r}", [*add, "--set", f"train.metrics={v}"]
    for v in ("10", "99"):
        yield f"add-metrics-samples-{v}", [*add, "--set", "train.metrics=fd,pr,dc", "--set", f"eval_samples={v}"]
    big = ",".join(str(i) for i in range(1, 401))
    yield "add-sweep-too-big", ["queue", "add", "--steps", "5", "--set", f"log_every={big}", "--seeds", big]
    yield "add-sweep-too-big-dry", ["queue", "add", "--steps", "5", "--set", f"log_every={big}", "--seeds", big, "--dry-run"]
    yield "add-file-missing", [*add[:2], "-f", "nosuch.toml"]
    search = [*add, "--search", "tpe", "--trials", "2"]
    for v in ("normal(1,2)", "log(0,1)", "uniform(2,1)", "int(1.5,3)", "log(1e-12,1)", "uniform(nan,1)",
              "int(1,2,exp)", "uniform(1e400,2)", "log(1e-5,1e-3", f"uniform({ESC}1,2)"):
        yield f"add-search-set-{v!r}", [*search, "--set", f"lr_g={v}"]
    for opt, v in (("--trials", "0"), ("--trials", HUGE), ("--trials", "nan"), ("--search", "x"), ("--prune", "x"),
                   ("--objective", "x"), ("--objective", f"{ESC}fd"), ("--study", "../x"), ("--study", "a" * 5000)):
        yield f"add-search{opt}-{v[:12]!r}", [*add, "--set", "lr_g=log(1e-5,1e-3)", "--search", "random", opt, v] + (
            ["--trials", "2"] if opt != "--trials" else [])
    yield "add-grid-distribution", [*add, "--set", "lr_g=log(1e-5,1e-3)", "--prune", "asha"]
    for v in ("[/]", f"{ESC}x", "", "nosuch", "a" * 5000, "x\x00y", "../x"):
        yield f"study-show-{v[:12]!r}", ["study", "show", v]
        yield f"compare-study-{v[:12]!r}", ["compare", "--study", v]
    for v in ("1", "3", "0", "-2", "x", HUGE):
        yield f"add-pack-{v!r}", [*add, "--backend", "jax", "--seeds", "0,1", "--pack", v]
    yield "add-pack-tensorflow", [*add, "--seeds", "0,1", "--pack", "2"]
    yield "add-pack-no-seeds", [*add, "--backend", "jax", "--pack", "2"]
    yield "add-pack-other-axis", [*add, "--backend", "jax", "--seeds", "0,1", "--pack", "2", "--set", "lr_g=1e-4,2e-4"]
    for ident in BAD_INTS + ("0", "-1", "99999"):
        yield f"show-{ident!r}", ["queue", "show", ident]
        yield f"cancel-{ident!r}", ["queue", "cancel", ident]
        yield f"retry-{ident!r}", ["queue", "retry", ident]
        yield f"extend-{ident!r}", ["queue", "extend", ident, "--steps", "10"]
        yield f"rm-{ident!r}", ["queue", "rm", ident]
        yield f"priority-id-{ident!r}", ["queue", "priority", ident, "1"]
        yield f"logs-{ident!r}", ["logs", ident]
        yield f"sample-{ident!r}", ["sample", ident]
        yield f"compare-{ident!r}", ["compare", ident]
        yield f"tensorboard-id-{ident!r}", ["tensorboard", "--id", ident]
    for v in (HUGE, "--", HUGE_NEG, "nan", "2147483648"):
        yield f"priority-value-{v!r}", ["queue", "priority", "1", "--", v]
    # Experiment 1 succeeded with 5 steps, 2 is queued: a budget not above 5, a queued one (alone or with 1).
    for v in BAD_INTS + ("0", "-3", "5", "4"):
        yield f"extend-steps-{v!r}", ["queue", "extend", "1", "--steps", v]
    yield "extend-queued", ["queue", "extend", "2", "--steps", "10"]
    yield "extend-one-queued", ["queue", "extend", "1", "2", "--steps", "10"]
    yield "extend-no-steps", ["queue", "extend", "1"]
    for v in (HUGE, "-1", "nan"):
        yield f"list-limit-{v!r}", ["queue", "list", "--limit", v]
    for v in ("0", "-5", HUGE, "x"):
        yield f"logs-n-{v!r}", ["logs", "1", "-n", v]
    for opt in ("--lease", "--poll"):
        for v in BAD_FLOATS:
            yield f"worker{opt}-{v!r}", ["worker", "--until-empty", opt, v]
    for v in ("0", "-1", HUGE, "nan"):
        yield f"worker-max-attempts-{v!r}", ["worker", "--until-empty", "--max-attempts", v]
        yield f"worker-max-experiments-{v!r}", ["worker", "--until-empty", "--max-experiments", v]
    for v in ("nan", "-1", "x", "0,0", "[/]", HUGE):
        yield f"worker-gpus-{v!r}", ["worker", "--until-empty", "--gpus", v]
    for v in ("0", "65", "x", "", HUGE, "2", "auto"):
        yield f"worker-per-gpu-{v!r}", ["worker", "--until-empty", "--gpus", "none", "--per-gpu", v]
    for v in (HUGE, "0", "-1", "nan"):
        yield f"demo-steps-{v!r}", ["demo", "--steps", v]
        yield f"demo-batch-{v!r}", ["demo", "--batch-size", v]
        yield f"train-steps-{v!r}", ["train", "--steps", v]
    for v in ("[/]", "nosuch", ""):
        yield f"demo-losses-{v!r}", ["demo", "--losses", v, "--steps", "1"]
    for v in ("../../x", "x/../../y", "..", "a" * 5000, "x\x00y"):
        yield f"train-name-{v[:12]!r}", ["train", "--steps", "1", "--name", v]
    yield "train-resume-missing", ["train", "--resume", "--run-dir", "nosuch-run"]
    yield "train-config-missing", ["train", "--config-file", "nosuch.json"]
    for v in ("[/]", f"{ESC}x", "", "nosuch"):
        yield f"plugins-show-{v!r}", ["plugins", "show", v]
        yield f"compare-sort-{v!r}", ["compare", "--sort", v]
    for v in ("[/]", "nosuch.key", "all,loss"):
        yield f"compare-columns-{v!r}", ["compare", "--columns", v]
    for v in ("[/]", f"{ESC}x", "", "nosuch", "../plugins/x"):
        yield f"settings-loss-{v!r}", ["settings", "--loss", v]
    for v in ("0", "-1", HUGE, "nan"):
        yield f"sample-n-{v!r}", ["sample", "1", "-n", v]
        yield f"tensorboard-port-{v!r}", ["tensorboard", "--port", v]
    yield "plugins-dir-missing", ["--plugins-dir", "nosuch-folder", "plugins"]
    for v in ("[/]", f"{ESC}x", "", "../plugins/x", "Bad", "a" * 5000, "x\x00y", "fine"):  # "fine": local plugins off
        yield f"plugins-new-{v[:12]!r}", ["plugins", "new", v, "--kind", "architecture"]
    for v in ("[/]", "", "metric", f"{ESC}x"):
        yield f"plugins-new-kind-{v!r}", ["plugins", "new", "fine", "--kind", v]
    for v in ("[/]", f"{ESC}x", "", "nosuch", "../plugins/x"):
        yield f"plugins-check-{v!r}", ["plugins", "check", v]
    for extra in (["--set", "nosuch=1"], ["--set", "[/]"], ["--dataset", "nosuch"], ["--kind", "loss"],
                  ["--loss", f"{ESC}x"], ["--backend", "x"]):
        yield f"plugins-check-mlp-{extra!r}", ["plugins", "check", "mlp", *extra]
    for v in ("augment.policy=nosuch", "augment.policy=", "augment.target=2", "augment.nosuch=1"):
        yield f"plugins-check-aug-{v!r}", ["plugins", "check", "ada" if "target" in v else "diffaugment", "--set", v]
    submit = ["slurm", "submit", "--runs-dir", "runs", "--single-node", "--time", "10"]
    for v in ("0", "-1", HUGE, "nan", ""):
        yield f"slurm-workers-{v!r}", [*submit, "--workers", v]
    for v in ("", "x", "1:2:3:4", "0", "-5", "nan", "1-", f"{ESC}1"):
        yield f"slurm-time-{v!r}", [*submit[:-1], v, "--workers", "2"]
    for v in ("[/]", "=x", "array=0-9", "signal=B:USR2@5", "x=a\nb", "time=1"):
        yield f"slurm-sbatch-{v!r}", [*submit, "--workers", "2", "--sbatch", v]
    for opt, v in (("--partition", "a\n#SBATCH --x"), ("--account", "[/]"), ("--name", "a b"), ("--warn", "0"),
                   ("--warn", "600"), ("--gpus-per-worker", "-1"), ("--lease", "nan")):
        yield f"slurm-{opt}-{v!r}", [*submit, "--workers", "2", opt, v]
    yield "slurm-local-sqlite", ["slurm", "submit", "--runs-dir", "runs", "--time", "10", "--workers", "2"]
    for v in ("x", "-1", "1_2", HUGE, f"{ESC}1"):
        yield f"slurm-status-job-{v!r}", ["slurm", "status", "--job", v]
        yield f"slurm-cancel-job-{v!r}", ["slurm", "cancel", "--job", v]
    # ganlab report: unknown ids, nothing selected, an -o it cannot write, unknown columns/metrics; no file left.
    for ident in ("0", "-1", "99999", HUGE, "x"):
        yield f"report-{ident!r}", ["report", ident, "-o", "r.html"]
    for argv in (["--tag", "nope"], ["--status", "diverged"], ["-o", "nosuchdir/r.html"], ["-o", "."],
                 ["-o", "q.db/r.html"], ["--sort", "nosuch"], ["--columns", "nosuch.key"], ["--objective", "nosuch"],
                 ["--status", "nosuch"]):
        yield f"report-{'-'.join(argv)[:30]!r}", ["report", *argv]
    for url in BAD_DB_URLS:
        yield f"db-{url[:24]!r}-report", ["report", "--db", url, "-o", "r.html"]
    for url in BAD_DB_URLS:
        for cmd in (["queue", "list"], ["queue", "show", "1"], ["status"], ["compare"], ["db", "upgrade"], ["study", "list"],
                    ["queue", "add", "--steps", "5"], ["worker", "--until-empty"]):
            yield f"db-{url[:24]!r}-{'-'.join(cmd)}", [cmd[0], "--db", url, *cmd[1:]] if cmd[0] in ("queue", "db") \
                else [*cmd, "--db", url]


CASES = list(_cases())
_DB_FILES = ("q.db", "q.db-wal", "q.db-shm")


class World:
    """A folder holding ``q.db`` with two experiments (one succeeded); runs ``ganlab`` against it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "q.db"
        self.env = {"GANLAB_DB": str(self.db), "GANLAB_PLUGINS_DIR": ""}
        result = CliRunner().invoke(cli, ["queue", "add", "--steps", "5", "--seeds", "0,1", "--tag", "t"], env=self.env)
        assert result.exit_code == 0, result.output
        with Queue.open(str(self.db)) as queue:  # one finished run, so compare has rows to sort and show
            claim = queue.claim("fuzz-worker", host="here", pid=1)
            assert claim is not None
            queue.finish(claim.id, claim.token, "succeeded", metrics={"fd": 3.5, "kid": 0.1}, step=5)
        self.snapshot = sqlite_snapshot(self.db)
        self.files = self.listing()
        self.pristine = {p.name: p.read_bytes() for p in root.iterdir() if p.name in _DB_FILES}

    def run(self, *argv: str) -> Result:
        self.restore()
        return CliRunner().invoke(cli, list(argv), env=self.env)

    def restore(self) -> None:
        """Put back the database and remove strays, so one failing case cannot fail the ones after it."""
        for path in self.root.iterdir():
            if path.name in _DB_FILES and path.name not in self.pristine:
                path.unlink()
        for name, data in self.pristine.items():
            (self.root / name).write_bytes(data)
        for stray in sorted(set(self.listing()) - self.files, key=len, reverse=True):
            target = self.root / stray
            shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()

    def listing(self) -> set[str]:
        return {str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.name not in _DB_FILES}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("fuzz")
    old = os.getcwd()
    os.chdir(root)  # no ./plugins here: only built-in plugins load
    reset_cache()
    try:
        yield World(root)
    finally:
        os.chdir(old)
        reset_cache()


def assert_refused(world: World, argv: list[str], result: Result) -> None:
    """The invariant: non-zero exit, one ``Error:`` line, no traceback, nothing changed."""
    shown = f"ganlab {' '.join(map(repr, argv))}\n{result.output[-2000:]}"
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), f"traceback ({type(exc).__name__}: {exc}) for {shown}"
    assert "Traceback" not in result.output, shown
    assert result.exit_code != 0, f"accepted: {shown}"
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, f"expected one Error: line: {shown}"
    assert sqlite_snapshot(world.db) == world.snapshot, f"database changed by {shown}"
    assert world.listing() == world.files, f"files created by {shown}: {world.listing() - world.files}"


@pytest.mark.parametrize("argv", [argv for _, argv in CASES], ids=[case_id for case_id, _ in CASES])
def test_bad_input_is_refused_cleanly(world: World, argv: list[str]) -> None:
    assert_refused(world, argv, world.run(*argv))


def test_every_command_is_fuzzed() -> None:
    """A new command joins the table: the fuzz must reach every leaf of the CLI."""
    import click

    def leaves(group: click.Group, prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from leaves(command, (*prefix, name))
            else:
                yield (*prefix, name)

    fuzzed = {tuple(w for w in argv if not w.startswith("-"))[:2] for _, argv in CASES}
    fuzzed |= {(a[0],) for a in fuzzed}
    missing = [" ".join(leaf) for leaf in leaves(cli, ()) if leaf not in fuzzed and leaf[:1] not in fuzzed]
    assert not missing, f"commands without fuzz cases: {missing}"


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=_text)
def test_generated_names_never_break_queue_add(world: World, name: str) -> None:
    """Any name: refused with one line, or (dry run) accepted and printed without raw control characters."""
    argv = ["queue", "add", "--steps", "5", "--dry-run", "--name", name]
    result = world.run(*argv)
    if result.exit_code != 0:
        assert_refused(world, argv, result)
        return
    assert result.exception is None
    assert not any(ord(c) < 32 and c not in "\n" for c in result.output), repr(result.output)
    assert sqlite_snapshot(world.db) == world.snapshot


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_text, which=st.sampled_from(["set", "show", "db", "tag", "seeds"]))
def test_generated_values_never_raise(world: World, value: str, which: str) -> None:
    argv = {
        "set": ["queue", "add", "--steps", "5", "--dry-run", "--set", value],
        "show": ["queue", "show", value],
        "db": ["queue", "--db", value, "list"],
        "tag": ["queue", "add", "--steps", "5", "--dry-run", "--tag", value],
        "seeds": ["queue", "add", "--steps", "5", "--dry-run", "--seeds", value],
    }[which]
    result = world.run(*argv)
    if result.exit_code != 0:
        assert_refused(world, argv, result)
    else:
        assert result.exception is None
        assert sqlite_snapshot(world.db) == world.snapshot
