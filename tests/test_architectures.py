"""The built-in architectures and the example user plugin, built as real Keras models.

Every network is kept tiny (a handful of filters, batch 2) so the whole file
runs in seconds on a CPU; the point is shapes, wiring and hyperparameters,
not image quality.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import ganlab
from ganlab import ArchitectureSpec, BuildContext, ConfigError, Param
from ganlab.builtin import architectures
from ganlab.builtin.architectures.dcgan import plan_upsampling
from ganlab.registry import Registry

REPO = Path(__file__).resolve().parents[1]
PLUGINS_DIR = REPO / "plugins"
LATENT = 8
NUM_CLASSES = 3
BATCH = 2

# Small widths keep every build fast; tests that vary a parameter start from these.
SMALL: dict[str, dict[str, Any]] = {
    "dcgan": {"base_filters": 8},
    "cdcgan": {"base_filters": 8, "label_embed_dim": 4},
    "mlp": {"hidden_units": 16},
    "sngan": {"base_filters": 4},
}


def _builtin_specs() -> dict[str, ArchitectureSpec]:
    found: list[ArchitectureSpec] = []
    architectures.register_architectures(register=found.append)
    return {spec.name: spec for spec in found}


def _sngan_spec() -> ArchitectureSpec:
    # Loaded by the plugins-dir route only, without built-ins, so a problem in
    # another built-in module cannot hide this file's own problems.
    registry = Registry().load(plugins_dir=PLUGINS_DIR, builtins=False, entry_points=False)
    assert not registry.problems, registry.problems
    return registry.architecture("sngan")


BUILTIN = _builtin_specs()
SPECS = {**BUILTIN, "sngan": _sngan_spec()}

SUPPORTED_SHAPES = [(8, 8, 1), (28, 28, 1), (32, 32, 1), (32, 32, 3), (64, 64, 3), (16, 32, 3), (24, 40, 1)]
UNSUPPORTED_SHAPES = [
    ((27, 27, 1), "27x27"),  # odd: no stride-2 step lands on it
    ((28, 27, 3), "28x27"),
    ((6, 6, 1), "6x6"),  # smaller than one doubling of a 4x4 grid
    ((34, 34, 1), "34x34"),  # 17*2: the start grid would be 17x17
]


def _context(spec: ArchitectureSpec, shape: tuple[int, int, int], hparams: dict[str, Any]) -> BuildContext:
    return BuildContext(shape, NUM_CLASSES if spec.conditional else None, LATENT, hparams)


def _inputs(spec: ArchitectureSpec, shape: tuple[int, int, int], labels: list[int] | None = None) -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((BATCH, LATENT)).astype("float32")
    images = rng.uniform(-1, 1, (BATCH, *shape)).astype("float32")
    if not spec.conditional:
        return z, images
    y = np.array(labels if labels is not None else [0, NUM_CLASSES - 1], dtype="int32")
    return [z, y], [images, y]


def _build(spec: ArchitectureSpec, shape: tuple[int, int, int], hparams: dict[str, Any]) -> tuple[keras.Model, keras.Model]:
    ctx = _context(spec, shape, hparams)
    keras.utils.set_random_seed(0)
    generator = spec.build_generator(ctx)
    keras.utils.set_random_seed(1)
    discriminator = spec.build_discriminator(ctx)
    return generator, discriminator


# --------------------------------------------------------------------- shapes


def test_builtin_hook_registers_the_three_architectures() -> None:
    assert sorted(BUILTIN) == ["cdcgan", "dcgan", "mlp"]
    assert [name for name, spec in BUILTIN.items() if spec.conditional] == ["cdcgan"]
    assert all("arXiv:" in spec.reference for spec in SPECS.values())


@pytest.mark.parametrize("shape", SUPPORTED_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", ["dcgan", "mlp", "cdcgan"])
def test_networks_match_the_data_shape(name: str, shape: tuple[int, int, int]) -> None:
    spec = BUILTIN[name]
    assert spec.check_shape is None or spec.check_shape(shape) is None
    generator, discriminator = _build(spec, shape, SMALL[name])
    g_in, d_in = _inputs(spec, shape)

    fake = np.asarray(generator(g_in, training=False))
    assert fake.shape == (BATCH, *shape)
    assert np.all(np.abs(fake) <= 1.0)
    # The discriminator takes exactly what the generator emits.
    assert tuple(discriminator.inputs[0].shape) == (None, *shape)
    fake_in = [fake, d_in[1]] if spec.conditional else fake
    for batch in (d_in, fake_in):
        logits = np.asarray(discriminator(batch, training=False))
        assert logits.shape == (BATCH, 1)
        assert np.all(np.isfinite(logits))


@pytest.mark.parametrize(
    ("height", "width", "plan"),
    [(8, 8, (4, 4, 1)), (28, 28, (7, 7, 2)), (32, 32, (4, 4, 3)), (64, 64, (4, 4, 4)), (256, 256, (4, 4, 6)), (32, 64, (4, 8, 3))],
)
def test_upsampling_plan_factors_the_image_size(height: int, width: int, plan: tuple[int, int, int]) -> None:
    got = plan_upsampling(height, width)
    assert (got.start_height, got.start_width, got.steps) == plan
    generator, _ = _build(BUILTIN["dcgan"], (height, width, 1), {"base_filters": 4})
    stride2 = [layer for layer in generator.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert len(stride2) == plan[2]


@pytest.mark.parametrize(("shape", "size_text"), UNSUPPORTED_SHAPES, ids=[t for _, t in UNSUPPORTED_SHAPES])
@pytest.mark.parametrize("name", ["dcgan", "cdcgan"])
def test_check_shape_refuses_with_a_one_line_reason(name: str, shape: tuple[int, int, int], size_text: str) -> None:
    spec = BUILTIN[name]
    why = spec.check_shape(shape)
    assert isinstance(why, str) and "\n" not in why
    assert why.startswith(name) and size_text in why
    # Building anyway fails with the same project error, not a Keras shape error deep inside.
    with pytest.raises(ConfigError, match=size_text):
        spec.build_generator(_context(spec, shape, SMALL[name]))
    with pytest.raises(ConfigError, match=size_text):
        spec.build_discriminator(_context(spec, shape, SMALL[name]))


def test_sngan_check_shape() -> None:
    spec = SPECS["sngan"]
    assert spec.check_shape((28, 28, 1)) is None and spec.check_shape((32, 32, 3)) is None
    why = spec.check_shape((27, 27, 1))
    assert isinstance(why, str) and "27x27" in why
    with pytest.raises(ConfigError, match="27x27"):
        spec.build_discriminator(_context(spec, (27, 27, 1), SMALL["sngan"]))


def test_cdcgan_needs_labels() -> None:
    spec = BUILTIN["cdcgan"]
    ctx = BuildContext((16, 16, 1), None, LATENT, SMALL["cdcgan"])
    with pytest.raises(ConfigError, match="labels"):
        spec.build_generator(ctx)
    with pytest.raises(ConfigError, match="labels"):
        spec.build_discriminator(ctx)


# ---------------------------------------------------------------- conditioning


def test_cdcgan_discriminator_depends_on_labels() -> None:
    spec = BUILTIN["cdcgan"]
    shape = (16, 16, 3)
    _, discriminator = _build(spec, shape, SMALL["cdcgan"])
    _, (images, _) = _inputs(spec, shape)
    as_0 = np.asarray(discriminator([images, np.array([0, 0], "int32")], training=False))
    as_2 = np.asarray(discriminator([images, np.array([2, 2], "int32")], training=False))
    again = np.asarray(discriminator([images, np.array([0, 0], "int32")], training=False))
    np.testing.assert_allclose(as_0, again, rtol=1e-6)
    assert np.all(np.abs(as_0 - as_2) > 1e-6)


def test_cdcgan_generator_depends_on_labels() -> None:
    spec = BUILTIN["cdcgan"]
    shape = (16, 16, 1)
    generator, _ = _build(spec, shape, SMALL["cdcgan"])
    ([z, _], _) = _inputs(spec, shape)
    as_0 = np.asarray(generator([z, np.array([0, 0], "int32")], training=False))
    as_1 = np.asarray(generator([z, np.array([1, 1], "int32")], training=False))
    per_image_change = np.abs(as_0 - as_1).reshape(BATCH, -1).max(axis=1)
    assert np.all(per_image_change > 1e-6)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_mixed_precision_keeps_images_and_logits_in_float32(name: str) -> None:
    # ganlab's precision setting switches the global dtype policy; losses and
    # sample grids expect full-precision outputs whatever the compute dtype.
    spec = SPECS[name]
    shape = (8, 8, 1)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        generator, discriminator = _build(spec, shape, SMALL[name])
        g_in, d_in = _inputs(spec, shape)
        # Keras refuses a list that mixes tensors and numpy arrays.
        fake = generator(g_in, training=True)
        labels = keras.ops.convert_to_tensor(d_in[1]) if spec.conditional else None
        logits = discriminator([fake, labels] if spec.conditional else fake, training=True)
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.backend.standardize_dtype(fake.dtype) == "float32"
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert tuple(fake.shape) == (BATCH, *shape) and tuple(logits.shape) == (BATCH, 1)


# -------------------------------------------------------------- hyperparameters


def _other_value(param: Param, current: Any) -> Any:
    if param.choices is not None:
        return next(c for c in param.choices if c != current)
    if param.type is bool:
        return not current
    if param.type is int:
        return current * 2 if param.high is None or current * 2 <= param.high else current - 1
    return current / 2 if current > 0 else min(0.5, param.high)


def _fingerprint(spec: ArchitectureSpec, hparams: dict[str, Any]) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Parameter counts and training-mode outputs under fixed seeds (dropout and batch norm included)."""
    shape = (16, 16, 1)
    generator, discriminator = _build(spec, shape, hparams)
    g_in, d_in = _inputs(spec, shape)
    keras.utils.set_random_seed(2)
    fake = np.asarray(generator(g_in, training=True))
    logits = np.asarray(discriminator(d_in, training=True))
    return generator.count_params(), discriminator.count_params(), fake, logits


