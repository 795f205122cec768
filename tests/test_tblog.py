"""TensorBoard logging: what ganlab writes, read back with TensorBoard's own reader and HParams backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganlab.tblog import RunWriter, image_grid, save_png, to_uint8
from ganlab.tblog.read import read_hparams, read_image, read_images, read_scalars, read_text
from ganlab.tblog.writer import STATUS_FILE_SUFFIX

REPO = Path(__file__).resolve().parents[1]


def _event_files(logdir: Path) -> list[str]:
    return sorted(n for n in os.listdir(logdir) if "tfevents" in n)


# ----------------------------------------------------------------------- grid


def test_grid_is_near_square_and_tiles_each_image_in_place():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(7, 5, 4, 3)).astype(np.float32)
    grid = image_grid(images, pad=2, pad_value=9)
    # 7 images -> 3 columns, 3 rows; each cell is the tile plus a 2-pixel gap.
    assert grid.shape == (2 + 3 * (5 + 2), 2 + 3 * (4 + 2), 3) and grid.dtype == np.uint8
    expected = to_uint8(images)
    for i in range(7):
        r, c = divmod(i, 3)
        top, left = 2 + r * 7, 2 + c * 6
        np.testing.assert_array_equal(grid[top : top + 5, left : left + 4], expected[i])
    # The unused last two cells and every gap keep the border value.
    assert (grid[2 + 2 * 7 :, 2 + 6 :] == 9).all()
    assert (grid[:2] == 9).all() and (grid[:, :2] == 9).all()


def test_grid_scaling_channels_and_columns():
    assert to_uint8(np.array([-1.0, 0.0, 1.0, 3.0, np.nan])).tolist() == [0, 128, 255, 255, 0]
    grey = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 1)
    grid = image_grid(grey, ncols=1, pad=0)
    assert grid.shape == (6, 3, 1)
    np.testing.assert_array_equal(grid[3:], grey[1])
    assert image_grid(grey, ncols=10, pad=1).shape == (5, 9, 1)  # never wider than the batch
    with pytest.raises(ValueError, match="C 1 or 3"):
        image_grid(np.zeros((2, 4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="uint8 or float"):
        image_grid(np.zeros((2, 4, 4, 1), np.int32))


def test_save_png_round_trips(tmp_path):
    from PIL import Image

    grid = image_grid(np.random.default_rng(1).integers(0, 256, (4, 6, 6, 3), dtype=np.uint8))
    save_png(grid, tmp_path / "g.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "g.png")), grid)
    assert os.listdir(tmp_path) == ["g.png"]  # no temporary left behind


# --------------------------------------------------------------- round trips


def test_scalars_images_text_round_trip(tmp_path):
    grid = image_grid(np.random.default_rng(2).uniform(-1, 1, (5, 8, 8, 1)))
    with RunWriter(tmp_path) as w:
        for step in range(0, 50, 10):
            w.scalars({"loss/d": 0.5 * step, "loss/g": -1.0 / (step + 1)}, step)
        w.scalar("fd", 12.375, 40)
        w.image("samples", grid, 20)
        w.image("samples", 255 - grid, 40)
        w.text("config", "**lr** = `2e-4`", 0)
    scalars = read_scalars(tmp_path)
    assert sorted(scalars) == ["fd", "loss/d", "loss/g"]
    assert scalars["loss/d"] == [(s, 0.5 * s) for s in range(0, 50, 10)]
    assert [s for s, _ in scalars["loss/g"]] == [0, 10, 20, 30, 40]
    np.testing.assert_allclose([v for _, v in scalars["loss/g"]], [-1.0 / (s + 1) for s in range(0, 50, 10)], rtol=1e-6)
    assert scalars["fd"] == [(40, 12.375)]
    assert read_images(tmp_path) == {"samples": [20, 40]}
    np.testing.assert_array_equal(read_image(tmp_path, "samples", 20), grid)
    np.testing.assert_array_equal(read_image(tmp_path, "samples"), 255 - grid)
    assert read_text(tmp_path) == {"config": [(0, "**lr** = `2e-4`")]}


def test_writer_rejects_bad_input_and_use_after_close(tmp_path):
    w = RunWriter(tmp_path)
    with pytest.raises(ValueError, match="uint8"):
        w.image("x", np.zeros((4, 4, 3), np.float32), 0)
    with pytest.raises(ValueError, match="status should be one of"):
        w.hparams_end("done")
    with pytest.raises(TypeError, match="hparam 'opt'"):
        w.hparams_start({"opt": [1, 2]}, ["fd"])
    w.close()
    w.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        w.scalar("a", 1.0, 0)


def test_hparams_session_and_status(tmp_path):
    with RunWriter(tmp_path) as w:
        w.hparams_start(
            {"arch": "dcgan", "lr": np.float32(2e-4), "batch": 64, "spectral": True},
            ["fd", "kid"],
            group_name="sweep-1",
            start_time=1000.0,
        )
        w.hparams_end("running")
        w.scalar("fd", 3.0, 10)
        w.hparams_end("failure", end_time=2000.0)
    got = read_hparams(tmp_path)
    assert got["hparams"] == {"arch": "dcgan", "batch": 64.0, "lr": pytest.approx(2e-4), "spectral": True}
    assert got["group_name"] == "sweep-1" and got["start_time"] == 1000.0
    # TensorBoard keeps the first session end it reads; the writer keeps exactly one.
    assert (got["status"], got["end_time"]) == ("failure", 2000.0)
    assert len([n for n in os.listdir(tmp_path) if n.endswith(STATUS_FILE_SUFFIX)]) == 1
    assert got["metrics"] == []  # no experiment summary unless asked for


def test_resumed_run_continues_the_curve_and_its_status(tmp_path):
    with RunWriter(tmp_path) as w:
        w.hparams_start({"lr": 1e-3}, ["fd"])
        for step in range(10):
            w.scalar("loss", 100.0 + step, step)
        w.hparams_end("failure")
    # The checkpoint was at step 6: steps 6..9 of the first process are orphaned.
    with RunWriter(tmp_path, resume_step=6) as w:
        w.hparams_start({"lr": 1e-3}, ["fd"])
        for step in range(6, 15):
            w.scalar("loss", 200.0 + step, step)
        w.hparams_end("success")
    assert len(_event_files(tmp_path)) == 3  # two runs' files plus the one status file
    curve = read_scalars(tmp_path)["loss"]
    assert curve == [(s, 100.0 + s) for s in range(6)] + [(s, 200.0 + s) for s in range(6, 15)]
    assert read_hparams(tmp_path)["status"] == "success"


def test_extra_writer_without_resume_step_purges_nothing(tmp_path):
    with RunWriter(tmp_path) as w:
        for step in range(5):
            w.scalar("loss", float(step), step)
    with RunWriter(tmp_path) as w:  # e.g. a later evaluation adding a metric
        w.scalar("fd", 7.5, 2)
    got = read_scalars(tmp_path)
    assert got["loss"] == [(s, float(s)) for s in range(5)] and got["fd"] == [(2, 7.5)]


# ------------------------------------------------------- the HParams dashboard


def _dashboard(root: Path):
    """Experiment and session groups as TensorBoard's HParams plugin serves them."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, get_experiment, list_session_groups

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(root))
    mux.Reload()
    tb = base_plugin.TBContext(logdir=str(root), data_provider=data_provider.MultiplexerDataProvider(mux, str(root)))
    ctx = backend_context.Context(tb)
    experiment = get_experiment.Handler(context.RequestContext(), ctx, "", api_pb2.GetExperimentRequest()).run()
    request = api_pb2.ListSessionGroupsRequest(
        allowed_statuses=[api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS, api_pb2.STATUS_FAILURE, api_pb2.STATUS_RUNNING],
        start_index=0,
        slice_size=100,
    )
    groups = list_session_groups.Handler(context.RequestContext(), ctx, "", request).run()
    hparams = sorted(h.name for h in experiment.hparam_infos)
    metrics = sorted(m.name.tag for m in experiment.metric_infos)
    sessions = {
        g.name: {
            "hparams": {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in g.hparams.items()},
            "metrics": {m.name.tag: m.value for m in g.metric_values},
            "status": [api_pb2.Status.Name(s.status) for s in g.sessions],
        }
        for g in groups.session_groups
    }
    return hparams, metrics, sessions


