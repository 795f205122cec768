"""benchmarks/gpu_check.py's CPU self-test, as if on the lent GPU machines: JAX only, no TensorFlow.

The script is what the first GPU machine runs; this runs its every stage on
the CPU at tiny sizes, in a Python where TensorFlow cannot be imported (see
tests/no_tensorflow/sitecustomize.py), and reads the report it writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIR = REPO.parent / "shared" / "bench"


@pytest.mark.skipif(not (REFERENCE_DIR / "reference_dcgan_jax.py").is_file(),
                    reason="the hand-written JAX reference (../shared/bench) is not beside this checkout")
def test_the_gpu_check_runs_every_stage_on_jax_without_tensorflow(tmp_path):
    pytest.importorskip("jax")
    asked = tmp_path / "tf-imports.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "tests" / "no_tensorflow"), str(REPO)]),
               GANLAB_TF_IMPORTS=str(asked))
    env.pop("KERAS_BACKEND", None)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu", "--out", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    report = json.loads((out / "gpu_check.json").read_text())
    assert proc.returncode == 0 and report["ok"], proc.stdout[-4000:] + proc.stderr[-4000:]

    environment = report["environment"]
    assert environment["keras_backend"] == "jax" and environment["platform"] == "cpu"
    assert environment["tensorflow_importable"] is False
    sweep = report["demo_sweep"]
    assert [r["status"] for r in sweep["runs"]] == ["succeeded"]
    assert sweep["runs"][0]["step"] == 6 and sweep["runs"][0]["fd"] > sweep["runs"][0]["fd_floor"] > 0
    speed = report["training_speed"]["summary"]
    assert speed["reference float32"]["median"] > 0 and speed["ganlab float32"]["median"] > 0
    assert speed["ganlab float32"]["ratio"] == pytest.approx(
        speed["ganlab float32"]["median"] / speed["reference float32"]["median"], rel=1e-6)
    # The 64x64 pair: the built-in dcgan against ganlab's own hand-written JAX step; the bench
    # refuses to report a ratio unless both sides count the same parameters.
    speed64 = report["training_speed_64"]
    assert speed64["pair"] == "dcgan64" and speed64["summary"]["ganlab float32"]["median"] > 0
    text = (out / "gpu_check.md").read_text()
    assert "## Training speed, DCGAN 64x64" in text
    assert "| dcgan-digits-non-saturating | succeeded | 6 |" in text and "| ganlab float32 |" in text
    pack = report["pack_speed"]["table"]
    assert [(r["size"], r["k"]) for r in pack] == [(16, 2)]
    assert all(r["pack"] > 0 and r["ratio"] == pytest.approx(r["pack"] / r["alone"], rel=1e-6) for r in pack)
    assert "| 16 | 2 |" in text
    assert report["per_gpu"]["refused_on_cpu"] is True and "Refused on the CPU as it should be: True" in text

    # Nothing of ganlab's asks for TensorFlow on the JAX path; Keras's own optional probe (seeding
    # TensorFlow's generator too when it is there) may, and finds it missing. The check's environment
    # probe ("<string>", python -c) asks on purpose, to report whether it is there.
    askers = {line.split("\t")[2] for line in asked.read_text().splitlines()} - {"<string>"} if asked.exists() else set()
    assert all(a.endswith(os.path.join("keras", "src", "utils", "module_utils.py")) for a in askers), askers


def test_an_unknown_stage_is_refused_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu", "--stages", "demo_sweep,warp",
                           "--out", str(tmp_path / "out")], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "unknown stage 'warp'; choose from demo_sweep, training_speed" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out" / "gpu_check.json").exists()


@pytest.mark.skipif(not (REFERENCE_DIR / "reference_dcgan_jax.py").is_file(),
                    reason="the hand-written JAX reference (../shared/bench) is not beside this checkout")
def test_chosen_stages_run_alone_and_the_report_is_written_as_they_end(tmp_path):
    pytest.importorskip("jax")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu", "--stages", "per_gpu",
                           "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    report = json.loads((out / "gpu_check.json").read_text())
    assert proc.returncode == 0 and report["ok"], proc.stdout[-3000:] + proc.stderr[-3000:]
    assert set(report) == {"mode", "ok", "environment", "per_gpu"}
    assert report["per_gpu"]["refused_on_cpu"] is True
