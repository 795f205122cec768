"""Helper modules beside plugin files (``plugins/_common.py``, ``from _common import x``).

They import, train, and are held to the plugin files' rules: checked permissions,
hashes recorded at enqueue with the plugin that imports them, verified by the
worker's child (a changed helper is refused like a changed plugin, and never runs).
Real files, a real SQLite queue, and for the worker case a real worker and its children.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ganlab.cli import cli
from ganlab.errors import PluginRefused
from ganlab.plugin_files import PinnedFile
from ganlab.plugin_helpers import HelperFinder, imported_helper_names
from ganlab.registry import Registry, reset_cache
from ganlab.store import Queue

LAYERS = "WIDTH = 16\n"
COMMON = '''
from _layers import WIDTH


def mlp(ctx, out):
    import keras
    from keras import layers

    z = keras.Input((ctx.latent_dim,))
    h = layers.Dense(WIDTH, activation="relu")(z)
    return keras.Model(z, layers.Dense(out)(h))
'''
PLUGIN = '''
import ganlab
from _common import mlp


def _g(ctx):
    import keras
    from keras import layers

    z = keras.Input((ctx.latent_dim,))
    h = mlp(ctx, ctx.height * ctx.width * ctx.channels)(z)
    return keras.Model(z, layers.Reshape(ctx.image_shape)(layers.Activation("tanh")(h)))


def _d(ctx):
    {lazy}
    import keras
    from keras import layers

    x = keras.Input(ctx.image_shape)
    h = layers.Dense(16)(layers.Flatten()(x))
    return keras.Model(x, layers.Dense(1)(layers.LeakyReLU(0.2)(h)))


@ganlab.hookimpl
def register_architectures(register):
    register(ganlab.ArchitectureSpec(name="{name}", description="uses helpers",
                                     build_generator=_g, build_discriminator=_d))
'''
SMALL = ["--dataset", "digits", "--loss", "non-saturating", "--batch-size", "16", "--steps", "5",
         "--set", "size=8", "--set", "latent_dim=8", "--set", "eval_samples=64", "--set", "log_every=5"]


def write(folder: Path, name: str, code: str, mode: int = 0o644) -> Path:
    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(code))
    path.chmod(mode)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(*args: str) -> Result:
    reset_cache()  # each CLI call is a fresh process in real use
    return CliRunner().invoke(cli, list(args))


def marker_code(marker: Path) -> str:
    return f"import pathlib, os\npathlib.Path({str(marker)!r}).write_text(str(os.getpid()))\n"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    monkeypatch.delenv("GANLAB_PLUGINS_DIR", raising=False)
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    reset_cache()
    yield
    reset_cache()


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins"
    write(folder, "_layers", LAYERS)
    write(folder, "_common", COMMON)
    write(folder, "helped", PLUGIN.format(name="helped", lazy="from _lazy import SLOPE  # noqa: F401"))
    write(folder, "_lazy", "SLOPE = 0.2\n")
    write(folder, "_unused", "raise SystemExit('a helper nobody imports never runs')\n")
    return folder


def test_imports_found_in_source() -> None:
    source = b"import os, _a\nfrom _b.x import y\nfrom . import _c\ndef f():\n    import _d as d\nimport _thread\n"
    assert imported_helper_names(source, "p.py") == ["_a", "_b", "_d"]  # not relative, not the standard library
    assert imported_helper_names(b"def (:", "broken.py") == []


def test_enqueue_records_the_helpers_a_plugin_imports_and_queue_show_lists_them(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    db = tmp_path / "q.db"
    added = run("--plugins-dir", str(folder), "queue", "--db", str(db), "add", "-q", "--arch", "helped,mlp",
                "--set", "size=8")
    assert added.exit_code == 0, added.output
    helped_id, builtin_id = map(int, added.stdout.split())
    recorded = json.loads(run("queue", "--db", str(db), "show", str(helped_id), "--json").stdout)["plugin_files"]
    files = {name: folder / f"{name}.py" for name in ("helped", "_common", "_lazy", "_layers")}
    assert recorded == [{"kind": "architecture", "name": "helped", "path": str(files["helped"]),
                         "sha256": sha256(files["helped"])}] + [
        {"kind": "helper", "name": name, "path": str(files[name]), "sha256": sha256(files[name])}
        for name in ("_common", "_layers", "_lazy")]  # through _common, and the one imported in a function
    assert json.loads(run("queue", "--db", str(db), "show", str(builtin_id), "--json").stdout)["plugin_files"] == []
    shown = run("queue", "--db", str(db), "show", str(helped_id)).stdout
    assert f"helper _layers: {files['_layers']}" in shown and f"sha256 {sha256(files['_layers'])}" in shown


def test_a_loose_helper_is_refused_at_enqueue_and_in_the_worker(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    layers = folder / "_layers.py"
    pins = [PinnedFile(p, sha256(p)) for p in (folder / "helped.py", folder / "_common.py", layers)]
    layers.chmod(0o666)
    added = run("--plugins-dir", str(folder), "queue", "--db", str(tmp_path / "q.db"), "add", "-q", "--arch", "helped")
    assert added.exit_code == 1 and len(added.output.splitlines()) == 1, added.output
    assert f"helper file {layers} is writable by everyone (mode 0666)" in added.output
    with pytest.raises(PluginRefused, match=f"helper file {layers} is writable by everyone"):
        Registry().load(folder, entry_points=False, pinned=pins)


def test_a_pinned_registry_imports_only_recorded_unchanged_helpers(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    plugin, common, layers, lazy = (folder / f"{n}.py" for n in ("helped", "_common", "_layers", "_lazy"))
    pins = [PinnedFile(p, sha256(p)) for p in (plugin, common, layers, lazy)]
    reg = Registry().load(folder, entry_points=False, pinned=pins)
    assert reg.architecture("helped") is not None and reg.problems == []

    # A helper the record does not hold is not imported (here: queued before the plugin imported it).
    reset_cache()
    reg = Registry().load(folder, entry_points=False, pinned=pins[:2] + pins[3:])
    assert reg.find("helped") == []
    assert f"helper file {layers} was not recorded when this experiment was queued" in reg.problems[0].message

    # A helper changed since: refused before any plugin code runs.
    marker = tmp_path / "tampered-ran"
    layers.write_text(marker_code(marker) + LAYERS)
    reset_cache()
    with pytest.raises(PluginRefused) as refused:
        Registry().load(folder, entry_points=False, pinned=pins)
    assert str(refused.value) == (f"helper file {layers} changed since this experiment was queued (sha256 "
                                  f"{pins[2].sha256} -> {sha256(layers)}), so none of it ran; check the change")
    assert not marker.exists()


def test_a_helper_never_stands_in_for_a_real_module(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    marker = tmp_path / "shadow-ran"
    for name in ("_thread", "_pytest", "_json"):  # standard library, installed, standard library extension
        write(folder, name, marker_code(marker))
    write(folder, "_layers", LAYERS)
    write(folder, "_common", COMMON)
    write(folder, "uses", "import _json, _pytest, _thread\n" + PLUGIN.format(name="uses", lazy=""))
    reg = Registry().load(folder, entry_points=False)
    assert reg.architecture("uses") is not None and reg.problems == []
    assert not marker.exists()
    finder = HelperFinder(folder)
    assert [name for name in ("_thread", "_pytest", "_json", "_layers") if finder.source(name)] == ["_layers"]
    recorded = reg.plugin_files("uses", "digits", "non-saturating")
    assert [(f.kind, f.name) for f in recorded] == [("architecture", "uses"), ("helper", "_common"), ("helper", "_layers")]


def test_a_plugin_importing_helpers_trains_in_a_worker_and_a_tampered_helper_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    write(folder, "_fragile", "DEPTH = 1\n")
    write(folder, "other", "from _fragile import DEPTH  # noqa: F401\n" + PLUGIN.format(name="other", lazy=""))
    url = f"sqlite:///{tmp_path / 'q.db'}"
    added = run("--plugins-dir", str(folder), "queue", "--db", url, "add", "-q", "--arch", "helped,other", *SMALL)
    assert added.exit_code == 0, added.output
    helped_id, other_id = map(int, added.stdout.split())
    fragile = folder / "_fragile.py"
    queued_sha = sha256(fragile)
    marker = tmp_path / "tampered-ran"
    fragile.write_text(marker_code(marker) + "DEPTH = 1\n")  # changed between queueing and running

    # Started elsewhere, so that nothing of the folder is on the child's import path.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cmd = [sys.executable, "-m", "ganlab", "--plugins-dir", str(folder), "worker", "--db", url, "--runs-dir",
           str(tmp_path / "runs"), "--gpus", "none", "--poll", "0.3", "--until-empty", "--no-prestart"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(cmd, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with Queue.open(url) as q:
        helped, other = q.get(helped_id), q.get(other_id)
    assert helped.status == "succeeded" and helped.step == 5, (helped.error, proc.stdout)
    assert other.status == "failed" and other.attempts == 1, (other.error, proc.stdout)
    assert other.error.startswith(f"helper file {fragile} changed since this experiment was queued (sha256 "
                                  f"{queued_sha} -> {sha256(fragile)}), so none of it ran")
    assert other.error.endswith(f"retry {other_id} --rehash-plugins")
    assert not marker.exists(), "the tampered helper ran"