def test_hparams_dashboard_lines_up_runs_with_different_hyperparameters(tmp_path):
    with RunWriter(tmp_path / "a") as w:
        w.hparams_start({"arch": "dcgan", "lr": 2e-4, "dcgan.channels": 64}, ["fd"])
        w.scalar("loss/d", 0.7, 100)
        w.scalar("fd", 30.0, 50)
        w.scalar("fd", 12.0, 100)
        w.hparams_end("success")
    with RunWriter(tmp_path / "b") as w:
        w.hparams_start({"arch": "mlp", "lr": 1e-3, "mlp.hidden": 256}, ["fd"])
        w.scalar("fd", 40.0, 100)
        w.hparams_end("failure")
    with RunWriter(tmp_path / "c") as w:
        w.hparams_start({"arch": "mlp", "lr": 5e-4, "mlp.hidden": 128}, ["fd"])
        w.scalar("loss/d", 0.9, 3)
        w.hparams_end("running")
    hparams, metrics, sessions = _dashboard(tmp_path)
    # Every run's hyperparameters are columns, not just one run's.
    assert hparams == ["arch", "dcgan.channels", "lr", "mlp.hidden"]
    assert metrics == ["fd", "loss/d"]
    assert sessions["a"] == {
        "hparams": {"arch": "dcgan", "lr": 2e-4, "dcgan.channels": 64.0},
        "metrics": {"fd": 12.0, "loss/d": pytest.approx(0.7)},
        "status": ["STATUS_SUCCESS"],
    }
    assert sessions["b"]["metrics"] == {"fd": 40.0} and sessions["b"]["status"] == ["STATUS_FAILURE"]
    assert sessions["c"]["hparams"]["mlp.hidden"] == 128.0 and sessions["c"]["status"] == ["STATUS_RUNNING"]


