"""Local plugin files: turning them off, refusing loose permissions, hashes recorded at enqueue and
verified by workers before anything runs, SystemExit as a load problem, and the schema 1 -> 2 upgrade.

Everything here uses real files (chmod, chown), a real SQLite file (and PostgreSQL for the
upgrade when a server is up) and, for the changed-file case, a real worker and its children.
Plugin files that must never run write a marker file when imported: its absence is the proof.
"""

from __future__ import annotations

import grp
import hashlib
import importlib.metadata
import json
import os
import pwd
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _store_db import V1_SCHEMA, V1_STATUS_CHECK, sqlite_snapshot
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from ganlab.cli import cli
from ganlab.config import Resolver
from ganlab.errors import PluginRefused
from ganlab.plugin_files import PinnedFile
from ganlab.registry import Registry, load_plugins, reset_cache
from ganlab.store import SCHEMA_VERSION, NewExperiment, Queue, Store

ARCH = '''
import ganlab


def _g(ctx):
    import keras
    from keras import layers

    z = keras.Input((ctx.latent_dim,))
    h = layers.Dense(16, activation="relu")(z)
    h = layers.Dense(ctx.height * ctx.width * ctx.channels, activation="tanh")(h)
    return keras.Model(z, layers.Reshape(ctx.image_shape)(h))


def _d(ctx):
    import keras
    from keras import layers

    x = keras.Input(ctx.image_shape)
    h = layers.Dense(16)(layers.Flatten()(x))
    return keras.Model(x, layers.Dense(1)(layers.LeakyReLU(0.2)(h)))


@ganlab.hookimpl
def register_architectures(register):
    register(ganlab.ArchitectureSpec(name="{name}", description="tiny MLP pair",
                                     build_generator=_g, build_discriminator=_d))
'''


def marker_code(marker: Path) -> str:
    return f"import pathlib, sys, os\npathlib.Path({str(marker)!r}).write_text(repr((os.getpid(), sys.argv)))\n"


def write(folder: Path, name: str, code: str, mode: int = 0o644) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(code))
    path.chmod(mode)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    reset_cache()  # each CLI call is a fresh process in real use
    return CliRunner(env=env).invoke(cli, list(args))


def one_line_error(result: Result, *fragments: str) -> str:
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    monkeypatch.delenv("GANLAB_PLUGINS_DIR", raising=False)
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    reset_cache()
    yield
    reset_cache()


# ------------------------------------------------------------------ turning local plugins off


def test_empty_plugins_dir_env_and_flag_load_no_local_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "imported"
    write(tmp_path / "plugins", "marked", marker_code(marker) + ARCH.format(name="marked"))
    monkeypatch.chdir(tmp_path)

    # Control: the default ./plugins is loaded (so the marker does prove an import).
    listed = run("plugins", "--json")
    assert listed.exit_code == 0 and "marked" in [e["name"] for e in json.loads(listed.stdout)], listed.output
    assert marker.exists()

    for args, env in [
        (["--plugins-dir", ""], None),
        ([], {"GANLAB_PLUGINS_DIR": ""}),
        (["--no-local-plugins"], None),
        (["--no-local-plugins"], {"GANLAB_PLUGINS_DIR": str(tmp_path / "plugins")}),
    ]:
        marker.unlink(missing_ok=True)
        listed = run(*args, "plugins", "--json", env=env)
        assert listed.exit_code == 0, listed.output
        assert "marked" not in [e["name"] for e in json.loads(listed.stdout)]
        dry = run(*args, "queue", "--db", str(tmp_path / "q.db"), "add", "--dry-run", "--arch", "mlp", env=env)
        assert dry.exit_code == 0, dry.output
        unknown = run(*args, "queue", "--db", str(tmp_path / "q.db"), "add", "--arch", "marked", env=env)
        one_line_error(unknown, "unknown architecture 'marked'")
        assert not marker.exists(), (args, env)
    assert not (tmp_path / "q.db").exists()
    one_line_error(run("--no-local-plugins", "--plugins-dir", "plugins", "plugins"), "contradict")


# ------------------------------------------------------------------ permissions


