"""Searches run by real workers: real processes, a real database, a tiny GAN trained for a few steps.

Each trial's values are drawn when a worker claims it; every evaluation goes
through the worker to the study's pruner; a pruned run ends ``pruned`` at its
step. Covered here: a random search with ASHA under one worker (SQLite), two
workers sharing one search on PostgreSQL, kill -9 of a worker mid-trial, and
a pruner's decision outliving the worker that took it.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from _store_db import fresh_pg_database
from click.testing import CliRunner
from test_worker import record, training_children_of, wait_for

from ganlab.cli import cli
from ganlab.store.models import utcnow
from ganlab.store.queue import Queue
from ganlab.tblog.read import read_hparams, read_scalars, read_text

TINY = ["--arch", "mlp", "--dataset", "digits", "--batch-size", "16", "--set", "size=8", "--set", "latent_dim=8",
        "--set", "eval_samples=64", "--set", "log_every=5", "--set", "sample_every=1000", "--no-build-check"]
SPACE = ["--set", "lr_g=log(1e-5,1e-2)", "--set", "hidden_units=int(8,32)"]


@pytest.fixture(autouse=True)
def _env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")


def ganlab(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def add(url: str, *args: str) -> list[int]:
    return [int(x) for x in ganlab("queue", "add", "--db", url, "-q", *TINY, *args).split()]


def worker(url: str, runs: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ganlab", "worker", "--db", url, "--runs-dir", str(runs),
                             "--gpus", "none", "--poll", "0.3", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def done(proc: subprocess.Popen[str], timeout: float = 900) -> str:  # generous: a shared 2-core CI box
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def show(url: str, study: str) -> dict:
    return json.loads(ganlab("study", "show", study, "--db", url, "--json"))


def test_a_random_search_with_asha_runs_to_the_end_and_names_its_best(tmp_path):
    steps = 120
    url = f"sqlite:///{tmp_path / 'q.db'}"
    # 120 steps, not 30: the pruner's verdict reaches a child by signal, and a toy trial on a fast CPU ran its
    # last 20 steps before the verdict came (it then ends succeeded, as it did run to the end).
    ids = add(url, *SPACE, "--steps", str(steps), "--set", "eval_every=10", "--set", "checkpoint_every=10",
              "--search", "random", "--trials", "6", "--prune", "asha", "--study", "s")
    assert len(ids) == 6
    before = show(url, "s")["trials"]
    assert all(t["params"] is None and t["status"] == "queued" for t in before), "nothing drawn before a claim"
    assert "s, trial 0 (its values are drawn when a worker claims it)" in ganlab("queue", "show", "--db", url, str(ids[0]))

    out = done(worker(url, tmp_path / "runs", "--until-empty"))
    study = show(url, "s")
    trials = study["trials"]
    assert [t["status"] for t in trials].count("succeeded") >= 1
    pruned = [t for t in trials if t["status"] == "pruned"]
    assert pruned, out
    for t in trials:
        assert t["status"] in ("succeeded", "pruned")
        assert 1e-5 <= t["params"]["lr_g"] <= 1e-2 and 8 <= t["params"]["hidden_units"] <= 32
        rec = record(url, t["id"])
        assert rec.config["train"]["lr_g"] == t["params"]["lr_g"]
        assert rec.config["architecture"]["params"]["hidden_units"] == t["params"]["hidden_units"]
        assert rec.attempts == 1
    assert len({t["params"]["lr_g"] for t in trials}) == 6
    for t in pruned:
        assert re.match(r"pruned by asha at step (10|30|90) \(fd ", t["stop_reason"]), t["stop_reason"]  # ASHA's rungs
        assert t["step"] < steps and f"pruned at step {t['step']}" in out
    succeeded = [t for t in trials if t["status"] == "succeeded"]
    best = min(succeeded, key=lambda t: t["fd"])
    assert study["best"]["id"] == best["id"] and study["best"]["fd"] == best["fd"]
    assert study["best"]["config"]["train"]["lr_g"] == best["params"]["lr_g"]

    # What TensorBoard shows: the drawn values as hyperparameters, and where a pruned run stopped.
    run = record(url, pruned[0]["id"]).run_dir
    hparams = read_hparams(run)["hparams"]
    assert math.isclose(hparams["train.lr_g"], pruned[0]["params"]["lr_g"])
    assert hparams["arch.hidden_units"] == pruned[0]["params"]["hidden_units"]
    assert read_scalars(run)["search/pruned_at_step"] == [(pruned[0]["step"], float(pruned[0]["step"]))]
    assert read_text(run)["stop_reason"][0][1] == pruned[0]["stop_reason"]

    table = ganlab("compare", "--db", url, "--study", "s")
    assert f"best: trial {study['best']['trial']} (experiment {best['id']})" in table
    assert "pruned at step" in table
    listing = ganlab("study", "list", "--db", url)
    assert "random" in listing and "asha" in listing and f"{len(pruned)} pruned" in listing


@pytest.mark.postgres
def test_two_workers_on_postgresql_draw_each_trial_once(tmp_path):
    for url in fresh_pg_database("ganlab_search"):
        add(url, *SPACE, "--steps", "20", "--set", "eval_every=10", "--search", "tpe", "--trials", "4",
            "--prune", "median", "--study", "pg")
        workers = [worker(url, tmp_path / "runs", "--until-empty") for _ in range(2)]
        outs = [done(w) for w in workers]
        trials = show(url, "pg")["trials"]
        assert sorted(t["trial"] for t in trials) == [0, 1, 2, 3]
        # The median pruner may stop a late trial (once 3 have finished) at its step-10 evaluation.
        assert all(t["status"] in ("succeeded", "pruned") for t in trials), outs
        assert len({(t["params"]["lr_g"], t["params"]["hidden_units"]) for t in trials}) == 4
        for t in trials:
            rec = record(url, t["id"])
            assert rec.attempts == 1 and rec.config["train"]["lr_g"] == t["params"]["lr_g"]
            stored = sorted(int(s) for s in t["values"])
            assert stored == ([10, 20] if t["status"] == "succeeded" else [10]), "each evaluation stored once"
        started = sum(o.count("started on CPU") for o in outs)
        assert started == 4, outs


def test_kill_9_mid_trial_resumes_it_with_the_values_it_drew(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    [exp_id] = add(url, *SPACE, "--steps", "300", "--set", "eval_every=20", "--set", "checkpoint_every=10",
                   "--search", "tpe", "--trials", "1", "--prune", "asha", "--study", "k")
    first = worker(url, tmp_path / "runs", "--until-empty", "--lease", "3")
    run_dir = Path(wait_for(lambda: record(url, exp_id).run_dir, what="the claim"))
    drawn = record(url, exp_id).config
    wait_for(lambda: show(url, "k")["trials"][0]["values"], what="the first evaluation")
    victims = [first.pid, *training_children_of(first.pid)]
    for pid in reversed(victims):
        os.kill(pid, signal.SIGSTOP)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    first.communicate()
    assert (run_dir / "checkpoints" / "latest.npz").is_file()

    out = done(worker(url, tmp_path / "runs", "--until-empty", "--lease", "3"))
    rec = record(url, exp_id)
    assert rec.status == "succeeded" and rec.step == 300 and rec.attempts == 2, out
    assert rec.config == drawn, "a reclaimed trial keeps the values it drew"
    assert "resumed from its checkpoint" in out
    trial = show(url, "k")["trials"][0]
    assert sorted(int(s) for s in trial["values"]) == list(range(20, 301, 20))


def test_a_pruning_decision_outlives_the_worker_that_took_it(tmp_path):
    """The worker that decided dies before its run ends: whoever reclaims the lease ends it as pruned."""
    url = f"sqlite:///{tmp_path / 'q.db'}"
    ids = add(url, "--steps", "30", "--set", "eval_every=10", "--set", "lr_g=1e-4,2e-4,3e-4", "--prune", "asha",
              "--study", "g")
    with Queue.open(url) as q:
        lead = q.claim("w1", lease_s=60)
        assert lead is not None and lead.id == ids[0]
        assert not q.report_objective(lead.id, lead.token, 10, {"fd": 5.0}).prune
        q.finish(lead.id, lead.token, "succeeded", metrics={"fd": 4.0}, step=30)
        loser = q.claim("w2", lease_s=1)
        assert loser is not None
        decision = q.report_objective(loser.id, loser.token, 10, {"fd": 50.0, "kid": 1.0})
        assert decision.prune and decision.reason.startswith("pruned by asha at step 10 (fd 50 vs 5")
        # w2 dies here (kill -9: nothing more is written); its lease runs out.
        reclaimed = q.reclaim_expired(now=utcnow() + timedelta(seconds=5))
        assert [(r.id, r.status) for r in reclaimed] == [(loser.id, "pruned")]
        rec = q.get(loser.id)
        assert rec.status == "pruned" and rec.stop_reason == decision.reason
        nxt = q.claim("w3", lease_s=60)
        assert nxt is not None and nxt.id == ids[2], "the pruned trial is not run again"
    assert "pruned at step 0" in ganlab("study", "show", "g", "--db", url)
    shown = ganlab("queue", "show", "--db", url, str(loser.id))
    assert "g, trial 1\n" in shown and "pruned by asha at step 10" in shown


def test_a_malformed_study_fails_its_trial_at_the_claim_and_the_claim_goes_on(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    ids = add(url, *SPACE, "--steps", "20", "--search", "random", "--trials", "1", "--study", "bad")
    [plain] = add(url, "--steps", "20")
    from sqlalchemy import update

    from ganlab.store.models import Study

    with Queue.open(url) as q:
        with q._tx(write=True) as conn:  # a row edited by someone: the space no longer parses
            conn.execute(update(Study).values(space={"dims": [{"key": "lr_g"}]}))
        claim = q.claim("w", lease_s=60)
        assert claim is not None and claim.id == plain
        failed = q.get(ids[0])
    assert failed.status == "failed" and failed.error.startswith("could not sample this trial: study 'bad' is malformed")


def test_study_views_print_stored_names_as_text(tmp_path):
    """The queue is shared: a trial's stored name and run dir cannot drive the terminal from study show or compare."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'q.db'}"
    [first, *_] = add(url, "--steps", "30", "--set", "lr_g=1e-4,2e-4", "--prune", "asha", "--study", "h")
    with Queue.open(url) as q:
        lead = q.claim("w1", lease_s=60)
        assert lead is not None and lead.id == first
        q.finish(lead.id, lead.token, "succeeded", metrics={"fd": 4.0}, step=30)
    hostile = "x\x1b]0;pwned\x07[bold red]y"
    conn = sqlite3.connect(tmp_path / "q.db")
    conn.execute("UPDATE experiments SET name = ?, run_dir = ? WHERE id = ?", (hostile, hostile, first))
    conn.commit()
    conn.close()
    for out in (ganlab("study", "show", "h", "--db", url), ganlab("compare", "--study", "h", "--db", url)):
        assert "\x1b" not in out and "\x07" not in out, out
    shown = ganlab("study", "show", "h", "--db", url)
    assert "[bold red]y" in shown  # markup shown as the text it is
