"""``ganlab slurm`` without a cluster: the batch script ``--dry-run`` prints, and what is refused before sbatch.

The SLURM commands themselves are exercised on a real cluster in
test_slurm.py; here PATH holds none of them, so a test that reached sbatch
would fail with "sbatch is not on PATH".
"""

from __future__ import annotations

import shlex
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ganlab.cli import cli
from ganlab.slurm.commands import parse_job_id, parse_squeue
from ganlab.slurm.env import slurm_task
from ganlab.slurm.paths import check_db_shared, check_runs_shared, filesystem_of
from ganlab.slurm.script import time_to_s
from ganlab.store import Queue, Store
from ganlab.training.report import StopFlag

PG = "postgresql+psycopg://ganlab@db.cluster.example:5432/sweeps"
MOUNTS = """\
/dev/sda1 / ext4 rw 0 0
server:/export/home /home nfs4 rw 0 0
/dev/sdb1 /home/local\\040disk ext4 rw 0 0
lustre@tcp:/scratch /scratch lustre rw 0 0
"""


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))  # no sbatch, squeue, scancel
    monkeypatch.setenv("GANLAB_PLUGINS_DIR", "")
    return CliRunner()


def submit(runner: CliRunner, *args: str, db: str = PG, runs: str = "/scratch/runs") -> Result:
    return runner.invoke(cli, ["slurm", "submit", "--db", db, "--runs-dir", runs, *args])


def one_line(result: Result, *fragments: str) -> str:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_dry_run_prints_the_whole_batch_script(runner: CliRunner, tmp_path: Path) -> None:
    result = submit(runner, "--workers", "8", "--gpus-per-worker", "1", "--cpus-per-worker", "6", "--time", "24:00:00",
                    "--partition", "gpu", "--account", "gans", "--sbatch", "mem=32G", "--sbatch", "qos=long",
                    "--tag", "sweep-a", "--max-attempts", "5", "--lease", "90", "--single-node", "--dry-run")
    assert result.exit_code == 0, result.output
    script = result.stdout
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    assert directives == [
        "#SBATCH --job-name=ganlab-worker", "#SBATCH --array=0-7", "#SBATCH --time=24:00:00",
        "#SBATCH --cpus-per-task=6", "#SBATCH --gres=gpu:1", "#SBATCH --partition=gpu", "#SBATCH --account=gans",
        "#SBATCH --signal=B:USR1@120", "#SBATCH --requeue", "#SBATCH --open-mode=append",
        "#SBATCH --output=/scratch/runs/slurm/%A_%a.out", "#SBATCH --mem=32G", "#SBATCH --qos=long",
    ]
    assert script.startswith("#!/bin/bash\n")
    # The worker is exec'd, so SLURM's warning signal reaches it and not a shell in between.
    [command] = [line for line in script.splitlines() if line.startswith("exec ")]
    argv = shlex.split(command)[1:]
    assert argv[1:4] == ["-m", "ganlab", "--plugins-dir"] and argv[4] == ""
    assert argv[5:] == ["worker", "--db", PG, "--runs-dir", "/scratch/runs", "--gpus", "auto", "--lease", "90",
                        "--poll", "5", "--until-empty", "--tag", "sweep-a", "--max-attempts", "5"]
    # Nothing contacted or created: no database, no log folder, and no sbatch was even on PATH.
    assert not (tmp_path / "experiments.db").exists() and not Path("/scratch/runs").exists()


def test_dry_run_on_the_cpu_with_a_relative_sqlite_file(runner: CliRunner, tmp_path: Path) -> None:
    result = submit(runner, "--workers", "1", "--time", "90", "--single-node", "--keep-polling", "--no-prestart",
                    "--dry-run", db="q.db", runs="runs")
    assert result.exit_code == 0, result.output
    assert "#SBATCH --gres" not in result.stdout and "--gpus none" in result.stdout
    # Paths become absolute: the job may start in another folder.
    assert f"--db sqlite:///{tmp_path / 'q.db'} --runs-dir {tmp_path / 'runs'}" in result.stdout
    assert "--until-empty" not in result.stdout and result.stdout.rstrip().endswith("--no-prestart")
    assert not (tmp_path / "q.db").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("args", "fragments"), [
    (["--workers", "0", "--time", "10"], ("--workers 0: give at least 1 worker",)),
    (["--workers", "2", "--time", "1:2:3:4"], ("--time '1:2:3:4' is not a SLURM time limit",)),
    (["--workers", "2", "--time", "0"], ("give at least 1 minute",)),
    (["--workers", "2", "--time", "2", "--warn", "120"], ("--warn 120 s is not shorter than --time 2",)),
    (["--workers", "2", "--time", "10", "--sbatch", "array=0-99"], ("--sbatch array cannot be set here",)),
    (["--workers", "2", "--time", "10", "--sbatch", "time=5"], ("use --time",)),
    (["--workers", "2", "--time", "10", "--sbatch", "no equals"], ("is not KEY=VALUE",)),
    (["--workers", "2", "--time", "10", "--sbatch", "comment=a\nb"], ("newline",)),
    (["--workers", "2", "--time", "10", "--partition", "gpu\n#SBATCH --x"], ("is not a SLURM partition name",)),
    (["--workers", "2", "--time", "10", "--name", "a b"], ("--name 'a b'",)),
])
def test_bad_submit_options_are_one_line(runner: CliRunner, tmp_path: Path, args: list[str],
                                         fragments: tuple[str, ...]) -> None:
    one_line(submit(runner, *args, "--dry-run"), *fragments)
    one_line(submit(runner, *args), *fragments)  # refused before anything else, without --dry-run too
    assert not (tmp_path / "experiments.db").exists()


