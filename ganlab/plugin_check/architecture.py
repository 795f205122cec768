"""Checking an architecture plugin: both networks' layers, G's output against the data, D's output, one real step."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ganlab.config import ExperimentConfig
from ganlab.plugin_check.report import CheckFailed, Report, model_table
from ganlab.plugin_check.resources import device_peak_mb, peak_rss_mb
from ganlab.registry import Registry
from ganlab.specs import BuildContext, ImageData

_PROBE = 16  # generated images whose value range is checked: enough that a missing tanh shows
_TOLERANCE = 1e-3  # float32 tanh reaches exactly +-1; a little slack for casts


def check_architecture(registry: Registry, config: ExperimentConfig, data: ImageData, report: Report) -> None:
    """Fill ``report``; raise CheckFailed at the first problem."""
    from ganlab.training.backend import dtype_policy

    arch = registry.architecture(config.architecture)
    info = data.info()
    name = arch.name
    report.facts["dataset"] = f"{config.dataset}: {info.num_examples} images of shape {info.image_shape}, values scaled to [-1, 1]"
    ctx = BuildContext(
        image_shape=info.image_shape,
        num_classes=info.num_classes if arch.conditional else None,
        latent_dim=int(config.train["latent_dim"]),
        hparams=dict(config.arch_params),
    )
    labels = np.zeros((_PROBE,), dtype="int32")
    with dtype_policy(config.train["precision"]):
        generator = _build(name, "generator", arch.build_generator, ctx)
        report.models.append(model_table(generator))
        z = np.random.default_rng(0).standard_normal((_PROBE, ctx.latent_dim)).astype("float32")
        fake = _call(name, "generator", generator, [z, labels] if arch.conditional else z)
        _check_images(name, fake, info.image_shape, report)
        discriminator = _build(name, "discriminator", arch.build_discriminator, ctx)
        report.models.append(model_table(discriminator))
        real = data.images[:_PROBE].astype("float32") / 127.5 - 1.0
        n = len(real)
        logits = _call(name, "discriminator", discriminator, [real, labels[:n]] if arch.conditional else real)
        shape = tuple(logits.shape)
        report.facts["discriminator output"] = f"shape {shape[1:]} per batch of {n}"
        if shape != (n, 1):
            raise CheckFailed(
                f"architecture {name!r}: the discriminator returns shape {shape} for {n} images; it must return "
                f"one logit per image, ({n}, 1) (end it with layers.Dense(1), no sigmoid)"
            )
        if not np.all(np.isfinite(logits)):
            raise CheckFailed(f"architecture {name!r}: the discriminator returns non-finite logits for real images")
    _one_step(registry, config, data, report)


def _build(arch: str, which: str, builder: Any, ctx: BuildContext) -> Any:
    try:
        return builder(ctx)
    except Exception as exc:  # noqa: BLE001 - whatever the plugin raised is its problem to report
        raise CheckFailed(f"architecture {arch!r}: building the {which} failed: {type(exc).__name__}: {exc}") from exc


def _call(arch: str, which: str, model: Any, inputs: Any) -> np.ndarray:
    try:
        return np.asarray(model(inputs, training=False), dtype="float32")
    except Exception as exc:  # noqa: BLE001
        raise CheckFailed(f"architecture {arch!r}: calling the {which} failed: {type(exc).__name__}: {exc}") from exc


def _check_images(arch: str, fake: np.ndarray, image_shape: tuple[int, int, int], report: Report) -> None:
    shape = tuple(fake.shape[1:])
    report.facts["generator output"] = f"shape {shape}, data {image_shape}"
    if shape != image_shape:
        raise CheckFailed(
            f"architecture {arch!r}: the generator makes images of shape {shape}, but the dataset's are {image_shape}; "
            "size the generator from ctx.image_shape"
        )
    if not np.all(np.isfinite(fake)):
        raise CheckFailed(f"architecture {arch!r}: the generator makes non-finite pixel values")
    low, high = float(fake.min()), float(fake.max())
    report.facts["generator range"] = f"[{low:.3g}, {high:.3g}] over {len(fake)} images, data [-1, 1]"
    if low < -1 - _TOLERANCE or high > 1 + _TOLERANCE:
        raise CheckFailed(
            f"architecture {arch!r}: the generator's pixels range over [{low:.3g}, {high:.3g}], outside the data's "
            "[-1, 1]; end the generator with a tanh (layers.Activation('tanh', dtype='float32'))"
        )


def _one_step(registry: Registry, config: ExperimentConfig, data: ImageData, report: Report) -> None:
    """Two real training steps with the chosen loss: the first compiles, the second is the step's cost."""
    from ganlab.training.backend import dtype_policy
    from ganlab.training.data import BatchStream
    from ganlab.training.models import build_gan
    from ganlab.training.step_common import StepSettings, make_step

    train = config.train
    loss = registry.loss(config.loss)
    rss_before = peak_rss_mb()
    with dtype_policy(train["precision"]):
        gan = build_gan(config, registry.architecture(config.architecture), data.info())
        step = make_step(gan, StepSettings.from_config(config, loss), train["backend"])
        stream = BatchStream(data, int(train["batch_size"]), int(train["seed"]))
        times = []
        for i in (1, 2):
            images, labels = stream.next(int(train["n_critic"]))
            started = time.perf_counter()
            try:
                out = {k: float(np.asarray(v)) for k, v in step(images, labels, i).items()}
            except Exception as exc:  # noqa: BLE001
                raise CheckFailed(
                    f"architecture {config.architecture!r}: a training step with loss {config.loss!r} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            times.append(time.perf_counter() - started)
    report.facts["training step"] = (
        f"loss {config.loss!r}, batch {train['batch_size']}, {train['backend']}: first {times[0]:.2f} s (compiles), "
        f"then {times[1] * 1000:.1f} ms"
    )
    device = device_peak_mb(train["backend"])
    report.facts["memory"] = f"peak RSS {peak_rss_mb():.0f} MiB (was {rss_before:.0f} before the step)" + (
        f", device peak {device:.0f} MiB" if device is not None else ""
    )
    report.facts["losses"] = " ".join(f"{k}={v:.4g}" for k, v in out.items() if k.startswith("loss/"))
    bad = [k for k, v in out.items() if k.startswith("loss/") and not math.isfinite(v)]
    if bad:
        raise CheckFailed(f"architecture {config.architecture!r}: one training step gave {bad[0]} = {out[bad[0]]}")


__all__ = ["check_architecture"]