def _differs(a: tuple[int, int, np.ndarray, np.ndarray], b: tuple[int, int, np.ndarray, np.ndarray]) -> bool:
    return a[0] != b[0] or a[1] != b[1] or not np.allclose(a[2], b[2]) or not np.allclose(a[3], b[3])


@pytest.mark.parametrize("name", sorted(SPECS))
def test_same_settings_build_the_same_networks(name: str) -> None:
    # The control for the next test: only a changed hyperparameter may change the fingerprint.
    spec = SPECS[name]
    assert not _differs(_fingerprint(spec, SMALL[name]), _fingerprint(spec, SMALL[name]))


@pytest.mark.parametrize(
    ("name", "param"),
    [(name, p) for name in sorted(SPECS) for p in SPECS[name].params],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_every_declared_hyperparameter_changes_the_networks(name: str, param: Param) -> None:
    spec = SPECS[name]
    base = dict(SMALL[name])
    changed = {**base, param.name: _other_value(param, base.get(param.name, param.default))}
    assert _differs(_fingerprint(spec, base), _fingerprint(spec, changed)), f"{name}: {param.name} has no effect"


def test_base_filters_widens_dcgan() -> None:
    narrow = _build(BUILTIN["dcgan"], (32, 32, 3), {"base_filters": 8})
    wide = _build(BUILTIN["dcgan"], (32, 32, 3), {"base_filters": 16})
    assert wide[0].count_params() > narrow[0].count_params()
    assert wide[1].count_params() > narrow[1].count_params()


def test_unknown_hyperparameter_is_refused_by_the_builder() -> None:
    spec = BUILTIN["dcgan"]
    with pytest.raises(ConfigError, match="base_filter"):
        spec.build_generator(_context(spec, (16, 16, 1), {"base_filter": 8}))


# --------------------------------------------------------- the example plugin


def test_sngan_is_found_in_the_plugins_dir_and_trains_a_step() -> None:
    registry = Registry().load(plugins_dir=PLUGINS_DIR)
    entries = {e.name: e for e in registry.entries("architecture")}
    assert entries["sngan"].source == str(PLUGINS_DIR / "sngan.py")
    assert {entries[n].source for n in ("dcgan", "mlp", "cdcgan")} == {"builtin"}
    assert registry.problem_for("sngan") is None

    spec = registry.architecture("sngan")
    shape = (32, 32, 3)
    generator, discriminator = _build(spec, shape, {"base_filters": 4})
    g_in, d_in = _inputs(spec, shape)
    fake = np.asarray(generator(g_in, training=True))
    assert fake.shape == (BATCH, *shape)
    assert np.asarray(discriminator(fake, training=True)).shape == (BATCH, 1)


def test_sngan_discriminator_kernels_have_unit_spectral_norm() -> None:
    spec = SPECS["sngan"]
    shape = (16, 16, 1)
    # Many power iterations so the estimate, not the method, is exact enough to test.
    _, discriminator = _build(spec, shape, {"base_filters": 4, "power_iterations": 10})
    wrapped = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.SpectralNormalization)]
    bare = [layer for layer in discriminator.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    assert wrapped and not bare
    _, images = _inputs(spec, shape)
    before = [np.linalg.norm(np.asarray(w.layer.kernel).reshape(-1, w.layer.kernel.shape[-1]), 2) for w in wrapped]
    for _ in range(3):
        discriminator(images, training=True)
    after = [np.linalg.norm(np.asarray(w.layer.kernel).reshape(-1, w.layer.kernel.shape[-1]), 2) for w in wrapped]
    assert not np.allclose(before, 1.0, atol=0.05)
    np.testing.assert_allclose(after, 1.0, atol=0.02)


def test_sngan_uses_only_the_public_api() -> None:
    source = (PLUGINS_DIR / "sngan.py").read_text()
    assert "ganlab." in source
    imports = [line.strip() for line in source.splitlines() if line.strip().startswith(("import ganlab", "from ganlab"))]
    assert imports == ["import ganlab"]
    used = set(re.findall(r"\bganlab\.(\w+)", source))
    assert {"hookimpl", "ArchitectureSpec", "Param", "BuildContext"} <= used <= set(ganlab.__all__)


# ------------------------------------------------------------- process-level


def _run_python(code: str, **env: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_listing_the_architectures_does_not_import_keras() -> None:
    code = f"""
import json, sys
import ganlab.builtin.architectures as builtin
from ganlab.registry import Registry
registry = Registry()
registry.add_plugin(builtin, name="ganlab.builtin.architectures", source="builtin")
registry.load(plugins_dir={str(PLUGINS_DIR)!r}, builtins=False, entry_points=False)
names = sorted(e.name for e in registry.entries("architecture"))
print(json.dumps({{"names": names, "loaded": sorted(m for m in ("keras", "tensorflow", "jax") if m in sys.modules)}}))
"""
    out = _run_python(code)
    assert out == {"names": ["cdcgan", "dcgan", "mlp", "sngan"], "loaded": []}


def test_backend_sensitive_architectures_run_under_jax() -> None:
    # cdcgan (Embedding, keras.ops.sum, Dot on symbolic tensors) and sngan
    # (SpectralNormalization's in-call weight updates) are the ones that could
    # differ between backends; dcgan and mlp use a subset of their layers.
    # JAX compiles every initializer eagerly (one XLA compile per weight
    # shape), so only these two run, at 8x8.
    pytest.importorskip("jax")
    jax_small = {name: SMALL[name] for name in ("cdcgan", "sngan")}
    code = f"""
import json
import numpy as np
import keras
from ganlab import BuildContext
from ganlab.registry import Registry
registry = Registry().load(plugins_dir={str(PLUGINS_DIR)!r}, entry_points=False)
out = {{"backend": keras.backend.backend()}}
shape = (8, 8, 3)
for name, hp in {jax_small!r}.items():
    spec = registry.architecture(name)
    ctx = BuildContext(shape, 3 if spec.conditional else None, 8, hp)
    g, d = spec.build_generator(ctx), spec.build_discriminator(ctx)
    # Keras refuses a list mixing backend arrays and numpy, so every input is a tensor.
    z = keras.ops.convert_to_tensor(np.random.default_rng(0).standard_normal((2, 8)).astype("float32"))
    y = keras.ops.convert_to_tensor(np.array([0, 2], "int32"))
    fake = g([z, y] if spec.conditional else z, training=True)
    logits = d([fake, y] if spec.conditional else fake, training=True)
    out[name] = [list(fake.shape), list(logits.shape)]
print(json.dumps(out))
"""
    # Shapes, not speed, are under test: skipping XLA's optimisation passes cuts compile time about threefold.
    fast_compile = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    out = _run_python(code, KERAS_BACKEND="jax", XLA_FLAGS=fast_compile)
    assert out.pop("backend") == "jax"
    assert out == {name: [[BATCH, 8, 8, 3], [BATCH, 1]] for name in jax_small}
