"""``ganlab slurm`` on a real single-node SLURM cluster with a PostgreSQL queue.

The cluster (tests/_slurm_cluster.py) is started once for the module; each
test submits real job arrays with ``ganlab slurm submit`` and reads back what
a user would: the queue's rows, squeue and scontrol, the tasks' log files.
Tiny experiments (a two-layer MLP pair on 8x8 digits) keep the whole module
near a minute and a half on two cores; the time-limit case uses SLURM's
smallest limit, one minute.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from _slurm_cluster import Cluster, slurm_cluster  # noqa: F401 - the session fixture
from _store_db import fresh_pg_database
from click.testing import CliRunner, Result
from test_worker import PLUGINS, enqueue, record, wait_for

from ganlab.cli import cli
from ganlab.store import Queue

pytestmark = [pytest.mark.postgres, pytest.mark.slurm]


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from fresh_pg_database("ganlab_slurm")  # skips loudly when no server runs


@pytest.fixture
def env(slurm_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:  # noqa: F811
    """What the CLI runs with; sbatch hands it on to the jobs (the feature-net cache is shared by all)."""
    yield {"SLURM_CONF": slurm_cluster.env["SLURM_CONF"], "TF_CPP_MIN_LOG_LEVEL": "3",
           "GANLAB_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "cache")}
    slurm_cluster.cancel_all()  # a failed test leaves no worker running into the next one


def ganlab(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, ["--plugins-dir", str(PLUGINS), *args], env=env)


def submit(env: dict[str, str], url: str, runs: Path, *args: str) -> str:
    result = ganlab(env, "slurm", "submit", "--db", url, "--runs-dir", str(runs), "--single-node", "--lease", "6",
                    "--poll", "0.5", "--json", *args)
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["job_id"])


def squeue(cluster: Cluster, job: str) -> dict[str, str]:
    """Task -> state of an array's tasks still known to squeue."""
    out = cluster.run("squeue", "-h", "-r", "-j", job, "-o", "%i %T", check=False).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def job_field(cluster: Cluster, task: str, name: str) -> str:
    out = cluster.run("scontrol", "show", "job", task).stdout
    match = re.search(rf"\b{name}=(\S+)", out)
    assert match, out
    return match.group(1)


def requeued(cluster: Cluster, task: str) -> bool:
    """Requeued once: pending again, or already started again (Restarts counts the requeues)."""
    return job_field(cluster, task, "Restarts") == "1"


def holder(url: str, exp_id: int) -> tuple[str, int | None] | None:
    """The SLURM job and task of the worker running ``exp_id`` now, or None while it is not running."""
    with Queue.open(url) as q:
        exp = q.get(exp_id)
        if exp.status != "running":
            return None
        worker = next((w for w in q.list_workers() if w.worker_id == exp.worker_id), None)
    return (worker.slurm_job_id, worker.slurm_task) if worker is not None and worker.slurm_job_id else None


