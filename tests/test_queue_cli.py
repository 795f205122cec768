"""``ganlab queue`` and ``ganlab db`` through click's CliRunner, against real SQLite files.

Every bad input must give one ``Error: ...`` line and leave the database
exactly as it was (compared row by row with an SQL dump).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _store_db import sqlite_snapshot
from click.testing import CliRunner, Result

from ganlab.cli import cli
from ganlab.config import ExperimentConfig
from ganlab.store import SCHEMA_VERSION, Queue

PLUGIN = '''
import os
import ganlab
from ganlab import ArchitectureSpec, DataInfo, DatasetSpec, DatasetUnavailable, LossSpec, Param


def _never(*args, **kwargs):
    raise AssertionError("queueing must not build networks or load data")


@ganlab.hookimpl
def register_architectures(register):
    register(ArchitectureSpec("toy", "test net", _never, _never, params=(
        Param("width", int, 32, "channels", low=4, high=512),
        Param("act", str, "relu", "activation", choices=("relu", "tanh")),
    )))
    register(ArchitectureSpec("toycond", "conditional test net", _never, _never, conditional=True))


def _probe_dir(params):
    if not os.path.isdir(params["path"]):
        raise DatasetUnavailable(f"dataset 'toydir': folder {params['path']!r} does not exist; set path to a folder")
    return DataInfo((8, 8, 3), None, 5)


@ganlab.hookimpl
def register_datasets(register):
    register(DatasetSpec("toyset", "labelled", _never, describe=lambda p: DataInfo((8, 8, 1), 10, 100)))
    register(DatasetSpec("toyplain", "unlabelled", _never, describe=lambda p: DataInfo((8, 8, 1), None, 100)))
    register(DatasetSpec("toydir", "a folder", _never, params=(Param("path", str, None, "folder", required=True),),
                         describe=_probe_dir))


@ganlab.hookimpl
def register_losses(register):
    register(LossSpec("toyloss", "test loss", _never, _never, params=(Param("margin", float, 1.0, "m", low=0.0, high=10.0),)))
    register(LossSpec("toyloss2", "another", _never, _never))
'''

TOY = ["--arch", "toy", "--dataset", "toyset", "--loss", "toyloss"]


class Env:
    """A plugins folder and a database path in tmp_path, and a runner for ``ganlab queue``."""

    def __init__(self, tmp_path: Path) -> None:
        self.plugins = tmp_path / "plugins"
        self.plugins.mkdir()
        (self.plugins / "toyplugins.py").write_text(PLUGIN)
        self.db = tmp_path / "q.db"
        self.tmp = tmp_path

    def run(self, *args: str, db: Path | None = None, group: str = "queue") -> Result:
        # The toy networks cannot be built (they would only say so): the build check has its own tests.
        skip = ["--no-build-check"] if group == "queue" and args[:1] == ("add",) else []
        return CliRunner().invoke(cli, ["--plugins-dir", str(self.plugins), group, "--db", str(db or self.db),
                                        *args, *skip])

    def ok(self, *args: str, **kw: object) -> Result:
        result = self.run(*args, **kw)  # type: ignore[arg-type]
        assert result.exit_code == 0, result.output + repr(result.exception)
        return result

    def rows(self) -> list[tuple]:
        conn = sqlite3.connect(self.db)
        try:
            return conn.execute("SELECT id, name, status, priority, config FROM experiments ORDER BY id").fetchall()
        finally:
            conn.close()

    def config(self, exp_id: int) -> dict:
        return json.loads(next(r[4] for r in self.rows() if r[0] == exp_id))


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def one_line_error(result: Result, *fragments: str) -> str:
    """The command failed with exactly one ``Error:`` line (no traceback) containing every fragment."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # a ClickException, not a crash
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def unchanged(env: Env, call: Callable[[], Result], *fragments: str) -> str:
    before = sqlite_snapshot(env.db)
    line = one_line_error(call(), *fragments)
    assert sqlite_snapshot(env.db) == before
    return line


# --------------------------------------------------------------------- add