def test_a_local_database_or_runs_folder_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    Store.open(str(db), create=True).close()
    local_runs = str(tmp_path / "runs")
    one_line(submit(runner, "--workers", "2", "--time", "10", db=str(db), runs="/scratch/runs"),
             f"--db {db} is an SQLite file on a local file system", "--single-node")
    one_line(submit(runner, "--workers", "2", "--time", "10", runs=local_runs, db="postgresql+psycopg://u@db.example/x"),
             f"--runs-dir {local_runs} is on a local file system")
    one_line(submit(runner, "--workers", "2", "--time", "10", "--dry-run", db="postgresql+psycopg://u@localhost/x"),
             "through host localhost, which on another node is that node itself")
    assert not (tmp_path / "runs").exists()


def test_without_slurm_on_path_submit_says_so_after_checking_the_queue(runner: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    one_line(submit(runner, "--workers", "2", "--time", "10", "--single-node", db=str(db), runs="runs"),
             "no experiments database")  # the queue is checked before anything is submitted
    assert not db.exists()
    added = runner.invoke(cli, ["queue", "add", "--db", str(db), "--steps", "5", "-q"])
    assert added.exit_code == 0, added.output
    one_line(submit(runner, "--workers", "2", "--time", "10", "--single-node", db=str(db), runs="runs"),
             "sbatch is not on PATH")
    one_line(runner.invoke(cli, ["slurm", "status", "--db", str(db)]), "squeue is not on PATH")
    one_line(runner.invoke(cli, ["slurm", "cancel"]), "squeue is not on PATH")
    one_line(runner.invoke(cli, ["slurm", "cancel", "--job", "12x"]), "--job '12x' is not a SLURM job id")
    with Queue.open(str(db)) as q:
        assert [e.status for e in q.list_experiments()] == ["queued"]


def test_slurm_ids_from_the_environment() -> None:
    assert slurm_task({}) is None
    array = slurm_task({"SLURM_JOB_ID": "107", "SLURM_ARRAY_JOB_ID": "100", "SLURM_ARRAY_TASK_ID": "7"})
    assert array is not None and (array.job_id, array.task, array.own_job_id) == ("100", 7, "107")
    single = slurm_task({"SLURM_JOB_ID": "55"})
    assert single is not None and (single.job_id, single.task) == ("55", None)


def test_slurm_answers_are_parsed() -> None:
    assert parse_job_id("4242\n") == "4242" and parse_job_id("4242;cluster2") == "4242"
    tasks = parse_squeue("12|1|RUNNING|0:41|1:00|node3\n12|0|PENDING|0:00|1:00|(BeginTime)\n9|N/A|RUNNING|1:00|5:00|n1\n")
    assert [(t.name, t.state, t.where) for t in tasks] == [
        ("9", "RUNNING", "n1"), ("12_0", "PENDING", "(BeginTime)"), ("12_1", "RUNNING", "node3")]
    assert [time_to_s(v) for v in ("1", "90", "1:30", "24:00:00", "2-00", "1-2:03", "1-00:00:05")] == [
        60, 5400, 90, 86400, 172800, 93780, 86405]


def test_shared_file_systems_are_told_from_local_ones() -> None:
    assert filesystem_of(Path("/home/alice/runs"), MOUNTS) == "nfs4"
    assert filesystem_of(Path("/home/local disk/x"), MOUNTS) == "ext4"
    assert filesystem_of(Path("/scratch/a/b/not-yet"), MOUNTS) == "lustre"
    check_runs_shared(Path("/scratch/runs"), mounts=MOUNTS)
    check_db_shared("sqlite:////home/alice/q.db", mounts=MOUNTS)
    check_db_shared(PG, mounts=MOUNTS)


def test_a_stop_signal_delivered_twice_at_once_counts_once() -> None:
    # SLURM signals every process of a job and the worker forwards the signal to its children as well:
    # the child must still checkpoint, not take the second copy for an impatient user's "stop now".
    seen: list[int] = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: seen.append(signum))
    try:
        flag = StopFlag()
        with flag.on_signals((signal.SIGUSR2,)):
            signal.raise_signal(signal.SIGUSR2)
            signal.raise_signal(signal.SIGUSR2)
            assert flag and flag.signal_name == "SIGUSR2" and seen == []
            flag._set_at -= StopFlag.REPEAT_S  # as if the first had come two seconds ago
            signal.raise_signal(signal.SIGUSR2)  # a real second request: the old handler gets it
            assert seen == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)
