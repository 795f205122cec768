"""Hostile names, run dirs and URLs: nothing written outside the runs folder, nothing sent raw to a terminal.

The queue is shared: any client may store any string as a name or run dir
(these tests write them with plain SQL, as another program would). The
worker must still write only inside its runs folder; every listing must
print such rows as text, without crashing on rich markup and without
passing on terminal escape sequences.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text
from test_queue_cli import Env, one_line_error, unchanged
from test_worker import _env, enqueue, finish, record, start_worker  # noqa: F401  (_env: shared feature-net cache)

from ganlab.cli import cli
from ganlab.config import ExperimentConfig
from ganlab.errors import ConfigError
from ganlab.store import NewExperiment, Queue

MARKUP = "[/][link=http://x]y[/link]"
ESC = "\x1b[31m"
HOSTILE = f"{MARKUP}{ESC}red"


@pytest.fixture
def queue_env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def tamper(url: str, exp_id: int, **values: str) -> None:
    """Change a row behind ganlab's back, as another client (or an older ganlab) could."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for column, value in values.items():
                conn.execute(text(f"UPDATE experiments SET {column} = :v WHERE id = :id"), {"v": value, "id": exp_id})
    finally:
        engine.dispose()


def files_outside(root: Path, runs: Path) -> set[str]:
    """Every path under ``root`` outside ``runs``, but the database's own files."""
    return {str(p.relative_to(root)) for p in root.rglob("*")
            if not p.is_relative_to(runs) and not p.name.startswith("experiments.db")}


# ------------------------------------------------------------------ the worker


def test_stored_names_and_run_dirs_cannot_make_the_worker_write_outside_its_runs_folder(db_url, tmp_path):  # noqa: F811
    url = db_url
    runs = tmp_path / "runs"
    outside = tmp_path / "outside"
    ids = enqueue(url, "--steps", "4", "--seeds", "0,1,2,3")
    traversal, markup, linked, linked_checkpoints = ids
    # A name that climbs out of the runs folder (before: the run went to tmp_path/escaped_run).
    tamper(url, traversal, name="x/../../escaped_run")
    escaped = (runs / f"{traversal:04d}-x/../../escaped_run").resolve()
    assert escaped == tmp_path / "escaped_run"
    # Rich markup and an escape sequence in the name, and a run dir stored outside the runs folder.
    tamper(url, markup, name=HOSTILE, run_dir=str(outside / "victim"))
    # A link planted in the runs folder where an experiment's directory will be.
    (outside / "link_target").mkdir(parents=True)
    runs.mkdir()
    (runs / f"{linked:04d}-linked").symlink_to(outside / "link_target", target_is_directory=True)
    tamper(url, linked, name="linked")
    # A link inside the run directory: the checkpoints would land outside.
    (outside / "checkpoints_target").mkdir()
    (runs / f"{linked_checkpoints:04d}-ckpt").mkdir()
    (runs / f"{linked_checkpoints:04d}-ckpt" / "checkpoints").symlink_to(outside / "checkpoints_target")
    tamper(url, linked_checkpoints, name="ckpt")

    out = finish(start_worker(url, runs, "--until-empty", "--lease", "20"))

    for exp_id in (traversal, markup):
        rec = record(url, exp_id)
        assert rec.status == "succeeded", (rec.error, out)
        assert Path(rec.run_dir).resolve().parent == runs.resolve()
        assert (Path(rec.run_dir) / "checkpoints" / "latest.npz").is_file()
    assert Path(record(url, traversal).run_dir).name == f"{traversal:04d}-x_escaped_run"
    assert Path(record(url, markup).run_dir).name.startswith(f"{markup:04d}-")
    assert f"#{markup}: ignoring its stored run dir" in out
    failed = record(url, linked)
    assert failed.status == "failed" and "leads outside the runs folder" in failed.error, failed.error
    broken = record(url, linked_checkpoints)
    assert broken.status == "failed" and "leads outside its run dir" in broken.error, broken.error
    # Nothing anywhere but in the runs folder: the link targets stayed empty, the rest was never created.
    assert not escaped.exists() and not (outside / "victim").exists()
    assert files_outside(tmp_path, runs) == {"outside", "outside/link_target", "outside/checkpoints_target"}
    assert list((outside / "link_target").iterdir()) == [] and list((outside / "checkpoints_target").iterdir()) == []
    # The worker's own output showed the hostile name as text.
    assert "\x1b" not in out and f"#{markup} {MARKUP}\\x1b[31mred" in out