def test_add_prints_the_new_id_and_stores_the_resolved_config(env: Env) -> None:
    result = env.ok("add", *TOY, "--steps", "50", "--batch-size", "16", "--seed", "3", "--set", "width=64",
                    "--set", "loss.margin=2.5", "--backend", "jax", "--precision", "mixed_bfloat16",
                    "--name", "first", "--priority", "4", "--tag", "a", "--tag", "b,c")
    assert result.stdout.splitlines()[0] == "queued 1  first"
    config = env.config(1)
    assert config["architecture"] == {"name": "toy", "params": {"width": 64, "act": "relu"}}
    assert config["loss"] == {"name": "toyloss", "params": {"margin": 2.5}}
    train = config["train"]
    assert (train["steps"], train["batch_size"], train["seed"], train["backend"], train["precision"]) == (
        50, 16, 3, "jax", "mixed_bfloat16")
    assert "lr_g" in train  # every default filled in: the row alone reproduces the run
    assert env.rows()[0][1:4] == ("first", "queued", 4)
    with Queue.open(str(env.db)) as q:
        assert q.get(1).tags == ("a", "b", "c") and q.get(1).experiment_config() == ExperimentConfig.from_dict(config)
    assert env.ok("add", *TOY, "--seed", "4", "-q").stdout == "2\n"


def test_add_defaults_to_the_builtin_dcgan_digits_non_saturating(env: Env) -> None:
    env.ok("add")
    config = env.config(1)
    assert (config["architecture"]["name"], config["dataset"]["name"], config["loss"]["name"]) == (
        "dcgan", "digits", "non-saturating")
    assert env.rows()[0][1] == "dcgan-digits-non-saturating"


def test_comma_lists_expand_to_the_cartesian_product(env: Env) -> None:
    result = env.ok("add", "--arch", "toy", "--dataset", "toyset", "--loss", "toyloss,toyloss2",
                    "--set", "width=16,32", "--seeds", "0,1")
    assert "8 experiment(s) queued" in result.stdout
    names = [r[1] for r in env.rows()]
    assert len(set(names)) == 8
    assert names[0] == "toy-toyset-toyloss-width=16-seed=0" and names[-1] == "toy-toyset-toyloss2-width=32-seed=1"
    combos = {(env.config(i)["loss"]["name"], env.config(i)["architecture"]["params"]["width"], env.config(i)["train"]["seed"])
              for i in range(1, 9)}
    assert len(combos) == 8
    env.ok("add", "--arch", "toy", "--dataset", "toyset", "--loss", "toyloss", "--set", "width=8,12", "--name", "wide")
    assert [r[1] for r in env.rows()[8:]] == ["wide-width=8", "wide-width=12"]


def test_dry_run_prints_the_plan_and_stores_nothing(env: Env) -> None:
    result = env.ok("add", *TOY, "--set", "width=16,32", "--dry-run")
    assert "toy-toyset-toyloss-width=16" in result.stdout and "would queue 2 experiment(s)" in result.stdout
    assert not env.db.exists()
    env.ok("add", *TOY, "--set", "width=16")
    before = sqlite_snapshot(env.db)
    result = env.ok("add", *TOY, "--set", "width=16,32", "--dry-run")
    assert "skip: same config as experiment 1 (queued)" in result.stdout
    assert "would queue 1 experiment(s) (1 skipped as duplicates)" in result.stdout
    assert sqlite_snapshot(env.db) == before


def test_duplicates_are_skipped_with_a_note_unless_allowed(env: Env) -> None:
    env.ok("add", *TOY)
    result = env.ok("add", *TOY, "--set", "width=32,64")  # width=32 is the default: same config as #1
    assert "1 experiment(s) queued" in result.stdout and "1 skipped as duplicates" in result.stdout
    assert "skipped toy-toyset-toyloss-width=32: same config as experiment 1 (queued)" in result.stderr
    assert len(env.rows()) == 2
    env.ok("add", *TOY, "--allow-duplicates")
    assert len(env.rows()) == 3


