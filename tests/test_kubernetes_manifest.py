"""docs/kubernetes/workers-job.yaml: a Job whose pods are ganlab workers, checked against what the worker needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ganlab.cli import cli
from ganlab.worker.loop import STOP_GRACE_S

yaml = pytest.importorskip("yaml", reason="KUBERNETES MANIFEST TEST NOT RUN: pip install pyyaml (in the test extra)")

MANIFEST = Path(__file__).resolve().parents[1] / "docs" / "kubernetes" / "workers-job.yaml"


def documents() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    return {d["kind"]: d for d in docs}


def test_the_job_runs_n_workers_that_end_when_the_queue_is_empty() -> None:
    job = documents()["Job"]
    assert job["apiVersion"] == "batch/v1"
    spec = job["spec"]
    assert spec["parallelism"] >= 1 and "completions" not in spec  # the work-queue pattern
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert container["command"] == ["ganlab", "worker"]  # exec form: the worker is PID 1 and gets SIGTERM
    args = container["args"]
    assert "--until-empty" in args
    # The arguments are ones `ganlab worker` accepts (parsed by its own click command, nothing run).
    ctx = cli.commands["worker"].make_context("worker", list(args))
    assert ctx.params["until_empty"] is True and ctx.params["gpus"] == "auto"
    env = {e["name"]: e for e in container["env"]}
    assert env["GANLAB_DB"]["valueFrom"]["secretKeyRef"]["key"] == "url"  # no password in the manifest


def test_signals_and_storage_let_a_stopped_pod_resume_elsewhere() -> None:
    kinds = documents()
    job, claim = kinds["Job"], kinds["PersistentVolumeClaim"]
    pod = job["spec"]["template"]["spec"]
    # The worker gives a stopping experiment STOP_GRACE_S to checkpoint; the kubelet must wait longer.
    assert pod["terminationGracePeriodSeconds"] > STOP_GRACE_S
    assert "lifecycle" not in pod["containers"][0]  # a preStop hook would eat the grace period
    # Evictions and preemptions do not count against the Job (that needs restartPolicy Never).
    assert pod["restartPolicy"] == "Never"
    [rule] = job["spec"]["podFailurePolicy"]["rules"]
    assert rule["action"] == "Ignore" and rule["onPodConditions"] == [{"type": "DisruptionTarget"}]
    # The runs folder is one volume every pod mounts read-write, where --runs-dir points.
    args = pod["containers"][0]["args"]
    runs = args[args.index("--runs-dir") + 1]
    [mount] = pod["containers"][0]["volumeMounts"]
    assert mount["mountPath"] == runs
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
