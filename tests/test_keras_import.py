"""Keras imports without the optional packages it would load for nothing, and nothing else changes."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ganlab.training import keras_import
from ganlab.training.keras_import import LeanFinder, hidden_for, installed_versions, is_tested


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
    # import_module, not two import statements: an import sorter would put fakekeras first.
    importlib.import_module("fakeopt")
    import fakekeras

    assert fakekeras.HAVE_OPT is True


def test_only_tensorflow_runs_hide_jax():
    assert hidden_for("tensorflow") == ("jax", "sklearn")
    assert hidden_for("jax") == ("sklearn",)
    assert hidden_for(None) == ("sklearn",)


def test_the_guard_acts_only_with_the_versions_it_was_tested_with():
    assert is_tested({"keras": "3.15.1", "tensorflow": "2.21.0"})
    assert is_tested({"keras": "3.15.0", "tensorflow": None})  # a JAX-only install
    assert not is_tested({"keras": "3.16.0", "tensorflow": "2.21.0"})
    assert not is_tested({"keras": "3.15.1", "tensorflow": "2.22.0rc1"})
    assert not is_tested({"keras": "3.15.1", "tensorflow": "unknown"})  # importable, no metadata under that name
    assert not is_tested({"keras": None, "tensorflow": "2.21.0"})


def _start_training_process(backend: str, keras_version: str | None = None) -> dict:
    """What `ganlab train` does first: choose the backend, then import Keras; both packages must still work after.

    ``keras_version`` makes the guard's own version gate read that Keras version instead of the installed one.
    """
    fake = "" if keras_version is None else (
        f"keras_import.installed_versions = lambda: {{**real_versions(), 'keras': {keras_version!r}}}")
    script = textwrap.dedent(f"""
        import json, sys
        from ganlab.training import keras_import
        real_versions = keras_import.installed_versions
        {fake}
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
    assert out["jax"] == 2.0 and out["sklearn"] == "MLPClassifier"
    return out


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_training_process_starts_without_loading_them(backend):
    if not is_tested(installed_versions()):
        pytest.skip(f"the guard steps aside for these untested versions: {installed_versions()}")
    out = _start_training_process(backend)
    assert out["loaded"] == (["jax"] if backend == "jax" else [])


def test_with_an_untested_keras_the_guard_steps_aside():
    """A Keras release the guard was not tested with imports the plain way, loading what its init loads."""
    out = _start_training_process("tensorflow", keras_version="3.99.0")
    assert out["loaded"] == ["jax", "sklearn"]


def test_with_an_untested_keras_nothing_is_installed(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    for root in keras_import.ROOTS:  # as in a fresh process; put back afterwards
        monkeypatch.delitem(sys.modules, root, raising=False)
    monkeypatch.setattr(keras_import, "installed_versions", lambda: {"keras": "3.99.0", "tensorflow": "2.21.0"})
    keras_import.install("tensorflow")
    assert not any(isinstance(f, LeanFinder) for f in sys.meta_path)
    monkeypatch.setattr(keras_import, "installed_versions", lambda: {"keras": "3.15.1", "tensorflow": "2.21.0"})
    keras_import.install("tensorflow")
    assert sum(isinstance(f, LeanFinder) for f in sys.meta_path) == 1

