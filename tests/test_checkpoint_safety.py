"""Damaged checkpoints and file modes, on the files of a real short training run.

A checkpoint truncated or corrupted after it was written (a full disk, a copy
cut short) gives one clear error in ``ganlab sample``; a resume falls back to
the newest intact checkpoint, and refuses, changing nothing, when none is left.
Checkpoints and cached feature nets get the permissions of the user's umask,
like every other file of a run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from training_helpers import PLUGINS, tiny_config, tiny_registry

from ganlab.cli import cli
from ganlab.training import checkpoint as ck
from ganlab.training import train
from ganlab.training.report import BaseReporter

REPO = Path(__file__).resolve().parents[1]
RUN_UMASK = 0o027  # not the usual 022: proves the files follow the umask rather than a fixed mode


@pytest.fixture(scope="module")
def registry():
    return tiny_registry()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Iterator[Path]:
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("featurenets")
    mp.setenv("GANLAB_CACHE_DIR", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="module")
def trained(registry, cache_dir, tmp_path_factory) -> Path:
    """Six steps, a checkpoint every three: latest.npz at 6, previous.npz at 3, and best.npz."""
    run_dir = tmp_path_factory.mktemp("run") / "run"
    old = os.umask(RUN_UMASK)
    try:
        result = train(tiny_config(registry, steps=6), run_dir, registry=registry)
    finally:
        os.umask(old)
    assert result.status == "succeeded", result.traceback
    return run_dir


@pytest.fixture()
def run(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained run for one test to damage."""
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def flip_a_byte_of_weights(path: Path) -> None:
    """Corrupt one byte inside the largest array's data, leaving the zip's structure whole."""
    with zipfile.ZipFile(path) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    # Past the local header (30 bytes + name + extra) and the .npy header: inside the numbers.
    data[info.header_offset + 30 + len(info.filename) + info.file_size // 2 + 200] ^= 0xFF
    path.write_bytes(bytes(data))


def step_of(path: Path) -> int:
    return int(ck.load_checkpoint(path)[1]["step"])


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class StartsAt(BaseReporter):
    def __init__(self) -> None:
        self.start: int | None = None

    def on_start(self, start_step: int, total_steps: int) -> None:
        self.start = start_step


def test_a_run_keeps_the_checkpoint_before_the_latest(trained: Path) -> None:
    assert step_of(ck.checkpoint_path(trained, "latest")) == 6
    assert step_of(ck.checkpoint_path(trained, "previous")) == 3


@pytest.mark.parametrize("damage", [truncate, flip_a_byte_of_weights], ids=["truncated", "corrupted"])
def test_sample_on_a_damaged_checkpoint_says_so_in_one_line(run: Path, tmp_path: Path, damage) -> None:
    latest = ck.checkpoint_path(run, "latest")
    damage(latest)
    before = snapshot(run)
    out = tmp_path / "grid.png"
    proc = subprocess.run(
        [sys.executable, "-m", "ganlab", "--plugins-dir", str(PLUGINS), "sample", str(run), "-o", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"Error: checkpoint {latest} is damaged or incomplete (")
    assert "try --checkpoint previous (step 3)" in lines[0]
    assert not out.exists() and snapshot(run) == before

    # The hint works.
    ok = CliRunner().invoke(cli, ["--plugins-dir", str(PLUGINS), "sample", str(run), "-o", str(out),
                                  "--checkpoint", "previous"])
    assert ok.exit_code == 0, ok.output
    assert "from step 3 (previous" in ok.stdout and out.is_file()


def test_resume_falls_back_to_the_previous_checkpoint(run: Path, registry) -> None:
    latest, previous = ck.checkpoint_path(run, "latest"), ck.checkpoint_path(run, "previous")
    ck.checkpoint_path(run, "best").unlink()  # else the later of previous and best is chosen
    truncate(latest)
    reporter = StartsAt()
    result = train(tiny_config(registry, steps=6), run, resume=True, reporter=reporter, registry=registry)
    assert result.status == "succeeded" and result.step == 6, result.traceback
    assert reporter.start == 3
    assert any(w.startswith(f"resuming from {previous} at step 3: checkpoint {latest} is damaged or incomplete")
               and "renamed to latest.npz.damaged" in w for w in result.warnings), result.warnings
    # The damaged file is kept aside, never rotated into previous.npz; the run wrote a new latest one.
    assert (run / "checkpoints" / "latest.npz.damaged").is_file()
    assert step_of(latest) == 6 and step_of(previous) == 3
    # The evaluation logged at step 6 before was dropped and logged again, once.
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [3, 6]


def test_resume_with_no_intact_checkpoint_fails_and_changes_nothing(run: Path) -> None:
    for which in ck.RESUME_FROM:
        truncate(ck.checkpoint_path(run, which))
    before = snapshot(run)
    result = CliRunner().invoke(cli, ["--plugins-dir", str(PLUGINS), "train", "--resume", "--run-dir", str(run), "-q"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].startswith(f"Error: no intact checkpoint to resume {run} from: ")
    for which in ck.RESUME_FROM:
        assert f"checkpoint {ck.checkpoint_path(run, which)} is damaged or incomplete" in lines[0]
    assert lines[0].endswith(f"nothing was changed. To train it again from step 0, move {run / 'checkpoints'} aside")
    assert snapshot(run) == before


def test_checkpoints_and_feature_nets_follow_the_umask(trained: Path, cache_dir: Path) -> None:
    # The run was written under umask 027: every file 0640, none 0600 as mkstemp made checkpoints.
    modes = {p.name: p.stat().st_mode & 0o777 for p in [*trained.rglob("*"), *cache_dir.rglob("*")] if p.is_file()}
    assert {"latest.npz", "previous.npz", "best.npz", "config.json"} <= modes.keys()
    assert any(name.endswith(".npz") and name not in ("latest.npz", "previous.npz", "best.npz") for name in modes)
    assert {name: mode for name, mode in modes.items() if mode != 0o640} == {}


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)],
                         ids=["umask022", "umask027", "umask077"])
def test_a_checkpoint_gets_the_umask_mode(tmp_path: Path, umask: int, mode: int) -> None:
    path = ck.checkpoint_path(tmp_path, "latest")
    old = os.umask(umask)
    try:
        for step in (1, 2):  # the second write also keeps the first as previous.npz
            ck.save_checkpoint(path, {"w/0000": np.full(3, step)}, {"step": step})
    finally:
        os.umask(old)
    assert {p.name: p.stat().st_mode & 0o777 for p in path.parent.iterdir()} == {"latest.npz": mode, "previous.npz": mode}
    assert step_of(path) == 2 and step_of(path.with_name("previous.npz")) == 1


def test_a_truncated_cached_feature_net_is_trained_again(tmp_path: Path) -> None:
    from ganlab.metrics import FeatureNetConfig
    from ganlab.metrics.featurenet import load_or_train

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (120, 8, 8, 1), dtype=np.uint8)
    labels = rng.integers(0, 2, 120)
    split = (np.arange(100), np.arange(100, 120))
    config = FeatureNetConfig(hidden=(8,), max_iter=5)
    assert not load_or_train(images, labels, *split, config, tmp_path).from_cache
    [weights] = tmp_path.glob("*.npz")
    truncate(weights)  # a zip cut short: BadZipFile, which the cache used to let through
    again = load_or_train(images, labels, *split, config, tmp_path)
    assert not again.from_cache and load_or_train(images, labels, *split, config, tmp_path).from_cache