def test_sweep_file_grid_and_explicit_experiments(env: Env) -> None:
    sweep = env.tmp / "sweep.toml"
    sweep.write_text('''
name = "study"
tags = ["paper"]
seeds = [0, 1]

[set]
steps = 200

[grid]
arch = "toy"
dataset = "toyset"
loss = ["toyloss", "toyloss2"]
set = { width = [16, 32], act = "tanh" }

[[experiments]]
name = "baseline"
arch = "toy"
dataset = "toyplain"
loss = "toyloss"
priority = 7
seeds = 5
tags = ["base"]
set = { loss.margin = 0.5 }
''')
    result = env.ok("add", "-f", str(sweep), "--tag", "cli", "--set", "batch_size=8")
    assert "9 experiment(s) queued" in result.stdout
    rows = env.rows()
    assert [r[1] for r in rows][:2] == ["study-toyloss-width=16-seed=0", "study-toyloss-width=16-seed=1"]
    assert rows[-1][1:4] == ("baseline", "queued", 7)
    last = env.config(9)
    assert (last["loss"]["params"]["margin"], last["train"]["seed"], last["train"]["steps"], last["train"]["batch_size"]) == (
        0.5, 5, 200, 8)
    assert all(env.config(i)["architecture"]["params"]["act"] == "tanh" for i in range(1, 9))
    with Queue.open(str(env.db)) as q:
        assert q.get(1).tags == ("cli", "paper") and q.get(9).tags == ("base", "cli", "paper")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("[grid]\narch = 'toy'\nlos = 'x'\n", "unknown key 'los'; did you mean 'loss'?"),
        ("[grid\n", "is not valid TOML"),
        ("name = 'x'\n", "has no [grid] and no [[experiments]]"),
        ("[grid]\narch = 3\n", "arch must be a string or a list of strings"),
        ("[grid]\narch = 'toy'\ndataset = 'toyset'\nloss = 'toyloss'\nset = { width = [16, 4000] }\n",
         "width=4000 is out of range"),
    ],
)
def test_sweep_file_errors(env: Env, content: str, fragment: str) -> None:
    env.ok("add", *TOY)
    sweep = env.tmp / "bad.toml"
    sweep.write_text(content)
    unchanged(env, lambda: env.run("add", "-f", str(sweep)), fragment)


def test_sweep_file_missing_and_plugin_options_with_file(env: Env) -> None:
    env.ok("add", *TOY)
    unchanged(env, lambda: env.run("add", "-f", str(env.tmp / "none.toml")), "does not exist")
    (env.tmp / "s.toml").write_text("[grid]\narch = 'toy'\n")
    unchanged(env, lambda: env.run("add", "-f", str(env.tmp / "s.toml"), "--arch", "toy"), "--arch cannot be combined with -f")


# ---------------------------------------------------------- validation


BAD_ADDS = [
    (["--arch", "tyo", "--dataset", "toyset", "--loss", "toyloss"], ["unknown architecture 'tyo'", "did you mean 'toy'?"]),
    (["--arch", "toy", "--dataset", "toyset", "--loss", "toylos"], ["unknown loss 'toylos'", "did you mean 'toyloss'"]),
    ([*TOY, "--set", "widht=3"], ["--set widht: no such hyperparameter", "did you mean 'width'?"]),
    ([*TOY, "--set", "width=wide"], ["width='wide' is not a valid int"]),
    ([*TOY, "--set", "width=2"], ["width='2' is out of range; allowed [4, 512]"]),
    ([*TOY, "--set", "act=gelu"], ["act='gelu' is not allowed; use one of relu, tanh"]),
    ([*TOY, "--set", "nope.width=3"], ["unknown section 'nope'"]),
    (["--arch", "toy", "--dataset", "toydir", "--loss", "toyloss", "--set", "path=/no/such/dir"],
     ["folder '/no/such/dir' does not exist"]),
    (["--arch", "toycond", "--dataset", "toyplain", "--loss", "toyloss"], ["class-conditional", "has no labels"]),
    ([*TOY, "--steps", "0"], ["steps=0 is out of range"]),
    ([*TOY, "--batch-size", "-1"], ["batch_size=-1 is out of range"]),
    ([*TOY, "--set", "width"], ["--set 'width' is not key=value"]),
    ([*TOY, "--set", "=3"], ["--set '=3' is not key=value"]),
    ([*TOY, "--set", "width=8", "--set", "width=16"], ["--set width is given twice"]),
    ([*TOY, "--steps", "5", "--set", "steps=6"], ["steps is given twice, by --steps 5 and by --set steps=6"]),
    ([*TOY, "--seed", "1", "--seeds", "2,3"], ["the seed is given twice"]),
    ([*TOY, "--seeds", "0,x"], ["--seeds '0,x': 'x' is not an integer"]),
    ([*TOY, "--set", "width=16,"], ["has an empty item"]),
    ([*TOY, "--tag", "a b"], ["tag 'a b' is not allowed"]),
    # One bad point refuses the whole sweep, naming the point.
    (["--arch", "toy", "--dataset", "toyset", "--loss", "toyloss,toyloss2", "--set", "margin=3"],
     ["--set margin: no such hyperparameter", "in sweep point", "loss=toyloss2"]),
    (["--arch", "toy", "--dataset", "toyset", "--loss", "toyloss", "--set", "width=16,32,9999"],
     ["width='9999' is out of range", "in sweep point"]),
]


