"""The trainer on TensorFlow, in process: real Keras models, real steps, event files read back."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from training_helpers import tiny_config, tiny_registry

from ganlab.errors import ConfigError
from ganlab.tblog.read import read_hparams, read_image, read_images, read_scalars, read_text
from ganlab.training import BaseReporter, train
from ganlab.training.checkpoint import load_checkpoint
from ganlab.training.run_dir import RunDir

# Every test here may train a feature net: one cache per module (conftest.py).
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.usefixtures("feature_net_cache")]


@pytest.fixture(scope="module")
def registry():
    return tiny_registry()


class StopAt(BaseReporter):
    """Asks the trainer to stop once ``step`` has been reported."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.seen = 0
        self.checkpoints: list[int] = []

    def on_progress(self, step, losses, steps_per_s, images_per_s):
        self.seen = step

    def on_checkpoint(self, step):
        self.checkpoints.append(step)

    def should_stop(self):
        return self.seen >= self.step


def test_a_run_logs_scalars_samples_metrics_hparams_and_checkpoints(registry, tmp_path):
    config = tiny_config(registry, steps=6)
    events = []

    class Recorder(BaseReporter):
        def on_start(self, start_step, total_steps):
            events.append(("start", start_step, total_steps))

        def on_eval(self, step, metrics):
            events.append(("eval", step, metrics["fd"]))

        def on_checkpoint(self, step):
            events.append(("checkpoint", step))

    result = train(config, tmp_path, reporter=Recorder(), registry=registry)

    assert result.status == "succeeded" and result.step == 6 and result.error is None
    scalars = read_scalars(tmp_path)
    for tag in ("loss/generator", "loss/discriminator", "disc/real", "disc/fake", "grad_norm/generator",
                "grad_norm/discriminator", "lr/generator", "lr/discriminator"):
        assert [s for s, _ in scalars[tag]] == [1, 2, 3, 4, 5, 6], tag
    assert all(math.isfinite(v) and v > 0 for _, v in scalars["grad_norm/generator"])
    assert scalars["lr/generator"][0][1] == pytest.approx(config.train["lr_g"])
    # The first step of a process is compilation and is not timed.
    assert [s for s, _ in scalars["perf/steps_per_s"]] == [2, 3, 4, 5, 6]
    ratio = [ips / sps for (_, ips), (_, sps) in zip(scalars["perf/images_per_s"], scalars["perf/steps_per_s"])]
    assert ratio == pytest.approx([16.0] * 5)
    for tag in ("metrics/fd", "metrics/kid", "metrics/fd_floor", "best/fd", "best/kid"):
        assert [s for s, _ in scalars[tag]] == [3, 6], tag
    fds = [v for _, v in scalars["metrics/fd"]]
    assert scalars["best/fd"][-1][1] == pytest.approx(min(fds))
    assert result.metrics["fd"] == pytest.approx(fds[-1], rel=1e-6)
    assert result.metrics["fd_floor"] < result.metrics["fd"]

    assert read_images(tmp_path) == {"samples": [3, 6]}
    grid = read_image(tmp_path, "samples", 6)
    assert grid.dtype == np.uint8 and grid.shape[-1] == 1 and grid.shape[0] > 8 * 8  # 64 tiles of 8x8
    hp = read_hparams(tmp_path)
    assert hp["status"] == "success"
    assert hp["hparams"]["arch"] == "tiny" and hp["hparams"]["train.steps"] == 6.0
    assert hp["hparams"]["loss.label_smoothing"] == 0.0
    text = read_text(tmp_path)["config"][0][1]
    assert json.loads("\n".join(line[4:] for line in text.splitlines())) == config.to_dict()

    rd = RunDir(tmp_path)
    assert rd.load_config() == config
    arrays, state = load_checkpoint(rd.checkpoint("latest"))
    assert state["step"] == 6 and state["batches_taken"] == 6 and state["metrics"]["last"]["fd"] == result.metrics["fd"]
    assert state["metrics"]["protocol"]["n_fake"] == 128
    assert any(k.startswith("g_opt/") for k in arrays) and arrays["fixed/z"].shape == (64, 8)
    best_step = load_checkpoint(rd.checkpoint("best"))[1]["step"]
    assert fds[[3, 6].index(best_step)] == pytest.approx(min(fds))
    records = rd.read_metrics()
    assert [r["step"] for r in records] == [3, 6]
    assert all(r["protocol"]["feature_net"] and r["fd_floor"] == result.metrics["fd_floor"] for r in records)
    assert rd.samples_png.is_file()
    assert events[0] == ("start", 0, 6)
    assert [e[1] for e in events if e[0] == "checkpoint"] == [3, 6]


