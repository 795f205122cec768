"""``ganlab train`` and ``ganlab sample`` as a user runs them: exit codes, messages, files, signals."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from training_helpers import FAST, PLUGINS

from ganlab.cli import cli
from ganlab.tblog.read import read_hparams
from ganlab.training.checkpoint import load_checkpoint
from ganlab.training.run_dir import RunDir

REPO = Path(__file__).resolve().parents[1]
SETS = [arg for k, v in FAST.items() if k != "batch_size" for arg in ("--set", f"{k}={v}")]


# Every test here may train a feature net: one cache per module (conftest.py).
pytestmark = pytest.mark.usefixtures("feature_net_cache")


def ganlab(*args: str):
    return CliRunner().invoke(cli, ["--plugins-dir", str(PLUGINS), *args])


def tiny_train_args(run_dir: Path, *extra: str) -> list[str]:
    return ["train", "--arch", "tiny-cond", "--dataset", "tiny-bars", "--batch-size", "16", *SETS,
            "--run-dir", str(run_dir), "-q", *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    result = ganlab(*tiny_train_args(run_dir, "--steps", "6", "--set", "ema=0.5"))
    assert result.exit_code == 0, result.output
    return run_dir, result


def test_train_runs_one_experiment_and_reports_it(trained):
    run_dir, result = trained
    assert result.stdout.startswith("succeeded at step 6  fd ")
    config = RunDir(run_dir).load_config()
    assert config.architecture == "tiny-cond" and config.train["steps"] == 6 and config.train["ema"] == 0.5
    assert read_hparams(run_dir)["status"] == "success"


def test_train_refuses_to_reuse_a_run_dir_and_resumes_from_it_alone(trained):
    run_dir, _ = trained
    again = ganlab(*tiny_train_args(run_dir, "--steps", "6", "--set", "ema=0.5"))
    assert again.exit_code == 1
    assert again.stderr.strip().splitlines() == [
        f"Error: run dir {run_dir} already holds a run; pass --resume to continue it, or choose another --run-dir"
    ]
    resumed = ganlab("train", "--resume", "--run-dir", str(run_dir), "-q")
    # Resumed with every step done: it succeeds again, and says it trained nothing this time.
    assert resumed.exit_code == 0 and resumed.stdout.startswith("already complete at step 6, nothing left to train")


def test_train_validates_like_the_queue(tmp_path):
    sweep = ganlab(*tiny_train_args(tmp_path / "x", "--set", "lr_g=1e-4,2e-4"))
    assert sweep.exit_code == 1 and "lists several values; this runs one experiment" in sweep.stderr
    typo = ganlab(*tiny_train_args(tmp_path / "x", "--set", "lr_gg=1e-4"))
    assert typo.exit_code == 1 and "did you mean 'lr_g'" in typo.stderr
    nothing = ganlab("train", "--resume", "--run-dir", str(tmp_path / "x"))
    assert nothing.exit_code == 1 and "holds no run to resume (no config.json)" in nothing.stderr
    assert not (tmp_path / "x").exists()
    # A run that cannot start (here: a one-image dataset) says why in one line and leaves the directory free.
    broken = ganlab(*tiny_train_args(tmp_path / "y", "--set", "n=1"))
    assert broken.exit_code == 1 and broken.stderr.strip().splitlines() == [
        "Error: dataset 'tiny-bars' has 1 image(s); training needs at least 2"
    ]
    assert not (tmp_path / "y" / "config.json").exists()


def test_train_runs_a_resolved_config_file(trained, tmp_path):
    run_dir, _ = trained
    result = ganlab("train", "--config-file", str(run_dir / "config.json"), "--run-dir", str(tmp_path / "copy"), "-q")
    assert result.exit_code == 0, result.output
    assert RunDir(tmp_path / "copy").load_config() == RunDir(run_dir).load_config()
    mixed = ganlab("train", "--config-file", str(run_dir / "config.json"), "--steps", "9")
    assert mixed.exit_code == 1 and "--config-file cannot be combined with --steps" in mixed.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"architecture": {"name": "tiny", "params": {}}}))
    broken = ganlab("train", "--config-file", str(bad))
    assert broken.exit_code == 1 and "is not a ganlab config" in broken.stderr


def test_a_backend_keras_cannot_switch_to_is_a_one_line_error(tmp_path):
    import keras

    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    result = ganlab(*tiny_train_args(tmp_path / "r", "--backend", other))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"needs the {other!r} Keras backend" in lines[0]


EXPORT_CHECK = textwrap.dedent(
    """
    import sys, numpy as np, keras
    model = keras.saving.load_model(sys.argv[1])
    z = np.load(sys.argv[2])
    images = model.predict_on_batch([z, np.arange(len(z), dtype="int32") % 3])
    np.save(sys.argv[3], np.asarray(images))
    """
)


def test_sample_writes_a_grid_and_exports_a_generator_that_loads_elsewhere(trained, tmp_path):
    run_dir, _ = trained
    grid, model = tmp_path / "grid.png", tmp_path / "gen.keras"
    result = ganlab("sample", str(run_dir), "-n", "12", "-o", str(grid), "--ncols", "4", "--export", str(model))
    assert result.exit_code == 0, result.output
    assert "wrote 12 samples from step 6 (latest, EMA)" in result.stdout
    with Image.open(grid) as im:
        # 3 rows x 4 columns of 8x8 tiles with 2-pixel padding.
        assert im.mode == "L" and im.size == (4 * 8 + 5 * 2, 3 * 8 + 4 * 2)

    from ganlab.registry import load_plugins
    from ganlab.training.export import load_generator

    gen = load_generator(run_dir, load_plugins(PLUGINS))
    z = np.random.default_rng(1).standard_normal((5, gen.latent_dim)).astype("float32")
    expected = np.asarray(gen.model.predict_on_batch([z, np.arange(5, dtype="int32") % 3]))
    np.save(tmp_path / "z.npy", z)
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    proc = subprocess.run([sys.executable, "-c", EXPORT_CHECK, str(model), str(tmp_path / "z.npy"), str(tmp_path / "out.npy")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    images = np.load(tmp_path / "out.npy")
    assert images.shape == (5, 8, 8, 1) and np.abs(images).max() <= 1.0
    np.testing.assert_allclose(images, expected, rtol=0, atol=1e-5)

    best = ganlab("sample", str(run_dir), "-n", "4", "-o", str(tmp_path / "best.png"), "--checkpoint", "best")
    assert best.exit_code == 0 and (tmp_path / "best.png").is_file()
    missing = ganlab("sample", str(tmp_path / "nothing"), "-o", str(tmp_path / "x.png"))
    assert missing.exit_code == 1 and "holds no run (no config.json)" in missing.stderr


def test_ctrl_c_writes_a_checkpoint_and_exits_cleanly(tmp_path):
    run_dir = tmp_path / "my run"  # a space: the printed resume command must still be one argument
    args = [sys.executable, "-m", "ganlab", "--plugins-dir", str(PLUGINS), "train", "--arch", "tiny",
            "--dataset", "tiny-bars", "--steps", "1000000", "--batch-size", "16", *SETS,
            "--run-dir", str(run_dir)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line or line.startswith("step "):  # the first progress line: training is under way
                break
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()

    assert proc.returncode == 4, stderr[-2000:]
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("stopped on SIGINT at step ") and "ganlab train --resume --run-dir" in last
    assert shlex.split(last.split("continue with: ")[1]) == ["ganlab", "train", "--resume", "--run-dir", str(run_dir)]
    step = int(last.split("at step ")[1].split(",")[0])
    assert step > 0
    assert load_checkpoint(RunDir(run_dir).checkpoint("latest"))[1]["step"] == step
    # What a worker's child reports on the same stop: tests/test_child_main.py.


def test_cli_reference_documents_train_and_sample_options():
    from ganlab.cli.sample_cmd import sample
    from ganlab.cli.train_cmd import train

    doc = (REPO / "docs" / "cli.md").read_text()
    for command in (train, sample):
        assert f"## ganlab {command.name}" in doc
        for param in command.params:
            if getattr(param, "hidden", False):
                continue
            for opt in param.opts:
                if opt.startswith("-"):
                    assert f"`{opt}" in doc or f" {opt}" in doc, (command.name, opt)