@pytest.mark.parametrize(("args", "fragments"), BAD_ADDS, ids=[" ".join(a[6:] or a[:2]) for a, _ in BAD_ADDS])
def test_add_refuses_bad_input_and_stores_nothing(env: Env, args: list[str], fragments: list[str]) -> None:
    env.ok("add", *TOY, "--name", "existing")
    unchanged(env, lambda: env.run("add", *args), *fragments)


def test_bad_add_on_a_fresh_path_does_not_create_the_database(env: Env) -> None:
    one_line_error(env.run("add", *TOY, "--set", "width=1"), "out of range")
    assert not env.db.exists()


def test_click_level_errors_store_nothing(env: Env) -> None:
    env.ok("add", *TOY)
    before = sqlite_snapshot(env.db)
    result = env.run("add", *TOY, "--backend", "theano")
    assert result.exit_code == 2 and "Invalid value for '--backend'" in result.stderr
    result = env.run("add", *TOY, "--steps", "many")
    assert result.exit_code == 2 and "'many' is not a valid integer" in result.stderr
    assert sqlite_snapshot(env.db) == before


# ---------------------------------------------------------- list, show


def _claim_and_finish(env: Env, status: str | None, **finish: object) -> int:
    with Queue.open(str(env.db)) as q:
        claim = q.claim("w1", host="box", pid=77)
        assert claim is not None
        q.renew(claim.id, claim.token, step=30, losses={"d": 0.5, "g": 1.5})
        q.set_run_dir(claim.id, claim.token, f"/runs/{claim.id}", host="box")
        if status is not None:
            q.finish(claim.id, claim.token, status, **finish)  # type: ignore[arg-type]
        return claim.id


def test_list_table_filters_limit_and_json(env: Env) -> None:
    env.ok("add", *TOY, "--set", "width=8,16,24", "--tag", "sweep", "--steps", "100")
    env.ok("add", "--arch", "toycond", "--dataset", "toyset", "--loss", "toyloss")
    _claim_and_finish(env, None)
    out = env.ok("list").stdout
    assert "running" in out and "30/100 (30%)" in out and "toycond" in out
    for column in ("id", "name", "arch", "dataset", "loss", "status", "progress", "age"):
        assert column in out.splitlines()[1]
    rows = json.loads(env.ok("list", "--json").stdout)
    assert [r["id"] for r in rows] == [1, 2, 3, 4] and rows[0]["status"] == "running" and rows[0]["tags"] == ["sweep"]
    assert [r["id"] for r in json.loads(env.ok("list", "--json", "--status", "queued", "--tag", "sweep").stdout)] == [2, 3]
    assert [r["id"] for r in json.loads(env.ok("list", "--json", "--arch", "toycond").stdout)] == [4]
    limited = env.ok("list", "--json", "--limit", "2")
    assert [r["id"] for r in json.loads(limited.stdout)] == [3, 4] and "showing the newest 2" in limited.stderr
    assert json.loads(env.ok("list", "--json", "--status", "failed").stdout) == []


def test_show_text_and_json(env: Env) -> None:
    env.ok("add", *TOY, "--tag", "t1", "--steps", "100")
    exp_id = _claim_and_finish(env, "failed", error="\n".join(f"line {i}" for i in range(30)), metrics={"fid": 40.25})
    out = env.ok("show", str(exp_id)).stdout
    assert out.startswith("experiment 1  toy-toyset-toyloss")
    for fragment in ("failed (attempt 1)", "toy / toyset / toyloss", "t1", "30/100 (30%)", "box:/runs/1",
                     "fid=40.25", "arch.width = 32", "train.steps = 100", "error (last 20 of 30 lines)", "line 29"):
        assert fragment in out, fragment
    assert "line 9\n" not in out
    record = json.loads(env.ok("show", str(exp_id), "--json").stdout)
    assert record["status"] == "failed" and record["run_dir"] == "/runs/1" and record["config"]["train"]["steps"] == 100
    assert record["error"].endswith("line 29") and record["tags"] == ["t1"] and record["last_losses"] == {"d": 0.5, "g": 1.5}


