"""Built-in losses against hand-computed textbook values (TensorFlow backend unless stated)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from ganlab.builtin import losses  # noqa: E402
from ganlab.params import resolve_params  # noqa: E402
from ganlab.registry import Registry  # noqa: E402
from ganlab.specs import LossSpec, RegularizerContext  # noqa: E402
from ganlab.training.autodiff import input_gradient  # noqa: E402

REAL = np.array([[2.0], [-1.0], [0.5], [30.0]], dtype="float32")
FAKE = np.array([[-3.0], [0.0], [1.5], [-40.0]], dtype="float32")


def _spec(name: str) -> LossSpec:
    found: list[LossSpec] = []
    losses.register_losses(register=found.append)
    return {s.name: s for s in found}[name]


def _params(spec: LossSpec, **given: object) -> dict:
    return resolve_params(spec.params, given, spec.name)


def _value(x: object) -> float:
    arr = keras.ops.convert_to_numpy(x)
    assert arr.shape == (), f"loss must be a scalar, got shape {arr.shape}"
    return float(arr)


# math-module references, element by element, so none of the code under test is reused
def _sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _log_sig(v: float) -> float:
    # log(sigmoid(v)) computed without overflow for either sign
    return -math.log1p(math.exp(-v)) if v >= 0 else v - math.log1p(math.exp(v))


def _log_one_minus_sig(v: float) -> float:
    return _log_sig(-v)


R = [float(v) for v in REAL[:, 0]]
F = [float(v) for v in FAKE[:, 0]]


def _avg(values: list[float]) -> float:
    return sum(values) / len(values)


# ------------------------------------------------------------- textbook values


def test_minimax_matches_value_function() -> None:
    spec = _spec("minimax")
    p = _params(spec)
    expected_d = -(_avg([_log_sig(r) for r in R]) + _avg([_log_one_minus_sig(f) for f in F]))
    expected_g = _avg([_log_one_minus_sig(f) for f in F])
    assert _value(spec.discriminator_loss(REAL, FAKE, p)) == pytest.approx(expected_d, rel=1e-5)
    assert _value(spec.generator_loss(FAKE, p)) == pytest.approx(expected_g, rel=1e-5)


def test_non_saturating_matches_cross_entropy() -> None:
    spec = _spec("non-saturating")
    p = _params(spec)
    expected_d = -(_avg([_log_sig(r) for r in R]) + _avg([_log_one_minus_sig(f) for f in F]))
    expected_g = -_avg([_log_sig(f) for f in F])
    assert _value(spec.discriminator_loss(REAL, FAKE, p)) == pytest.approx(expected_d, rel=1e-5)
    assert _value(spec.generator_loss(FAKE, p)) == pytest.approx(expected_g, rel=1e-5)


def test_non_saturating_label_smoothing_is_one_sided() -> None:
    spec = _spec("non-saturating")
    s = 0.2
    p = _params(spec, label_smoothing=s)
    real_bce = _avg([-(1 - s) * _log_sig(r) - s * _log_one_minus_sig(r) for r in R])
    fake_bce = _avg([-_log_one_minus_sig(f) for f in F])  # fake targets stay exactly 0
    assert _value(spec.discriminator_loss(REAL, FAKE, p)) == pytest.approx(real_bce + fake_bce, rel=1e-5)


def test_wgan_losses() -> None:
    spec = _spec("wgan-gp")
    p = _params(spec)
    assert _value(spec.discriminator_loss(REAL, FAKE, p)) == pytest.approx(_avg(F) - _avg(R), rel=1e-6)
    assert _value(spec.generator_loss(FAKE, p)) == pytest.approx(-_avg(F), rel=1e-6)


def test_hinge_losses() -> None:
    spec = _spec("hinge")
    p = _params(spec)
    expected_d = _avg([max(0.0, 1 - r) for r in R]) + _avg([max(0.0, 1 + f) for f in F])
    assert _value(spec.discriminator_loss(REAL, FAKE, p)) == pytest.approx(expected_d, rel=1e-6)
    assert _value(spec.generator_loss(FAKE, p)) == pytest.approx(-_avg(F), rel=1e-6)


@pytest.mark.parametrize("a,b,c", [(0.0, 1.0, 1.0), (-1.0, 1.0, 0.0)])
def test_lsgan_losses(a: float, b: float, c: float) -> None:
    spec = _spec("lsgan")
    p = _params(spec, a=a, b=b, c=c)
    expected_d = 0.5 * _avg([(r - b) ** 2 for r in R]) + 0.5 * _avg([(f - a) ** 2 for f in F])
    expected_g = 0.5 * _avg([(f - c) ** 2 for f in F])
    assert _value(spec.discriminator_loss(REAL, FAKE, p)) == pytest.approx(expected_d, rel=1e-5)
    assert _value(spec.generator_loss(FAKE, p)) == pytest.approx(expected_g, rel=1e-5)


def test_extreme_logits_stay_finite() -> None:
    big = np.array([[1e4], [-1e4]], dtype="float32")
    for name in ("minimax", "non-saturating"):
        spec = _spec(name)
        p = _params(spec)
        assert math.isfinite(_value(spec.discriminator_loss(big, big, p)))
        assert math.isfinite(_value(spec.generator_loss(big, p)))
    # -log sigmoid(-1e4) = 1e4 exactly in the softplus form; a naive log(sigmoid) gives inf
    assert _value(_spec("non-saturating").generator_loss(np.array([[-1e4]], "float32"), {})) == pytest.approx(1e4)


# ----------------------------------------------------------------- saturation


def test_minimax_generator_saturates_where_non_saturating_does_not() -> None:
    """At D(G(z)) ~ 0 the minimax G gradient vanishes (Goodfellow et al. 2014, sec. 3)."""
    fake = np.array([[-8.0], [-6.0]], dtype="float32")
    n = len(fake)
    g_minimax = keras.ops.convert_to_numpy(input_gradient(lambda t: _spec("minimax").generator_loss(t, {}), fake))
    g_nonsat = keras.ops.convert_to_numpy(input_gradient(lambda t: _spec("non-saturating").generator_loss(t, {}), fake))
    # d/dl log(1 - sigmoid(l)) = -sigmoid(l); d/dl -log sigmoid(l) = -(1 - sigmoid(l))
    expected_minimax = np.array([[-_sig(v) / n] for v in fake[:, 0]])
    expected_nonsat = np.array([[-(1 - _sig(v)) / n] for v in fake[:, 0]])
    np.testing.assert_allclose(g_minimax, expected_minimax, rtol=1e-4)
    np.testing.assert_allclose(g_nonsat, expected_nonsat, rtol=1e-4)
    # the ratio is sigmoid(l) / (1 - sigmoid(l)) = exp(l): < 0.003 at l <= -6
    assert np.all(np.abs(g_minimax) < 3e-3 * np.abs(g_nonsat))
    # both push the logit the same way: up
    assert np.all(g_minimax < 0) and np.all(g_nonsat < 0)


# ------------------------------------------------------------- regularisers


def _linear_critic(w: np.ndarray):
    """D(x) = <w, x> per example: its input gradient is w everywhere."""
    wt = keras.ops.convert_to_tensor(w)

    def d(x):
        return keras.ops.reshape(keras.ops.sum(keras.ops.cast(x, "float32") * wt, axis=(1, 2, 3)), (-1, 1))

    return d


def _ctx(w: np.ndarray, dtype: str = "float32", seed: object = 7) -> RegularizerContext:
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, size=(3,) + w.shape).astype(dtype)
    fake = rng.uniform(-1, 1, size=(3,) + w.shape).astype(dtype)
    return RegularizerContext(
        real=keras.ops.convert_to_tensor(real),
        fake=keras.ops.convert_to_tensor(fake),
        labels=None,
        discriminator=_linear_critic(w),
        input_gradient=input_gradient,
        seed=seed,
    )


def _weights(norm: float) -> np.ndarray:
    w = np.random.default_rng(1).normal(size=(4, 4, 2)).astype("float32")
    return (w / np.linalg.norm(w) * norm).astype("float32")


def test_gradient_penalty_zero_for_unit_norm_critic() -> None:
    spec = _spec("wgan-gp")
    gp = _value(spec.regularizer(_ctx(_weights(1.0)), _params(spec)))
    assert gp == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("norm,weight", [(3.0, 10.0), (0.5, 2.0)])
def test_gradient_penalty_exact_value(norm: float, weight: float) -> None:
    spec = _spec("wgan-gp")
    gp = _value(spec.regularizer(_ctx(_weights(norm)), _params(spec, gp_weight=weight)))
    assert gp == pytest.approx(weight * (norm - 1.0) ** 2, rel=1e-4)


def test_gradient_penalty_with_seed_generator_and_no_seed() -> None:
    spec = _spec("wgan-gp")
    w = _weights(2.0)
    for seed in (keras.random.SeedGenerator(3), None):
        assert _value(spec.regularizer(_ctx(w, seed=seed), _params(spec))) == pytest.approx(10.0, rel=1e-4)


def test_gradient_penalty_interpolates_between_real_and_fake() -> None:
    """The critic sees points on the segment real -> fake, one mixing weight per example."""
    spec = _spec("wgan-gp")
    ctx = _ctx(_weights(1.0))
    seen = []
    inner = ctx.discriminator

    def recording(x):
        seen.append(keras.ops.convert_to_numpy(x))
        return inner(x)

    ctx.discriminator = recording
    spec.regularizer(ctx, _params(spec))
    x_hat = seen[-1]
    real, fake = (keras.ops.convert_to_numpy(t) for t in (ctx.real, ctx.fake))
    for i in range(len(real)):
        diff = (fake[i] - real[i]).ravel()
        eps = float(np.dot(x_hat[i].ravel() - real[i].ravel(), diff) / np.dot(diff, diff))
        assert 0.0 <= eps <= 1.0
        np.testing.assert_allclose(x_hat[i], real[i] + eps * (fake[i] - real[i]), atol=1e-5)


@pytest.mark.parametrize("gamma,norm", [(10.0, 1.0), (0.5, 3.0)])
def test_r1_is_half_gamma_squared_gradient_norm(gamma: float, norm: float) -> None:
    spec = _spec("non-saturating")
    r1 = _value(spec.regularizer(_ctx(_weights(norm)), _params(spec, r1_gamma=gamma)))
    assert r1 == pytest.approx(gamma / 2.0 * norm**2, rel=1e-4)


def test_r1_off_costs_nothing() -> None:
    spec = _spec("non-saturating")
    ctx = _ctx(_weights(2.0))

    def must_not_run(*args):
        raise AssertionError("the discriminator or its gradient was computed with r1_gamma=0")

    ctx.discriminator = must_not_run
    ctx.input_gradient = must_not_run
    out = spec.regularizer(ctx, _params(spec))
    assert _value(out) == 0.0
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


# ------------------------------------------------------------ mixed precision


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", ["minimax", "non-saturating", "wgan-gp", "hinge", "lsgan"])
def test_low_precision_logits_give_float32(name: str, dtype: str) -> None:
    spec = _spec(name)
    p = _params(spec)
    real = keras.ops.cast(REAL, dtype)
    fake = keras.ops.cast(FAKE, dtype)
    d = spec.discriminator_loss(real, fake, p)
    g = spec.generator_loss(fake, p)
    for out in (d, g):
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
    # the inputs are exactly representable in both dtypes, so the values match float32's
    assert _value(d) == pytest.approx(_value(spec.discriminator_loss(REAL, FAKE, p)), rel=1e-5)
    assert _value(g) == pytest.approx(_value(spec.generator_loss(FAKE, p)), rel=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_regularisers_accept_low_precision_images(dtype: str) -> None:
    gp_spec, r1_spec = _spec("wgan-gp"), _spec("non-saturating")
    w = _weights(2.0)
    gp = gp_spec.regularizer(_ctx(w, dtype=dtype), _params(gp_spec))
    r1 = r1_spec.regularizer(_ctx(w, dtype=dtype), _params(r1_spec, r1_gamma=1.0))
    assert keras.backend.standardize_dtype(gp.dtype) == "float32"
    assert keras.backend.standardize_dtype(r1.dtype) == "float32"
    assert _value(gp) == pytest.approx(10.0, rel=1e-3)
    assert _value(r1) == pytest.approx(2.0, rel=1e-3)


# ------------------------------------------------------------------ registry


def test_registry_lists_all_five_with_references() -> None:
    reg = Registry().load(builtins=True, entry_points=False)
    by_name = {e.name: e for e in reg.entries("loss")}
    assert {"minimax", "non-saturating", "wgan-gp", "hinge", "lsgan"} <= set(by_name)
    expected_refs = {
        "minimax": "1406.2661",
        "non-saturating": "1801.04406",
        "wgan-gp": "1704.00028",
        "hinge": "1705.02894",
        "lsgan": "1611.04076",
    }
    for name, arxiv in expected_refs.items():
        entry = by_name[name]
        assert entry.source == "builtin"
        assert arxiv in entry.spec.reference
        assert entry.spec.description
    wgan = reg.loss("wgan-gp").defaults
    assert (wgan.n_critic, wgan.lr_g, wgan.lr_d, wgan.beta_1, wgan.beta_2) == (5, 1e-4, 1e-4, 0.0, 0.9)
    assert reg.loss("wgan-gp").regularizer is not None and reg.loss("hinge").regularizer is None


def test_declared_ranges_refuse_bad_values() -> None:
    from ganlab.errors import ConfigError

    with pytest.raises(ConfigError, match="label_smoothing"):
        _params(_spec("non-saturating"), label_smoothing=0.9)
    with pytest.raises(ConfigError, match="gp_weight"):
        _params(_spec("wgan-gp"), gp_weight=-1)


def test_plugin_module_does_not_import_keras() -> None:
    code = "import sys, ganlab.builtin.losses as m; m.register_losses(register=lambda s: None); print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------ JAX


def test_gradient_penalty_and_r1_under_jax() -> None:
    pytest.importorskip("jax")
    code = textwrap.dedent(
        """
        import jax, keras, numpy as np
        assert keras.backend.backend() == "jax"
        from ganlab.training.autodiff import input_gradient
        from ganlab.builtin import losses
        from ganlab.specs import RegularizerContext
        specs = {}
        losses.register_losses(register=lambda s: specs.__setitem__(s.name, s))
        w = np.full((2, 2, 1), 1.5, "float32")  # ||w|| = 3
        d = lambda x: keras.ops.sum(x * w, axis=(1, 2, 3))[:, None]
        real = np.zeros((2, 2, 2, 1), "float32"); fake = np.ones((2, 2, 2, 1), "float32")
        def step(real, fake, key):
            ctx = RegularizerContext(real, fake, None, d, input_gradient, key)
            return (specs["wgan-gp"].regularizer(ctx, {"gp_weight": 10.0}),
                    specs["non-saturating"].regularizer(ctx, {"r1_gamma": 4.0}))
        gp, r1 = jax.jit(step)(real, fake, jax.random.PRNGKey(0))
        print(float(gp), float(r1), gp.dtype)
        """
    )
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    gp, r1, dtype = out.stdout.split()
    assert float(gp) == pytest.approx(10.0 * (3.0 - 1.0) ** 2, rel=1e-4)
    assert float(r1) == pytest.approx(4.0 / 2.0 * 9.0, rel=1e-4)
    assert dtype == "float32"