def test_a_plugin_file_or_folder_others_can_write_is_refused_before_anything_runs(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    marker = tmp_path / "imported"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    good = write(folder, "a_good", marker_code(marker) + ARCH.format(name="good"))
    loose = write(folder, "b_loose", ARCH.format(name="loose"), mode=0o646)

    for args in (["plugins"], ["queue", "--db", str(tmp_path / "q.db"), "add", "--dry-run"]):
        one_line_error(run("--plugins-dir", str(folder), *args),
                       f"plugin file {loose} is writable by everyone (mode 0646)", f"chmod go-w {loose}")
        # The good file sorts first, yet nothing was imported: every file is checked before any runs.
        assert not marker.exists()

    loose.chmod(0o644)
    folder.chmod(0o777)
    one_line_error(run("--plugins-dir", str(folder), "plugins"),
                   f"plugins folder {folder} is writable by everyone (mode 0777)")
    assert not marker.exists()
    worker = run("--plugins-dir", str(folder), "worker", "--db", str(tmp_path / "q.db"), "--gpus", "none")
    one_line_error(worker, f"plugins folder {folder} is writable by everyone")
    assert not (tmp_path / "q.db").exists()

    folder.chmod(0o755)
    listed = run("--plugins-dir", str(folder), "plugins", "--json")
    assert listed.exit_code == 0, listed.output
    assert {"good", "loose"} <= {e["name"] for e in json.loads(listed.stdout)}
    assert marker.exists() and good.exists()


def _private_group_of_root() -> bool:
    group = grp.getgrgid(0)
    return group.gr_name == pwd.getpwuid(0).pw_name and set(group.gr_mem) <= {group.gr_name}


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner and group to another user's needs root")
def test_group_writable_or_foreign_owned_files_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir()
    folder.chmod(0o755)
    nobody = pwd.getpwnam("nobody")
    other_group = grp.getgrgid(nobody.pw_gid)
    plugin = write(folder, "shared", ARCH.format(name="shared"), mode=0o664)

    os.chown(plugin, 0, other_group.gr_gid)
    one_line_error(run("--plugins-dir", str(folder), "plugins"),
                   f"plugin file {plugin} is writable by its group (mode 0664)")

    os.chown(plugin, nobody.pw_uid, 0)
    plugin.chmod(0o644)
    one_line_error(run("--plugins-dir", str(folder), "plugins"),
                   f"plugin file {plugin} is owned by nobody, not by you (root) or root")

    os.chown(folder, nobody.pw_uid, 0)
    os.chown(plugin, 0, 0)
    one_line_error(run("--plugins-dir", str(folder), "plugins"), f"plugins folder {folder} is owned by nobody")

    if _private_group_of_root():
        # umask 002 with a user-private group: the group is the owner alone, so it is not loose.
        os.chown(folder, 0, 0)
        plugin.chmod(0o664)
        assert run("--plugins-dir", str(folder), "plugins").exit_code == 0


# ------------------------------------------------------------------ SystemExit and other BaseExceptions


def test_a_plugin_calling_sys_exit_is_a_load_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "plugins"
    write(folder, "good", ARCH.format(name="good"))
    quitter = write(folder, "quitter", "import sys\nsys.exit(3)\n")
    hook_quitter = write(folder, "hookquit", """
        import sys
        import ganlab

        @ganlab.hookimpl
        def register_losses(register):
            sys.exit("no losses today")
    """)
    listed = run("--plugins-dir", str(folder), "plugins", "--json")
    assert listed.exit_code == 0, listed.output
    assert "good" in [e["name"] for e in json.loads(listed.stdout)]
    assert f"warning: plugin file {quitter} failed to import: SystemExit: 3" in listed.stderr
    assert f"warning: plugin {hook_quitter}: register_losses raised SystemExit: no losses today" in listed.stderr

    one_line_error(run("--plugins-dir", str(folder), "queue", "--db", str(tmp_path / "q.db"), "add", "--arch", "quitter"),
                   f"plugin file {quitter} failed to import: SystemExit: 3")
    assert not (tmp_path / "q.db").exists()

    # An installed package's entry point that exits is a problem of that package only.
    module_name = "ganlab_test_exiting_pkg"
    exiting = importlib.metadata.EntryPoint(name="exiting", value=module_name, group="ganlab")
    write(tmp_path / "site", module_name, "raise SystemExit('bye')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))

    class Dist:
        metadata = {"name": "exiting-gan"}
        version = "0.1"
        entry_points = [exiting]

    monkeypatch.setattr(importlib.metadata, "distributions", lambda: iter([Dist()]))
    reg = Registry().load(entry_points=True, local=False)
    assert [p.message for p in reg.problems] == [
        f"plugin package exiting-gan ({module_name}) failed to import: SystemExit: bye"
    ]
    assert reg.architecture("dcgan") is not None


# ------------------------------------------------------------------ pinned files (what a worker child loads)


def test_a_pinned_registry_loads_only_the_recorded_files_and_only_unchanged(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    marker = tmp_path / "bystander-ran"
    arch = write(folder, "pinned", ARCH.format(name="pinned"))
    write(folder, "bystander", marker_code(marker))
    pin = PinnedFile(arch, sha256(arch))

    reg = Registry().load(folder, entry_points=False, pinned=[pin])
    assert reg.architecture("pinned") is not None and reg.problems == []
    assert not marker.exists()  # a file of the folder nobody recorded never runs
    assert Registry().load(folder, entry_points=False, pinned=[]).find("pinned") == []

    changed_marker = tmp_path / "changed-ran"
    arch.write_text(marker_code(changed_marker) + ARCH.format(name="pinned"))
    with pytest.raises(PluginRefused) as refused:
        Registry().load(folder, entry_points=False, pinned=[pin])
    assert str(refused.value) == (
        f"plugin file {arch} changed since this experiment was queued (sha256 {pin.sha256} -> {sha256(arch)}), "
        "so none of it ran; check the change"
    )
    assert not changed_marker.exists()

    elsewhere = write(tmp_path / "other", "pinned", ARCH.format(name="pinned"))
    with pytest.raises(PluginRefused, match=f"not a plugin file of this worker's plugins folder {folder}"):
        Registry().load(folder, entry_points=False, pinned=[PinnedFile(elsewhere, sha256(elsewhere))])
    with pytest.raises(PluginRefused, match="local plugins are off here"):
        Registry().load(folder, entry_points=False, local=False, pinned=[PinnedFile(arch, sha256(arch))])
    arch.unlink()
    with pytest.raises(PluginRefused, match="cannot be read .No such file or directory., so none of it ran"):
        Registry().load(folder, entry_points=False, pinned=[pin])
    assert not marker.exists() and not changed_marker.exists()


# ------------------------------------------------------------------ recorded at enqueue, shown by queue show


def test_enqueue_records_each_local_plugin_file_with_its_hash(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    arch = write(folder, "recorded", ARCH.format(name="recorded"))
    db = tmp_path / "q.db"
    added = run("--plugins-dir", str(folder), "queue", "--db", str(db), "add", "-q", "--arch", "recorded,mlp",
                "--set", "size=8")
    assert added.exit_code == 0, added.output
    local_id, builtin_id = map(int, added.stdout.split())

    expected = [{"kind": "architecture", "name": "recorded", "path": str(arch), "sha256": sha256(arch)}]
    shown = run("queue", "--db", str(db), "show", str(local_id), "--json")
    assert json.loads(shown.stdout)["plugin_files"] == expected
    assert json.loads(run("queue", "--db", str(db), "show", str(builtin_id), "--json").stdout)["plugin_files"] == []

    text_out = run("queue", "--db", str(db), "show", str(local_id)).stdout
    assert f"architecture recorded: {arch}" in text_out and f"sha256 {sha256(arch)}" in text_out
    # The path is absolute even when the folder was given relative to the current directory.
    assert arch.is_absolute()


# ------------------------------------------------------------------ the worker refuses a changed file


SMALL = ["--dataset", "digits", "--loss", "non-saturating", "--batch-size", "16", "--steps", "5",
         "--set", "size=8", "--set", "latent_dim=8", "--set", "eval_samples=64", "--set", "log_every=5"]


def work(cwd: Path, url: str, *args: str) -> str:
    """A real worker started in ``cwd`` (so ``./plugins`` is its default folder), run until the queue is empty.

    Pre-started processes are tested on their own (test_a_pre_started_process_runs_no_local_plugin).
    """
    env = {k: v for k, v in os.environ.items() if k != "GANLAB_PLUGINS_DIR"}
    cmd = [sys.executable, "-m", "ganlab", "worker", "--db", url, "--runs-dir", str(cwd / "runs"),
           "--gpus", "none", "--poll", "0.3", "--lease", "20", "--until-empty", "--no-prestart", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_worker_fails_an_experiment_whose_plugin_file_changed_and_runs_no_other_file(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    changed_marker, bystander_marker = tmp_path / "changed-ran", tmp_path / "bystander-ran"
    arch = write(folder, "swapped", ARCH.format(name="swapped"))
    write(folder, "bystander", marker_code(bystander_marker))
    url = f"sqlite:///{tmp_path / 'q.db'}"
    added = run("--plugins-dir", str(folder), "queue", "--db", url, "add", "-q", "--arch", "swapped,mlp", *SMALL)
    assert added.exit_code == 0, added.output
    swapped_id, builtin_id = map(int, added.stdout.split())
    queued_sha = sha256(arch)
    bystander_marker.unlink()  # queueing loads the whole folder; from here on nothing may import it

    # Someone with write access swaps the code between queueing and running.
    arch.write_text(marker_code(changed_marker) + ARCH.format(name="swapped"))
    out = work(tmp_path, url)

    with Queue.open(url) as q:
        failed, fine = q.get(swapped_id), q.get(builtin_id)
    assert failed.status == "failed" and failed.attempts == 1, (failed.error, out)  # refused, not retried
    retry_cmd = f"ganlab queue --db {tmp_path / 'q.db'} retry {swapped_id} --rehash-plugins"
    assert failed.error == (
        f"plugin file {arch} changed since this experiment was queued (sha256 {queued_sha} -> {sha256(arch)}), "
        f"so none of it ran; check the change; to run it again: {retry_cmd}"
    )
    assert f"#{swapped_id} " in out and "changed since this experiment was queued" in out
    assert fine.status == "succeeded", (fine.error, out)
    assert not changed_marker.exists(), f"the swapped code ran: {changed_marker.read_text()}"
    assert not bystander_marker.exists(), f"a file nobody recorded ran: {bystander_marker.read_text()}"

    # The command the error names records the new hash and requeues it; nothing runs meanwhile.
    retried = run(*retry_cmd.split()[1:])
    assert retried.exit_code == 0, retried.output
    assert f"now runs {arch} with sha256 {sha256(arch)} (was {queued_sha})" in retried.output
    with Queue.open(url) as q:
        requeued = q.get(swapped_id)
    assert requeued.status == "queued"
    assert requeued.plugin_files == [{"kind": "architecture", "name": "swapped", "path": str(arch), "sha256": sha256(arch)}]
    assert not changed_marker.exists()


def test_worker_without_local_plugins_fails_experiments_that_need_one(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    arch = write(folder, "needed", marker_code(tmp_path / "ran") + ARCH.format(name="needed"))
    url = f"sqlite:///{tmp_path / 'q.db'}"
    added = run("--plugins-dir", str(folder), "queue", "--db", url, "add", "-q", "--arch", "needed", *SMALL)
    assert added.exit_code == 0, added.output
    exp_id = int(added.stdout)
    (tmp_path / "ran").unlink()

    work(tmp_path, url, "--no-local-plugins")
    with Queue.open(url) as q:
        rec = q.get(exp_id)
    assert rec.status == "failed" and rec.attempts == 1, rec.error
    assert rec.error.startswith(f"this experiment uses plugin file {arch}, but local plugins are off here")
    assert not (tmp_path / "ran").exists()

    # Re-recording hashes reads the files under the same rules: a loose one is refused, nothing stored changes.
    before = sqlite_snapshot(tmp_path / "q.db")
    arch.chmod(0o666)
    one_line_error(run("queue", "--db", url, "retry", str(exp_id), "--rehash-plugins"),
                   f"plugin file {arch} is writable by everyone")
    assert sqlite_snapshot(tmp_path / "q.db") == before


def test_a_pre_started_process_runs_no_local_plugin(tmp_path: Path) -> None:
    # It rehearses a built-in GAN while it waits; the plugins folder where its worker started must not run.
    write(tmp_path / "plugins", "bystander", marker_code(tmp_path / "ran"))
    env = {k: v for k, v in os.environ.items() if k != "GANLAB_PLUGINS_DIR"}
    # No experiment is handed over (stdin closes at once): it warms up, then exits.
    done = subprocess.run([sys.executable, "-m", "ganlab.worker.standby"], cwd=tmp_path, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "ran").exists(), (tmp_path / "ran").read_text()


# ------------------------------------------------------------------ schema 1 -> 2




def _make_version_1(url: str, tmp_path: Path) -> None:
    """A database as ganlab 0.x (schema 1) left it, with one succeeded and one queued experiment."""
    config = Resolver(load_plugins("")).resolve("dcgan", "digits", "hinge", {"steps": 50})
    if url.startswith("sqlite"):
        conn = sqlite3.connect(tmp_path / "experiments.db")
        conn.executescript(V1_SCHEMA)
        for exp_id, status, metrics in ((1, "succeeded", '{"fd": 4.5}'), (2, "queued", None)):
            conn.execute(
                "INSERT INTO experiments (id, name, architecture, dataset, loss, config, config_hash, priority, status,"
                " queued_at, attempts, fence, cancel_requested, step, total_steps, metrics)"
                " VALUES (?, ?, 'dcgan', 'digits', 'hinge', ?, ?, 0, ?, '2026-01-05 10:00:00.000000+00:00', 1, 1, 0,"
                " 50, 50, ?)",
                (exp_id, f"old-{exp_id}", config.to_json(), config.hash, status, metrics),
            )
        conn.execute("INSERT INTO experiment_tags VALUES (1, 'keep')")
        conn.commit()
        conn.close()
        return
    # PostgreSQL: the same shape, made from today's tables by taking the new column away.
    with Store.open(url, create=True) as store:
        store.enqueue([NewExperiment(config, "old-1", tags=("keep",)),
                       NewExperiment(config, "old-2")], allow_duplicates=True)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE experiments SET status = 'succeeded', metrics = '{\"fd\": 4.5}' WHERE id = 1"))
        conn.execute(text("ALTER TABLE experiments DROP COLUMN plugin_files"))
        conn.execute(text("ALTER TABLE workers DROP COLUMN slurm_job_id"))  # added by version 3
        conn.execute(text("ALTER TABLE workers DROP COLUMN slurm_task"))
        for column in ("stop_reason", "study_id", "trial", "pack_key"):  # added by version 4
            conn.execute(text(f"ALTER TABLE experiments DROP COLUMN {column}"))
        conn.execute(text("DROP TABLE trial_values"))
        conn.execute(text("DROP TABLE studies"))
        conn.execute(text("ALTER TABLE experiments DROP CONSTRAINT ck_experiments_status"))
        conn.execute(text(f"ALTER TABLE experiments ADD CONSTRAINT ck_experiments_status CHECK ({V1_STATUS_CHECK})"))
        conn.execute(text("DELETE FROM ganlab_schema"))
        conn.execute(text("INSERT INTO ganlab_schema VALUES (1, 'initial schema', CURRENT_TIMESTAMP)"))
    engine.dispose()


def _columns(url: str, table: str = "experiments") -> dict[str, str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        cols = {c["name"]: str(c["type"]) for c in inspect(conn).get_columns(table)}
    engine.dispose()
    return cols


def test_a_version_1_database_is_upgraded_and_keeps_its_rows(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    assert SCHEMA_VERSION == 4
    _make_version_1(db_url, tmp_path)
    one_line_error(run("queue", "--db", db_url, "list"), "uses schema version 1 but this ganlab needs version 4")

    upgraded = run("db", "--db", db_url, "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "from schema version 1 to 4" in upgraded.stdout

    rows = json.loads(run("queue", "--db", db_url, "list", "--json").stdout)
    assert [(r["id"], r["name"], r["status"], r["tags"]) for r in rows] == [
        (1, "old-1", "succeeded", ["keep"]), (2, "old-2", "queued", []),
    ]
    old = json.loads(run("queue", "--db", db_url, "show", "1", "--json").stdout)
    assert old["plugin_files"] is None and old["metrics"] == {"fd": 4.5}
    assert "plugin files not recorded" in run("queue", "--db", db_url, "show", "2").stdout

    # The upgraded table has the same columns as a new database's, and takes new records.
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    Store.open(fresh, create=True).close()
    assert set(_columns(db_url)) == set(_columns(fresh))
    assert set(_columns(db_url, "workers")) == set(_columns(fresh, "workers"))
    for table in ("studies", "trial_values"):  # version 4: search
        assert set(_columns(db_url, table)) == set(_columns(fresh, table))
    # Version 4 widened the status check: the new final statuses are accepted, unknown ones still refused.
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE experiments SET status = 'pruned', stop_reason = 'pruned at step 20' WHERE id = 1"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE experiments SET status = 'bogus' WHERE id = 1"))
    engine.dispose()
    shown = json.loads(run("queue", "--db", db_url, "show", "1", "--json").stdout)
    assert (shown["status"], shown["stop_reason"], shown["metrics"]) == ("pruned", "pruned at step 20", {"fd": 4.5})
    folder = tmp_path / "plugins"
    arch = write(folder, "later", ARCH.format(name="later"))
    added = run("--plugins-dir", str(folder), "queue", "--db", db_url, "add", "-q", "--arch", "later")
    assert added.exit_code == 0, added.output
    new = json.loads(run("queue", "--db", db_url, "show", added.stdout.strip(), "--json").stdout)
    assert new["plugin_files"] == [{"kind": "architecture", "name": "later", "path": str(arch), "sha256": sha256(arch)}]
    assert "nothing to upgrade" in run("db", "--db", db_url, "upgrade").stdout