# ----------------------------------------------------------- state changes


def test_cancel_queued_running_and_all_queued(env: Env) -> None:
    env.ok("add", *TOY, "--set", "width=8,16,24,40")
    running = _claim_and_finish(env, None)
    out = env.ok("cancel", "2", str(running)).stdout
    assert "cancelled 2" in out and f"cancel requested {running}" in out
    assert "running (cancel requested)" in env.ok("list").stdout
    assert "cancelled 2 queued experiment(s): 3 4" in env.ok("cancel", "--all-queued").stdout
    assert [r[2] for r in env.rows()] == ["running", "cancelled", "cancelled", "cancelled"]


def test_retry_requeues_keeping_the_run_dir(env: Env) -> None:
    env.ok("add", *TOY)
    exp_id = _claim_and_finish(env, "diverged", error="NaN")
    assert env.ok("retry", str(exp_id)).stdout == f"requeued {exp_id} (resumes from the last checkpoint in /runs/1)\n"
    record = json.loads(env.ok("show", str(exp_id), "--json").stdout)
    assert (record["status"], record["run_dir"], record["error"]) == ("queued", "/runs/1", None)


def test_rm_and_priority(env: Env) -> None:
    env.ok("add", *TOY, "--set", "width=8,16,24")
    assert env.ok("rm", "1", "3").stdout == "removed 1 3\n"
    assert [r[0] for r in env.rows()] == [2]
    assert env.ok("priority", "2", "--", "-5").stdout == "experiment 2 priority -5\n"
    assert env.rows()[0][3] == -5


STATE_ERRORS = [
    (["show", "99"], ["no experiment 99 in", "ganlab queue list"]),
    (["cancel", "1", "99"], ["no experiment 99"]),
    (["cancel", "2"], ["experiment 2 is succeeded; only queued or running experiments can be cancelled"]),
    (["cancel"], ["give experiment ids or --all-queued"]),
    (["cancel", "1", "--all-queued"], ["give experiment ids or --all-queued"]),
    (["retry", "3"], ["experiment 3 is queued; only failed, diverged, cancelled experiments can be retried"]),
    (["retry", "99"], ["no experiment 99"]),
    (["rm", "3", "1"], ["experiment 1 is running; cancel it first (ganlab queue cancel 1 --db "]),
    (["rm", "98", "99"], ["no experiments 98, 99"]),
    (["priority", "99", "1"], ["no experiment 99"]),
]


@pytest.mark.parametrize(("args", "fragments"), STATE_ERRORS, ids=[" ".join(a) for a, _ in STATE_ERRORS])
def test_state_change_errors_change_nothing(env: Env, args: list[str], fragments: list[str]) -> None:
    env.ok("add", *TOY, "--set", "width=8,16,24")
    with Queue.open(str(env.db)) as q:
        running = q.claim("w")
        done = q.claim("w")
        assert running is not None and done is not None and (running.id, done.id) == (1, 2)
        q.finish(done.id, done.token, "succeeded")
    unchanged(env, lambda: env.run(*args), *fragments)


# ------------------------------------------------------ missing, corrupt, schema


EVERY_COMMAND = [["list"], ["show", "1"], ["cancel", "1"], ["cancel", "--all-queued"], ["retry", "1"], ["rm", "1"],
                 ["priority", "1", "2"]]


@pytest.mark.parametrize("args", EVERY_COMMAND, ids=[" ".join(a) for a in EVERY_COMMAND])
def test_missing_database_is_named_and_not_created(env: Env, args: list[str]) -> None:
    line = one_line_error(env.run(*args), f"no experiments database at {env.db}", "queue something to create it")
    assert f"ganlab queue add --db {env.db}" in line
    assert not env.db.exists()


@pytest.mark.parametrize("args", [*EVERY_COMMAND, ["add", *TOY]], ids=[" ".join(a[:2]) for a in [*EVERY_COMMAND, ["add"]]])
def test_corrupt_database_is_refused_untouched(env: Env, args: list[str]) -> None:
    junk = b"SQLite format 2? no: " + bytes(range(256)) * 8
    env.db.write_bytes(junk)
    one_line_error(env.run(*args), f"{env.db} is not an SQLite database", "move the file away")
    assert env.db.read_bytes() == junk