def resumed_at(log: Path, exp_id: int) -> list[int]:
    """The steps a task's log says experiment ``exp_id`` resumed from, in order (the log spans requeues)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return [int(s) for s in re.findall(rf"#{exp_id} .*resumed from its checkpoint at step (\d+)", text)]


def test_an_array_of_two_workers_runs_each_experiment_once(slurm_cluster, env, pg_url, tmp_path):  # noqa: F811
    ids = enqueue(pg_url, "--steps", "10", "--seeds", "0,1,2,3")
    runs = tmp_path / "runs"
    job = submit(env, pg_url, runs, "--workers", "2", "--time", "10", "--name", "ganlab-once")
    wait_for(lambda: all(record(pg_url, i).status == "succeeded" for i in ids), timeout=150, what="4 successes")
    assert [record(pg_url, i).attempts for i in ids] == [1, 1, 1, 1]
    with Queue.open(pg_url) as q:
        workers = q.list_workers()
    assert sorted((w.slurm_job_id, w.slurm_task) for w in workers) == [(job, 0), (job, 1)]
    shown = ganlab(env, "status", "--db", pg_url, "--all-workers")
    assert shown.exit_code == 0 and f"{job}_0" in shown.stdout and f"{job}_1" in shown.stdout, shown.output
    listing = json.loads(ganlab(env, "status", "--db", pg_url, "--all-workers", "--json").stdout)
    assert sorted(w["slurm_task"] for w in listing["workers"]) == [0, 1]
    # --until-empty: both tasks end by themselves, each after its share of the queue.
    wait_for(lambda: not squeue(slurm_cluster, job), timeout=30, what="the array to end")
    logs = sorted((runs / "slurm").glob(f"{job}_*.out"))
    assert len(logs) == 2
    started = sum(len(re.findall(r"#\d+ \S+: started on CPU", p.read_text())) for p in logs)
    assert started == 4


def test_warning_signals_release_resume_and_requeue(slurm_cluster, env, pg_url, tmp_path):  # noqa: F811
    """A time limit's warning and a manual SIGUSR1: released, attempts kept, resumed elsewhere, task requeued."""
    every = 10
    [exp] = enqueue(pg_url, "--steps", "100000", "--set", f"checkpoint_every={every}", "--set", "eval_every=1000000")
    runs = tmp_path / "runs"
    # A task with SLURM's smallest time limit (1 minute), warned 30 s before it, takes the experiment first;
    # a second array's task (10 minutes) waits beside it for the experiment to come back to the queue.
    # One experiment for two workers: --no-prestart, a process started for a next experiment would idle.
    short = submit(env, pg_url, runs, "--workers", "1", "--time", "1", "--warn", "30", "--name", "ganlab-short",
                   "--no-prestart")
    wait_for(lambda: holder(pg_url, exp) == (short, 0), timeout=40, what="the short task's claim")
    long = submit(env, pg_url, runs, "--workers", "1", "--time", "10", "--name", "ganlab-long", "--no-prestart")

    # The time limit's warning: the short task hands the experiment back and is requeued by its worker.
    wait_for(lambda: holder(pg_url, exp) == (long, 0), timeout=70, what="the long task to take the experiment over")
    assert record(pg_url, exp).attempts == 1  # the hand-back did not count as a failed attempt
    short_log, long_log = (runs / "slurm" / f"{job}_0.out" for job in (short, long))
    assert "SIGUSR1" in short_log.read_text() and f"requeueing SLURM task {short}_0" in short_log.read_text()
    wait_for(lambda: requeued(slurm_cluster, f"{short}_0"), timeout=20, what="the requeue")

    # Mid-experiment, the long task is signalled by hand: same hand-back, same requeue.
    base = record(pg_url, exp).step  # the short task's last report: the long one resumes at or below it
    wait_for(lambda: record(pg_url, exp).step >= base + 3 * every, timeout=60, what="training on the long task")
    shown = ganlab(env, "slurm", "status", "--db", pg_url, "--name", "ganlab-long", "--json")
    assert shown.exit_code == 0, shown.output
    [row] = json.loads(shown.stdout)
    assert (row["task"], row["state"], row["experiment"]) == (f"{long}_0", "RUNNING", exp) and row["step"] > 0
    assert f"{short}_0" in ganlab(env, "slurm", "status", "--db", pg_url, "--job", short).stdout
    slurm_cluster.run("scancel", "--batch", "--signal=USR1", f"{long}_0")
    stopped_at = int(wait_for(lambda: re.findall(rf"#{exp} .*stopped at step (\d+), back in the queue",
                                                 long_log.read_text()), timeout=30, what="the release")[0])
    wait_for(lambda: requeued(slurm_cluster, f"{long}_0"), timeout=20, what="the second requeue")

    # A requeued job waits for its old credential to expire (cred_expire: 5 s on the test cluster, 120 s
    # by default), then starts again. Whichever fresh worker (the long task's, or the short one's, back
    # under a fresh one-minute limit) claims first takes the experiment up from the checkpoint written
    # when the long task was signalled: at most one checkpoint interval is lost (none, here).
    logs = {job: runs / "slurm" / f"{job}_0.out" for job in (short, long)}
    seen = {job: len(resumed_at(log, exp)) for job, log in logs.items()}

    def new_resumes() -> list[int]:
        return [step for job, log in logs.items() for step in resumed_at(log, exp)[seen[job]:]]

    second = wait_for(new_resumes, timeout=90, what="the resume after the requeue")[0]
    assert stopped_at - every <= second <= stopped_at + every, (stopped_at, second)
    assert record(pg_url, exp).attempts == 1  # two hand-backs, neither counted
    wait_for(lambda: "restart count 1" in short_log.read_text(), timeout=40, what="the short task's second start")

    # `ganlab slurm cancel`: pending tasks go, running workers checkpoint, hand back and stop (no requeue).
    for name in ("ganlab-short", "ganlab-long"):
        stopped = ganlab(env, "slurm", "cancel", "--name", name)
        # The short task may have been warned of its time limit and requeued itself just before.
        assert stopped.exit_code == 0 and re.search(r"1 running worker\(s\) asked|1 pending", stopped.stdout), \
            stopped.output
    wait_for(lambda: not squeue(slurm_cluster, short) and not squeue(slurm_cluster, long), timeout=40,
             what="both arrays to end")
    final = record(pg_url, exp)
    assert final.status == "queued" and final.attempts == 0, (final.status, final.attempts)
    assert final.step >= second
    assert "nothing to cancel" in ganlab(env, "slurm", "cancel", "--name", "ganlab-short").stdout


def test_sbatch_refusals_are_one_line_and_submit_nothing(slurm_cluster, env, pg_url, tmp_path):  # noqa: F811
    enqueue(pg_url, "--steps", "5")
    runs = tmp_path / "runs"
    base = ["slurm", "submit", "--db", pg_url, "--runs-dir", str(runs), "--single-node", "--time", "5"]
    for args, fragment in (
        (["--workers", "2", "--partition", "nosuch"], "sbatch refused: "),
        (["--workers", "0"], "--workers 0: give at least 1 worker"),
        (["--workers", "2", "--sbatch", "constraint=nosuchfeature"], "sbatch refused: "),
    ):
        result = ganlab(env, *base, *args)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
        assert fragment in lines[0], lines[0]
    assert "partition" in ganlab(env, *base, "--workers", "2", "--partition", "nosuch").output.lower()
    assert slurm_cluster.run("squeue", "-h", "-o", "%i").stdout.strip() == ""
    local = ganlab(env, "slurm", "submit", "--db", str(tmp_path / "q.db"), "--runs-dir", str(runs), "--workers", "2",
                   "--time", "5")
    assert local.exit_code == 1 and "only this machine sees" in local.output
    assert slurm_cluster.run("squeue", "-h", "-o", "%i").stdout.strip() == ""
