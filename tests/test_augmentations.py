"""Augmentation plugins: the built-ins' contract on both backends, ADA's p, plugins, config and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from augment_checks import CASES, DTYPES, JAX_RUNS, SHAPES, augment, augmented_and_gradient, images, summary
from click.testing import CliRunner
from training_helpers import FAST, PLUGINS, tiny_registry

from ganlab.cli import cli
from ganlab.config import ExperimentConfig, Resolver
from ganlab.errors import ConfigError
from ganlab.store import Queue
from ganlab.tblog.read import read_hparams, read_scalars
from ganlab.training import BaseReporter, train
from ganlab.training.augment import ema_decay
from ganlab.training.checkpoint import load_checkpoint
from ganlab.training.run_dir import RunDir

TESTS = Path(__file__).resolve().parent


# Every test here may train a feature net: one cache per module (conftest.py).
pytestmark = pytest.mark.usefixtures("feature_net_cache")


@pytest.fixture(scope="module")
def registry():
    return tiny_registry()


def _expected(name: str, overrides: dict, shape: tuple[int, ...]) -> bool:
    """Whether the augmentation must change these images (saturation has nothing to do on grey ones)."""
    return name != "none" and not (overrides.get("transforms") == "saturation" and shape[-1] == 1)


# ------------------------------------------------------------------ the contract


def test_every_augmentation_keeps_shape_and_dtype_and_is_differentiable_on_tensorflow(registry):
    import keras

    for name, overrides in CASES:
        aug = augment(registry, name, overrides)
        for shape in SHAPES:
            for dtype in DTYPES:
                x_np = images(shape)
                x = keras.ops.convert_to_tensor(x_np, dtype)
                seeds = keras.random.SeedGenerator(3)
                y, grad = augmented_and_gradient(aug, x, keras.ops.convert_to_tensor(1.0), lambda s=seeds: s)
                got = summary(x, y, grad, dtype)
                case = f"{name} {overrides} {shape} {dtype}"
                assert got["shape"] == list(shape) and got["grad_shape"] == list(shape), case
                assert got["dtype"] == dtype, case
                assert got["grad_finite"] and got["grad_nonzero"] and got["output_finite"], case
                assert got["changed"] == _expected(name, overrides, shape), case


JAX_CHILD = textwrap.dedent(
    """
    import json, sys
    sys.modules["tensorflow"] = None  # any import of TensorFlow now fails
    sys.path.insert(0, sys.argv[2])
    import jax
    import jax.numpy as jnp
    import keras
    import time
    from augment_checks import JAX_RUNS, augment, augmented_and_gradient, images, summary
    from training_helpers import FAST, tiny_registry
    from ganlab.config import Resolver
    from ganlab.training import train
    from ganlab.tblog.read import read_scalars

    reg = tiny_registry()
    results = {"checks": [], "backend": keras.backend.backend()}
    started = time.perf_counter()
    for (name, overrides), shape, dtype in JAX_RUNS:
        aug = augment(reg, name, overrides)

        @jax.jit
        def run(x, key):
            # Inside jit, as in the training step: one key per draw, folded from the step's.
            draws = iter(range(1000))
            return augmented_and_gradient(aug, x, jnp.float32(1.0), lambda: jax.random.fold_in(key, next(draws)))

        x = jnp.asarray(images(shape), dtype)
        y, grad = run(x, jax.random.PRNGKey(3))
        results["checks"].append([name, overrides, list(shape), dtype, summary(x, y, grad, dtype)])
    results["checks_s"] = time.perf_counter() - started
    config = Resolver(reg).resolve("tiny", "tiny-bars", "non-saturating",
                                   {**FAST, "steps": 3, "backend": "jax",
                                    "dataset.n": 4, "lr_d": 5e-3, "augment.speed_kimg": 1.0}, "ada")
    results["train"] = train(config, sys.argv[1] + "/ada", registry=reg).to_dict()
    results["p"] = [v for _, v in read_scalars(sys.argv[1] + "/ada")["augment/p"]]
    results["total_s"] = time.perf_counter() - started
    print("RESULT " + json.dumps(results))
    """
)


def test_every_augmentation_keeps_shape_and_dtype_and_is_differentiable_under_jax_jit(tmp_path):
    # The module's feature-net cache (GANLAB_CACHE_DIR, set above) is shared: the child need not train one.
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", JAX_CHILD, str(tmp_path), str(TESTS)], env=env,
                          capture_output=True, text=True, timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, proc.stderr[-3000:]
    results = json.loads(line[len("RESULT "):])
    assert results["backend"] == "jax"
    print(f"jax checks {results['checks_s']:.1f} s, with training {results['total_s']:.1f} s")
    assert len(results["checks"]) == len(JAX_RUNS)
    for name, overrides, shape, dtype, got in results["checks"]:
        case = f"{name} {overrides} {shape} {dtype}"
        assert got["shape"] == shape and got["grad_shape"] == shape and got["dtype"] == dtype, case
        assert got["grad_finite"] and got["grad_nonzero"] and got["output_finite"], case
        assert got["changed"] == _expected(name, overrides, tuple(shape)), case
    assert results["train"]["status"] == "succeeded", results["train"]["traceback"]
    # The tiny data set of 4 images: D overfits at once and p climbs by 16 / 1000 per step.
    assert results["p"] == pytest.approx([0.016, 0.032, 0.048], abs=1e-6)


def test_ada_at_p_zero_is_the_identity_and_random_draws_follow_the_seed(registry):
    import keras

    aug = augment(registry, "ada", {})
    x_np = images((4, 8, 8, 3))
    x = keras.ops.convert_to_tensor(x_np)
    seeds = keras.random.SeedGenerator(0)
    zero = aug.apply(x, lambda: seeds, keras.ops.convert_to_tensor(0.0))
    assert np.array_equal(keras.ops.convert_to_numpy(zero), x_np)

    def at_p_one(seed: int) -> np.ndarray:
        seeds = keras.random.SeedGenerator(seed)
        return keras.ops.convert_to_numpy(aug.apply(x, lambda: seeds, keras.ops.convert_to_tensor(1.0)))

    assert np.array_equal(at_p_one(5), at_p_one(5))
    assert not np.allclose(at_p_one(5), at_p_one(6))


# ------------------------------------------------------------------- ADA in training


class StopAt(BaseReporter):
    def __init__(self, step: int) -> None:
        self.step, self.seen = step, 0

    def on_progress(self, step, losses, steps_per_s, images_per_s):
        self.seen = step

    def should_stop(self):
        return self.seen >= self.step


def _ada_config(registry, n: int, steps: int, **sets):
    # p moves by batch / (speed_kimg * 1000) = 16 / 1000 per step.
    quiet = {"eval_every": 1000, "sample_every": 1000, "checkpoint_every": 1000}
    return Resolver(registry).resolve("tiny", "tiny-bars", "non-saturating",
                                      {**FAST, **quiet, "steps": steps, "dataset.n": n, "augment.speed_kimg": 1.0,
                                       **sets}, "ada")


def test_ada_p_rises_while_d_overfits_a_tiny_data_set_and_resumes_exactly(registry, tmp_path):
    overfit = _ada_config(registry, 4, 16, lr_d=5e-3, ema=0.9)
    whole = train(overfit, tmp_path / "whole", registry=registry)
    assert whole.status == "succeeded", whole.traceback
    p = [v for _, v in read_scalars(tmp_path / "whole")["augment/p"]]
    assert len(p) == 16 and p[-1] >= 0.15 and p[-1] > p[len(p) // 2] > p[0]

    # 256 images: D cannot tell them apart from the fakes yet, r_t stays below 0.6, p stays near 0.
    healthy = train(_ada_config(registry, 256, 16), tmp_path / "healthy", registry=registry)
    assert healthy.status == "succeeded"
    assert max(v for _, v in read_scalars(tmp_path / "healthy")["augment/p"]) < 0.05

    # Stopped at 7 (checkpointed then), resumed in a new trainer: the same p and weights as the whole run.
    split = tmp_path / "split"
    assert train(overfit, split, reporter=StopAt(7), registry=registry).status == "released"
    arrays, _ = load_checkpoint(RunDir(split).checkpoint("latest"))
    assert float(arrays["augment/0000/augment_p"]) == pytest.approx(p[6], abs=1e-7)
    assert train(overfit, split, resume=True, registry=registry).status == "succeeded"
    split_p = read_scalars(split)["augment/p"]
    assert [s for s, _ in split_p] == list(range(1, 17))
    np.testing.assert_allclose([v for _, v in split_p], p, rtol=0, atol=1e-6)
    # Keyed by group and build order: layer names carry Keras's per-process numbers.
    a, b = ({"/".join(k.split("/")[:2]): v for k, v in load_checkpoint(RunDir(run).checkpoint("latest"))[0].items()}
            for run in (tmp_path / "whole", split))
    assert a.keys() == b.keys() and "augment/0000" in a and any(k.startswith("ema/") for k in a)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-6, err_msg=key)


def test_ema_decay_ramps_up_with_the_step_then_holds():
    import keras

    decays = [float(keras.ops.convert_to_numpy(ema_decay(0.999, s))) for s in (1, 100, 1000, 13_000, 14_000, 10**6)]
    assert decays[0] < 1e-5  # the first step copies the generator
    assert decays[1] == pytest.approx(0.5 ** (1 / 5), rel=1e-5)  # half-life 0.05 * 100 = 5 steps
    assert decays == sorted(decays) and decays[3] < 0.999
    assert decays[4:] == pytest.approx([0.999, 0.999], rel=1e-7)


# ------------------------------------------------------------------ config, CLI, plugins


def test_the_config_stores_the_augmentation_and_old_configs_keep_their_hash(registry):
    plain = Resolver(registry).resolve("tiny", "tiny-bars", "non-saturating", dict(FAST))
    assert "augment" not in plain.to_dict() and plain.flat()["augment"] == "none"
    aug = Resolver(registry).resolve("tiny", "tiny-bars", "non-saturating",
                                     {**FAST, "policy": "color+cutout", "augment.cutout": 0.25}, "diffaugment")
    assert aug.to_dict()["augment"]["params"]["policy"] == "color+cutout"
    assert aug.flat()["augment.cutout"] == 0.25 and aug.hash != plain.hash
    assert ExperimentConfig.from_dict(json.loads(aug.to_json())) == aug
    with pytest.raises(ConfigError, match="augmentation 'diffaugment': policy 'blur' does not exist"):
        Resolver(registry).resolve("tiny", "tiny-bars", "non-saturating", {"policy": "color+blur"}, "diffaugment")


def _records(db: str) -> list:
    with Queue.open(db) as queue:
        return queue.list_experiments()


def _queue_add(db: str, *args: str):
    return CliRunner().invoke(cli, ["--plugins-dir", str(PLUGINS), "queue", "add", "--db", db, "--arch", "tiny",
                                    "--dataset", "tiny-bars", "--steps", "5", *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--augment", "nosuch"), "unknown augmentation 'nosuch'"),
        (("--augment", "diffaugment,nosuch"), "unknown augmentation 'nosuch'"),
        (("--augment", "diffaugment", "--set", "augment.policy=color+spin"), "policy 'spin' does not exist"),
        (("--augment", "diffaugment", "--set", "augment.policy=+"), "policy '+' has an empty item"),
        (("--augment", "diffaugment", "--set", "augment.policy=color+"), "policy 'color+' has an empty item"),
        (("--augment", "ada", "--set", "augment.transforms=xflip+warp"), "transforms 'warp' does not exist"),
        (("--augment", "ada", "--set", "augment.p_init=1.5"), "p_init='1.5' is out of range; allowed [0, 1]"),
        (("--augment", "ada", "--set", "augment.p_init=-0.1"), "p_init='-0.1' is out of range"),
        (("--augment", "ada", "--set", "augment.target=2"), "target='2' is out of range"),
        (("--set", "augment.policy=color"), "augmentation 'none' has no hyperparameter 'policy'"),
    ],
)
def test_bad_augmentation_input_is_refused_at_enqueue_with_nothing_stored(tmp_path, args, message):
    db = f"sqlite:///{tmp_path / 'q.db'}"
    assert _queue_add(db, "--augment", "ada").exit_code == 0
    result = _queue_add(db, *args)
    assert result.exit_code != 0 and "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert len(_records(db)) == 1


def test_augment_is_a_sweep_axis_and_shows_in_queue_show(tmp_path):
    db = f"sqlite:///{tmp_path / 'q.db'}"
    result = _queue_add(db, "--augment", "none,diffaugment")
    assert result.exit_code == 0, result.output
    names = sorted(e.name for e in _records(db))
    assert names == ["tiny-tiny-bars-non-saturating", "tiny-tiny-bars-non-saturating-diffaugment"]
    diff = next(e for e in _records(db) if e.name.endswith("diffaugment"))
    shown = CliRunner().invoke(cli, ["--plugins-dir", str(PLUGINS), "queue", "show", "--db", db, str(diff.id)]).output
    assert "tiny / tiny-bars / non-saturating / diffaugment" in shown and "augment.policy = color+translation+cutout" in shown



def test_a_run_shorter_than_a_heartbeat_still_shows_its_last_losses_and_p(tmp_path):
    # 5 steps end before the worker's first lease renewal: the losses (ADA's p among them) come with the finish.
    from ganlab.worker.display import WorkerDisplay
    from ganlab.worker.loop import Worker, WorkerOptions

    db = f"sqlite:///{tmp_path / 'q.db'}"
    added = _queue_add(db, "--augment", "ada", "-q", "--set", "log_every=1", "--set", "eval_every=5",
                       "--set", "eval_samples=32", "--set", "latent_dim=8")
    assert added.exit_code == 0, added.output
    exp_id = int(added.stdout.split()[0])
    options = WorkerOptions(slots=[None], runs_root=tmp_path / "runs", poll_s=0.2, until_empty=True,
                            plugins_dir=str(PLUGINS), prestart=False)
    with Queue.open(db) as queue:
        Worker(queue, options, WorkerDisplay(every_s=3600.0)).run()
        rec = queue.get(exp_id)
    assert rec.status == "succeeded" and rec.step == 5, rec.error
    assert "loss/discriminator" in rec.last_losses and 0.0 <= rec.last_losses["augment/p"] <= 1.0, rec.last_losses
    shown = CliRunner().invoke(cli, ["--plugins-dir", str(PLUGINS), "queue", "show", "--db", db, str(exp_id)]).output
    assert "augment/p=" in shown, shown

PLUGIN = '''
"""A test augmentation: every image D sees is scaled toward mid-grey."""
from ganlab import AugmentationSpec, Param, hookimpl

TRACED = []


def apply(images, ctx):
    TRACED.append(tuple(images.shape))
    return images * ctx.params["keep"]


@hookimpl
def register_augmentations(register):
    register(AugmentationSpec(name="fade", description="scale images toward grey", apply=apply,
                              params=(Param("keep", float, 0.5, "factor kept", low=0.0, high=1.0),)))
'''


def test_a_plugin_augmentation_from_the_plugins_folder_trains_through_ganlab_train(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "tiny_gan.py").write_text((PLUGINS / "tiny_gan.py").read_text())
    (folder / "fade.py").write_text(PLUGIN)
    listed = CliRunner().invoke(cli, ["--plugins-dir", str(folder), "plugins", "--kind", "augmentation", "--json"])
    assert "fade" in [e["name"] for e in json.loads(listed.output)]
    run_dir = tmp_path / "run"
    sets = [a for k, v in FAST.items() for a in ("--set", f"{k}={v}")]
    result = CliRunner().invoke(cli, ["--plugins-dir", str(folder), "train", "--arch", "tiny", "--dataset", "tiny-bars",
                                      "--augment", "fade", "--set", "augment.keep=0.25", "--steps", "3", *sets,
                                      "--run-dir", str(run_dir), "-q"])
    assert result.exit_code == 0 and result.output.startswith("succeeded at step 3"), result.output
    config = RunDir(run_dir).load_config()
    assert config.augmentation == "fade" and config.augment_params == {"keep": 0.25}
    # The compiled step traced it on the real and the generated batch of the joint update.
    assert sys.modules["ganlab_local_plugins.fade"].TRACED == [(16, 8, 8, 1)] * 2
    hparams = read_hparams(run_dir)
    assert hparams["hparams"]["augment"] == "fade" and hparams["hparams"]["augment.keep"] == 0.25

    # Queued, the file is pinned with its hash, so a worker child loads it (and only those bytes).
    db = f"sqlite:///{tmp_path / 'q.db'}"
    queued = CliRunner().invoke(cli, ["--plugins-dir", str(folder), "queue", "add", "--db", db, "--arch", "tiny",
                                      "--dataset", "tiny-bars", "--augment", "fade"])
    assert queued.exit_code == 0, queued.output
    with Queue.open(db) as queue:
        pinned = {(f["kind"], f["name"]): f["path"] for f in queue.get(1).plugin_files}
    assert pinned[("augmentation", "fade")] == str(folder / "fade.py")


def test_sample_grids_show_the_generator_unaugmented(registry, tmp_path):
    from PIL import Image

    from ganlab.tblog import image_grid
    from ganlab.training.export import load_generator

    # Every transform on every image the discriminator sees; the grid must still be G's own output.
    config = _ada_config(registry, 256, 3, sample_every=3, **{"augment.p_init": 1.0, "augment.adaptive": False})
    assert train(config, tmp_path / "run", registry=registry).status == "succeeded"
    generator = load_generator(tmp_path / "run", registry)
    z = load_checkpoint(RunDir(tmp_path / "run").checkpoint("latest"))[0]["fixed/z"]
    expected = image_grid(np.asarray(generator.model.predict_on_batch(z)), ncols=8).astype(int)
    shown = np.asarray(Image.open(RunDir(tmp_path / "run").samples_png)).astype(int).reshape(expected.shape)
    assert np.abs(shown - expected).max() <= 1