def test_opt_in_experiment_summary_names_the_metric_columns(tmp_path):
    for name, lr in (("a", 1e-3), ("b", 2e-4)):
        with RunWriter(tmp_path / name) as w:
            w.hparams_start({"lr": lr, "arch": "dcgan"}, ["fd"], experiment_summary=True)
            w.scalar("loss/d", 1.0, 1)
            w.scalar("fd", 5.0, 1)
    assert read_hparams(tmp_path / "a")["metrics"] == ["fd"]
    hparams, metrics, sessions = _dashboard(tmp_path)
    assert hparams == ["arch", "lr"] and metrics == ["fd"]
    assert sessions["a"]["metrics"] == {"fd": 5.0}


# --------------------------------------------------------- no TensorFlow at all

_WRITE_EVERYTHING = """
import sys, numpy as np
{block}
from ganlab.tblog import RunWriter, image_grid
logdir = sys.argv[1]
with RunWriter(logdir) as w:
    w.hparams_start({{"arch": "mlp", "lr": 1e-3}}, ["fd"])
    w.scalars({{"loss/d": 1.0, "loss/g": 2.0}}, 0)
    w.image("samples", image_grid(np.zeros((4, 8, 8, 3), np.float32)), 0)
    w.text("notes", "hello", 0)
    w.hparams_end("success")
with RunWriter(logdir, resume_step=1) as w:
    w.scalar("loss/d", 3.0, 1)
assert "tensorflow" not in sys.modules or sys.modules["tensorflow"] is None, "the writer imported TensorFlow"
{read}
print("ok")
"""

_READ_BACK = """
from ganlab.tblog.read import read_hparams, read_images, read_scalars
assert read_scalars(logdir)["loss/d"] == [(0, 1.0), (1, 3.0)]
assert read_images(logdir) == {"samples": [0]}
assert read_hparams(logdir)["status"] == "success"
"""


@pytest.mark.parametrize(
    "block, read",
    [
        # TensorFlow unimportable, as on a JAX-only machine: writing and reading both work.
        ("sys.modules['tensorflow'] = None", _READ_BACK),
        # TensorFlow installed: the writer still never imports it (it costs seconds).
        ("", ""),
    ],
    ids=["tf-blocked", "tf-installed"],
)
def test_writes_without_tensorflow(tmp_path, block, read):
    script = _WRITE_EVERYTHING.format(block=block, read=read)
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")
    assert _event_files(tmp_path)
