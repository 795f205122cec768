"""Keras imports without the optional packages it would load for nothing, and nothing else changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ganlab.training.keras_import import LeanFinder, hidden_for


@pytest.fixture
def fake_packages(tmp_path, monkeypatch):
    """``fakekeras`` imports ``fakeopt`` when it can; ``fakestrict`` cannot work without it."""
    (tmp_path / "fakeopt.py").write_text("VALUE = 42\n")
    for name, body in {
        "fakekeras": """
            try:
                import fakeopt
                HAVE_OPT = True
            except ImportError:
                HAVE_OPT = False
            """,
        "fakestrict": """
            import fakeopt
            VALUE = fakeopt.VALUE
            """,
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(textwrap.dedent(body))
        (tmp_path / name / "data.txt").write_text("resource\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    finder = LeanFinder(("fakekeras", "fakestrict"), ("fakeopt",))
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    yield
    for name in ("fakeopt", "fakekeras", "fakestrict"):
        sys.modules.pop(name, None)


def test_an_optional_package_is_skipped_then_imports_as_usual(fake_packages):
    import fakekeras

    assert fakekeras.HAVE_OPT is False
    assert "fakeopt" not in sys.modules
    import fakeopt  # the guard is gone once the package has imported

    assert fakeopt.VALUE == 42
    # The module keeps its real loader: resources still read.
    from importlib.resources import files

    assert files("fakekeras").joinpath("data.txt").read_text() == "resource\n"
    assert type(fakekeras.__loader__).__name__ == "SourceFileLoader"


def test_a_package_that_needs_the_hidden_one_still_imports(fake_packages):
    import fakestrict

    assert fakestrict.VALUE == 42 and sys.modules["fakeopt"] is not None


def test_a_package_imported_before_is_not_hidden(fake_packages):
    import fakekeras
    import fakeopt  # noqa: F401

    assert fakekeras.HAVE_OPT is True


def test_only_tensorflow_runs_hide_jax():
    assert hidden_for("tensorflow") == ("jax", "sklearn")
    assert hidden_for("jax") == ("sklearn",)
    assert hidden_for(None) == ("sklearn",)


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_training_process_starts_without_loading_them(backend):
    """What `ganlab train` does first: choose the backend, then import Keras; both packages still work after."""
    script = textwrap.dedent(f"""
        import json, sys
        from ganlab.training.backend import activate_backend, prefer_backend
        prefer_backend({backend!r})
        activate_backend({backend!r})
        import keras
        loaded = [m for m in ("jax", "sklearn") if m in sys.modules]
        x = keras.ops.convert_to_numpy(keras.layers.Dense(2)(keras.ops.ones((1, 3))))
        from sklearn.neural_network import MLPClassifier
        import jax.numpy as jnp
        print(json.dumps({{"backend": keras.backend.backend(), "loaded": loaded, "shape": list(x.shape),
                           "jax": float(jnp.ones(2).sum()), "sklearn": MLPClassifier.__name__}}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"} | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parent, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == backend and out["shape"] == [1, 2]
    assert out["loaded"] == (["jax"] if backend == "jax" else [])
    assert out["jax"] == 2.0 and out["sklearn"] == "MLPClassifier"