def _weights(run_dir):
    return load_checkpoint(RunDir(run_dir).checkpoint("latest"))[0]


class CrashAt(BaseReporter):
    """Raises inside the loop once ``step`` has been logged: a crash after the last checkpoint."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_progress(self, step, losses, steps_per_s, images_per_s):
        if step >= self.step:
            raise RuntimeError(f"simulated crash at step {step}")


def test_resume_continues_exactly_and_curves_continue(registry, tmp_path):
    # The hard case: labels, a gradient penalty drawing random numbers, two critic
    # updates per step, EMA, batch norm statistics and dropout seeds.
    config = tiny_config(registry, "tiny-cond", "wgan-gp", steps=20, n_critic=2, ema=0.9,
                         checkpoint_every=5, eval_every=4, sample_every=100)
    whole = train(config, tmp_path / "whole", registry=registry)
    assert whole.status == "succeeded", whole.traceback

    # Three processes: stopped at 7 (checkpointed on request), crashed at 12 (last
    # checkpoint 10; steps 11-12 were logged and must not appear twice), then finished.
    split = tmp_path / "split"
    stopper = StopAt(7)
    first = train(config, split, reporter=stopper, registry=registry)
    assert first.status == "released" and first.step == 7
    assert stopper.checkpoints == [5, 7]
    crashed = train(config, split, resume=True, reporter=CrashAt(12), registry=registry)
    assert crashed.status == "failed" and crashed.error == "RuntimeError: simulated crash at step 12"
    assert "Traceback" in crashed.traceback
    assert load_checkpoint(RunDir(split).checkpoint("latest"))[1]["step"] == 10
    last = train(config, split, resume=True, registry=registry)
    assert last.status == "succeeded" and last.step == 20

    # By group and build order: the key's weight path holds Keras's auto-numbered layer names, which
    # depend on what this (test) process built before.
    a, b = ({"/".join(k.split("/")[:2]): v for k, v in _weights(run).items()} for run in (tmp_path / "whole", split))
    assert a.keys() == b.keys() and any(k.startswith("ema/") for k in a)
    for key in a:
        # Same machine, same thread pool: the runs agree to float32 rounding (in practice bit for bit).
        np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-6, err_msg=key)

    whole_curve = read_scalars(tmp_path / "whole")["loss/discriminator"]
    split_curve = read_scalars(split)["loss/discriminator"]
    assert [s for s, _ in split_curve] == list(range(1, 21))  # each step once: nothing lost, nothing doubled
    np.testing.assert_allclose([v for _, v in split_curve], [v for _, v in whole_curve], rtol=0, atol=1e-5)
    assert [s for s, _ in read_scalars(split)["metrics/fd"]] == [4, 8, 12, 16, 20]
    assert [r["step"] for r in RunDir(split).read_metrics()] == [4, 8, 12, 16, 20]
    assert last.metrics["fd"] == pytest.approx(whole.metrics["fd"], rel=1e-6)
    assert read_hparams(split)["status"] == "success"


def test_each_step_makes_n_critic_discriminator_updates_then_one_generator_update(registry, tmp_path):
    config = tiny_config(registry, "tiny", "wgan-gp", steps=4, n_critic=3, checkpoint_every=100, eval_every=100,
                         sample_every=100)
    result = train(config, tmp_path / "run", registry=registry)
    assert result.status == "succeeded", result.traceback
    weights = _weights(tmp_path / "run")
    # Each optimiser's first variable is its step counter, named after its path.
    assert int(weights["d_opt/0000/discriminator_adam/iteration"]) == 12 and int(weights["g_opt/0000/generator_adam/iteration"]) == 4
    penalty = read_scalars(tmp_path / "run")["loss/penalty"]
    assert [s for s, _ in penalty] == [1, 2, 3, 4] and all(v > 0 and np.isfinite(v) for _, v in penalty)


def test_same_seed_gives_the_same_first_losses_and_another_seed_does_not(registry, tmp_path):
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        config = tiny_config(registry, steps=3, seed=seed, eval_every=100, sample_every=100, checkpoint_every=100)
        assert train(config, tmp_path / name, registry=registry).status == "succeeded"
        runs[name] = read_scalars(tmp_path / name)
    for tag in ("loss/generator", "loss/discriminator", "disc/real"):
        assert runs["a"][tag] == runs["b"][tag]
        assert runs["a"][tag] != runs["c"][tag]


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(registry, tmp_path):
    # D's output turns NaN from its 13th training call: step 7 (two calls per step).
    config = tiny_config(registry, steps=20, nan_after_calls=12, eval_every=100, sample_every=100)
    result = train(config, tmp_path, registry=registry)

    assert result.status == "diverged" and result.step == 7
    assert "step 7" in result.error and "checkpoint is step 6" in result.error
    arrays, state = load_checkpoint(RunDir(tmp_path).checkpoint("latest"))
    assert state["step"] == 6
    assert all(np.isfinite(v).all() for v in arrays.values() if v.dtype.kind == "f")
    scalars = read_scalars(tmp_path)
    assert math.isnan(scalars["loss/discriminator"][-1][1]) and scalars["loss/discriminator"][-1][0] == 7
    assert read_hparams(tmp_path)["status"] == "failure"


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains(registry, tmp_path, precision, monkeypatch, capsys):
    import keras

    # Stands in for a CPU with both 16-bit types (this machine may have neither): no warning.
    monkeypatch.setattr("ganlab.training.trainer.cpu_flags", lambda: frozenset({"avx2", "amx_bf16", "avx512_fp16"}))
    config = tiny_config(registry, steps=3, precision=precision, eval_every=100, sample_every=100)
    result = train(config, tmp_path, registry=registry)
    assert result.status == "succeeded"
    assert result.warnings == [] and "warning" not in capsys.readouterr().err
    assert keras.config.dtype_policy().name == "float32"  # restored for whatever runs next
    losses = read_scalars(tmp_path)["loss/generator"]
    assert len(losses) == 3 and all(math.isfinite(v) for _, v in losses)
    arrays, _ = load_checkpoint(RunDir(tmp_path).checkpoint("latest"))
    # Loss scaling only where float16 needs it: its optimisers carry the dynamic scale.
    n_opt = sum(k.startswith("g_opt/") for k in arrays)
    baseline = 2 + 2 * 6  # iterations, learning rate, and m, v for 6 generator variables
    if precision == "mixed_float16":
        assert n_opt > baseline  # the loss-scale optimiser's own state (scale, counters) is checkpointed too
    else:
        assert n_opt == baseline


def test_emulated_precision_is_named_at_the_start_of_the_run(registry, tmp_path, monkeypatch, capsys):
    # An AVX2-only CPU: bfloat16 is emulated there, many times slower than float32.
    monkeypatch.setattr("ganlab.training.trainer.cpu_flags", lambda: frozenset({"sse4_2", "avx2", "fma"}))
    seen_at_start = []

    class Watch(BaseReporter):
        def on_start(self, start_step, total_steps):
            seen_at_start.append(capsys.readouterr().err)

    config = tiny_config(registry, steps=2, precision="mixed_bfloat16", eval_every=100, sample_every=100)
    result = train(config, tmp_path, reporter=Watch(), registry=registry)
    assert result.status == "succeeded"
    assert len(result.warnings) == 1 and "no bfloat16 instructions" in result.warnings[0]
    assert "use --precision float32" in result.warnings[0]
    assert seen_at_start == [f"warning: {result.warnings[0]}\n"]  # said before the first step, once
    assert read_text(tmp_path)["warnings"] == [(0, result.warnings[0])]


def test_a_run_dir_is_not_reused_by_accident(registry, tmp_path):
    config = tiny_config(registry, steps=2, eval_every=100, sample_every=100)
    assert train(config, tmp_path, registry=registry).status == "succeeded"
    with pytest.raises(ConfigError, match="already holds a run; pass --resume"):
        train(config, tmp_path, registry=registry)
    other = tiny_config(registry, steps=3, eval_every=100, sample_every=100)
    with pytest.raises(ConfigError, match="holds a different experiment"):
        train(other, tmp_path, resume=True, registry=registry)
    again = train(config, tmp_path, resume=True, registry=registry)  # already complete: nothing to do
    assert again.status == "succeeded" and again.step == 2 and again.metrics["fd"] > 0


def test_checkpoints_are_reported_only_once_on_disk(registry, tmp_path):
    seen = []

    class Watcher(BaseReporter):
        def on_checkpoint(self, step):
            _, state = load_checkpoint(RunDir(tmp_path).checkpoint("latest"))
            seen.append((step, state["step"]))

    config = tiny_config(registry, steps=12, checkpoint_every=4, eval_every=100, sample_every=100)
    assert train(config, tmp_path, reporter=Watcher(), registry=registry).status == "succeeded"
    assert seen == [(4, 4), (8, 8), (12, 12)]


def test_a_checkpoint_that_cannot_be_written_fails_the_run(registry, tmp_path, monkeypatch):
    from ganlab.training import checkpoint

    def disk_full(path, arrays, state):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_checkpoint", disk_full)
    config = tiny_config(registry, steps=12, checkpoint_every=4, eval_every=100, sample_every=100)
    result = train(config, tmp_path, registry=registry)
    assert result.status == "failed" and "No space left on device" in result.error
    assert result.step < 12  # it stopped at the failed write instead of training on without checkpoints


def test_checkpoint_keys_name_each_weight_and_old_unnamed_checkpoints_still_resume(registry, tmp_path):
    from ganlab.training.checkpoint import save_checkpoint

    config = tiny_config(registry, "tiny", "non-saturating", steps=6, checkpoint_every=3, eval_every=100,
                         sample_every=100)
    stopped = train(config, tmp_path / "run", reporter=StopAt(3), registry=registry)
    assert stopped.status == "released" and stopped.step == 3
    latest = RunDir(tmp_path / "run").checkpoint("latest")
    arrays, state = load_checkpoint(latest)
    generator = sorted(k for k in arrays if k.startswith("generator/"))
    # Build order, then the weight's Keras path: a reader of the .npz sees which weight each array is.
    assert generator[0].startswith("generator/0000/") and any(k.endswith("/kernel") for k in generator)
    assert all(k.count("/") >= 2 for k in arrays if k.split("/")[0] in ("generator", "discriminator", "g_opt"))

    # A checkpoint written before the names (keys "generator/0000") resumes as before.
    bare = {"/".join(k.split("/")[:2]): v for k, v in arrays.items()}
    save_checkpoint(latest, bare, {k: v for k, v in state.items() if k not in ("manifest", "format")})
    assert all(k.count("/") == 1 for k in load_checkpoint(latest)[0])
    resumed = train(config, tmp_path / "run", resume=True, registry=registry)
    assert resumed.status == "succeeded" and resumed.step == 6
    assert [s for s, _ in read_scalars(tmp_path / "run")["loss/generator"]] == list(range(1, 7))