def test_train_name_cannot_leave_the_runs_folder(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    plugins = ["--plugins-dir", str(Path(__file__).parent / "worker_plugins")]
    small = ["--arch", "faulty", "--dataset", "digits", "--batch-size", "16", "--set", "size=8",
             "--set", "latent_dim=8", "--set", "eval_samples=64", "--steps", "2"]
    result = CliRunner().invoke(cli, [*plugins, "train", *small, "--name", "../../x"])
    line = one_line_error(result, "--name '../../x' is not allowed", "A-Z a-z 0-9")
    assert "Traceback" not in result.output, line
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["work"]
    # A link planted where a named run would go is refused too; --run-dir stays the user's choice.
    (work / "runs").mkdir()
    (work / "runs" / "linked").symlink_to(tmp_path, target_is_directory=True)
    result = CliRunner().invoke(cli, [*plugins, "train", *small, "--name", "linked"])
    one_line_error(result, "leads outside the runs folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


# ------------------------------------------------------------------- the CLI


@pytest.mark.parametrize("name", [
    "x/../../y", "../x", "..", "a/b", "/abs", ".hidden", "-dash", "a b", "[/]", "x\x1b[31m", "tab\there",
    "a" * 201, "",
])
def test_queue_add_refuses_a_name_that_is_no_safe_directory_name(queue_env, name):
    queue_env.ok("add", "--arch", "toy", "--dataset", "toyset", "--loss", "toyloss", "--name", "first")
    unchanged(queue_env, lambda: queue_env.run("add", "--arch", "toy", "--dataset", "toyset", "--loss", "toyloss",
                                               "--set", "width=64", "--name", name),
              "--name", "is not allowed", "A-Z a-z 0-9 _ - . = + , @")


def test_queue_add_refuses_a_bad_name_without_creating_a_database(queue_env):
    one_line_error(queue_env.run("add", "--arch", "toy", "--dataset", "toyset", "--loss", "toyloss",
                                 "--name", "x/../../y"), "--name 'x/../../y' is not allowed")
    assert not queue_env.db.exists()


def test_sweep_file_names_are_checked_and_generated_names_made_safe(queue_env):
    bad = queue_env.tmp / "bad.toml"
    bad.write_text('name = "../../x"\n[grid]\narch = "toy"\ndataset = "toyset"\nloss = "toyloss"\n')
    one_line_error(queue_env.run("add", "-f", str(bad)), f"{bad}: name '../../x' is not allowed")
    assert not queue_env.db.exists()
    # Values holding '/' (folder paths) become part of generated names: they are made safe, and kept apart.
    (queue_env.tmp / "d" / "e").mkdir(parents=True)
    (queue_env.tmp / "d_e").mkdir()
    paths = f"{queue_env.tmp / 'd' / 'e'},{queue_env.tmp / 'd_e'}"
    queue_env.ok("add", "--arch", "toy", "--dataset", "toydir", "--loss", "toyloss", "--set", f"path={paths}",
                 "--set", "width=8,16", "--name", "study-lr_g=0.0002")
    names = [row[1] for row in queue_env.rows()]
    assert len(names) == 4 and len(set(names)) == 4, names
    assert all("/" not in n and ".." not in n and len(n) <= 200 for n in names), names
    assert names[0] == f"study-lr_g=0.0002-path={str(queue_env.tmp / 'd' / 'e').replace('/', '_')}-width=8"
    assert names[1].endswith("-width=16")
    assert names[2] == names[0] + "-2"  # d/e and d_e read the same once made safe


def test_the_name_bound_is_the_same_on_every_database_and_checked_before_writing(db_url, queue_env):  # noqa: F811
    def add(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--plugins-dir", str(queue_env.plugins), "queue", "--db", db_url, "add",
                                        "--arch", "toy", "--dataset", "toyset", "--loss", "toyloss",
                                        "--no-build-check", *args])

    assert add("--name", "a" * 200).exit_code == 0
    line = one_line_error(add("--name", "b" * 250, "--set", "width=8"), "(250 characters) is not allowed", "1-200")
    assert "value too long" not in line
    # A generated name past the bound is cut, ending with a hash of the whole so names stay apart.
    result = add("--name", "c" * 195, "--set", "width=8,16", "-q")
    assert result.exit_code == 0, result.output
    with Queue.open(db_url) as q:
        names = [s.name for s in q.list_experiments()]
    assert names[0] == "a" * 200 and len(names) == 3
    assert all(len(n) == 200 and n.startswith("c" * 190) for n in names[1:]) and names[1] != names[2]
    # The store itself refuses a bad name (clients other than the CLI), before writing anything.
    with Queue.open(db_url) as q, pytest.raises(ConfigError, match="is not allowed"):
        q.enqueue([NewExperiment(ExperimentConfig("toy", "toyset", "toyloss", train={"seed": 9}), "d" * 201)])
    with Queue.open(db_url) as q:
        assert len(q.list_experiments()) == 3


def test_tags_with_control_characters_are_refused(queue_env):
    queue_env.ok("add", "--arch", "toy", "--dataset", "toyset", "--loss", "toyloss")
    unchanged(queue_env, lambda: queue_env.run("add", "--arch", "toy", "--dataset", "toyset", "--loss", "toyloss",
                                               "--set", "width=8", "--tag", "x\x1b[31m"), "tag", "is not allowed")


# ------------------------------------------------------------ printing rows


def _hostile_rows(url: str) -> list[int]:
    """Three experiments named with markup, a link and an escape sequence: one running, two finished."""
    names = ["[/]", "[link=http://x]y[/link]", f"{ESC}red"]
    with Queue.open(url, create=True) as q:
        result = q.enqueue([NewExperiment(ExperimentConfig("toy", "toyset", "toyloss", arch_params={"width": 8 * i},
                                                           train={"seed": i, "steps": 10}), f"n{i}")
                            for i in range(1, 4)])
        ids = [i for i, _ in result.queued]
        q.register_worker(f"w{MARKUP}{ESC}")
        claims = [q.claim(f"w{MARKUP}{ESC}") for _ in ids]
        for claim in claims[1:]:
            q.finish(claim.id, claim.token, "succeeded", step=10, metrics={"fd": 1.5, f"x{MARKUP}{ESC}": 2.0},
                     error=f"line one\n{ESC}{MARKUP}")
    for exp_id, name in zip(ids, names):
        tamper(url, exp_id, name=name, run_dir=f"/tmp/{name}")
    return ids


def _shown(args: list[str], **env: str) -> str:
    result = CliRunner().invoke(cli, args, env=env or None)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_listings_print_hostile_stored_names_as_text(db_url):  # noqa: F811
    ids = _hostile_rows(db_url)
    db = ["--db", db_url]
    commands = [["queue", *db, "list"], *(["queue", *db, "show", str(i)] for i in ids), ["status", *db],
                ["compare", *db], ["compare", *db, "--csv"]]
    for args in commands:
        out = _shown(args)
        assert "\x1b" not in out, (args, out)
    listing = _shown(["queue", *db, "list"])
    assert "[/]" in listing and "[link=http://x]y[/link]" in listing and "\\x1b[31mred" in listing
    assert "\\x1b[31mred" in _shown(["queue", *db, "show", str(ids[2])])
    assert "[/]" in _shown(["status", *db]) and "[link=http://x]y[/link]" in _shown(["compare", *db])
    # On a colour terminal the tables are styled, but a stored name is never a live link.
    for args in (["queue", *db, "list"], ["status", *db], ["compare", *db]):
        out = _shown(args, FORCE_COLOR="1")
        assert "\x1b]8;" not in out and ESC + "red" not in out, (args, out)


# ------------------------------------------------------------------ --db URLs


def test_a_password_in_a_malformed_db_url_is_not_echoed(tmp_path):
    result = CliRunner().invoke(cli, ["queue", "--db", "post gres://bob:s3cret@db-host/ganlab", "list"])
    line = one_line_error(result, "is not a database URL", "bob:***@db-host")
    assert "s3cret" not in result.output, line


# ------------------------------------------------------------- the name rules


def test_slugs_are_always_valid_names_and_valid_names_stay_as_they_are():
    from ganlab.names import MAX_NAME_LEN, check_name, is_name, printable, slugify

    for name in ["dcgan-digits-hinge-lr_g=0.0002", "lr-study-seed=2", "demo-dcgan-wgan-gp", "a" * MAX_NAME_LEN,
                 "x1e-05+y,z@w"]:
        assert check_name(name) == name and slugify(name) == name
    for raw in ["x/../../y", "..", "", ".", "-", "/", "a" * 500, "é€", "\x1b[31m", "\u202eevil", "a\udcff",
                "C:\\Windows", "~/faces", "x" * 199 + "/" + "y" * 50]:
        slug = slugify(raw)
        assert is_name(slug), (raw, slug)
        assert slugify(slug) == slug
    assert slugify("path=/data/faces") == "path=_data_faces"
    assert slugify("a" * 300) != slugify("a" * 301)
    assert printable(f"a{ESC}b\u202ec\x85d\ne", keep="\n") == "a\\x1b[31mb\\u202ec\\x85d\ne"
    assert printable("plain [/] text é") == "plain [/] text é"


def test_run_dirs_are_derived_in_one_place(tmp_path):
    from ganlab.training.run_dir import RunDir, derive_run_dir, run_dir_name

    assert run_dir_name("x/../../y", 42) == "0042-x_y" and run_dir_name("demo") == "demo"
    assert derive_run_dir(tmp_path, "../../x", 7) == tmp_path / "0007-_x"
    (tmp_path / "0008-link").symlink_to("/", target_is_directory=True)
    with pytest.raises(ConfigError, match="leads outside the runs folder"):
        derive_run_dir(tmp_path, "link", 8)
    rd = RunDir(tmp_path / "run")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    with pytest.raises(ConfigError, match="leads outside its run dir"):
        rd.append_metrics({"step": 1})
    assert not (tmp_path / "elsewhere.jsonl").exists()
    assert os.path.basename(rd.output("checkpoints/latest.npz")) == "latest.npz"