def _stamp(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE ganlab_schema SET version = ?", (version,))
    conn.commit()
    conn.close()


def test_schema_mismatch_names_the_fix(env: Env) -> None:
    env.ok("add", *TOY)
    _stamp(env.db, 0)
    unchanged(env, lambda: env.run("list"), f"uses schema version 0 but this ganlab needs version {SCHEMA_VERSION}",
              f"upgrade it with: ganlab db upgrade --db {env.db}")
    unchanged(env, lambda: env.run("add", *TOY, "--seed", "9"), "ganlab db upgrade")
    unchanged(env, lambda: env.run("upgrade", group="db"), "no migration from schema version 0 to 1")
    _stamp(env.db, 99)
    unchanged(env, lambda: env.run("show", "1"), "written by a newer ganlab (schema version 99", "pip install -U ganlab")
    unchanged(env, lambda: env.run("upgrade", group="db"), "newer ganlab")


def test_db_upgrade_on_a_current_and_a_missing_database(env: Env) -> None:
    one_line_error(env.run("upgrade", group="db"), "no experiments database", "nothing to upgrade")
    assert not env.db.exists()
    env.ok("add", *TOY)
    assert f"is at schema version {SCHEMA_VERSION}: nothing to upgrade" in env.ok("upgrade", group="db").stdout


def test_db_url_from_the_environment(env: Env) -> None:
    runner = CliRunner(env={"GANLAB_DB": str(env.db)})
    result = runner.invoke(cli, ["--plugins-dir", str(env.plugins), "queue", "add", *TOY, "--no-build-check"])
    assert result.exit_code == 0 and env.db.exists(), result.output
    result = runner.invoke(cli, ["--plugins-dir", str(env.plugins), "queue", "list", "--json"])
    assert [r["name"] for r in json.loads(result.stdout)] == ["toy-toyset-toyloss"]


def test_queue_commands_do_not_import_a_keras_backend(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from ganlab.cli import cli\n"
        "try:\n"
        f"    cli(['queue', '--db', {str(tmp_path / 'none.db')!r}, 'list'], standalone_mode=False)\n"
        "except Exception:\n"
        "    pass\n"
        "import ganlab.store, ganlab.sweep, ganlab.cli.queue_cmd\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_cli_reference_documents_every_queue_command_and_add_option() -> None:
    from ganlab.cli.queue_cmd import add, queue

    doc = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    for name in queue.commands:
        assert f"ganlab queue {name}" in doc, name
    for param in add.params:
        for opt in param.opts:
            if opt.startswith("--"):
                assert opt in doc, opt
    assert "ganlab db upgrade" in doc


def test_the_sweep_file_example_in_the_docs_is_valid(env: Env) -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "queue.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    (env.tmp / "sweep.toml").write_text(example)
    result = env.ok("add", "-f", str(env.tmp / "sweep.toml"), "--dry-run")
    assert "would queue 13 experiment(s)" in result.stdout and "mlp-baseline" in result.stdout
    assert not env.db.exists()


def test_shared_options_resolve_one_experiment_for_train(env: Env) -> None:
    from ganlab.cli.experiment_options import ExperimentOptions, experiment_configs, single_config
    from ganlab.errors import ConfigError
    from ganlab.registry import load_plugins

    registry = load_plugins(env.plugins)
    one = single_config(registry, ExperimentOptions(arch="toy", dataset="toyset", loss="toyloss", steps=7,
                                                    sets=("width=16",), backend="jax"))
    assert (one.architecture, one.arch_params["width"], one.train["steps"], one.train["backend"]) == ("toy", 16, 7, "jax")
    for options, fragment in (
        (ExperimentOptions(arch="toy,toycond", dataset="toyset", loss="toyloss"), "--arch toy,toycond lists several values"),
        (ExperimentOptions(arch="toy", dataset="toyset", loss="toyloss", sets=("width=8,16",)), "--set width=8,16 lists"),
        (ExperimentOptions(arch="toy", dataset="toyset", loss="toyloss", sets=("width=2",)), "width='2' is out of range"),
    ):
        with pytest.raises(ConfigError, match=fragment):
            single_config(registry, options)
    assert len(experiment_configs(registry, ExperimentOptions(arch="toy", dataset="toyset", loss="toyloss,toyloss2"),
                                  sweep=True)) == 2
