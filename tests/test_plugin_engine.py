"""The plugin engine: the three discovery routes, the hook contract, and every load error."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import textwrap
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

import ganlab
from ganlab import hookspecs
from ganlab.cli import cli
from ganlab.errors import PluginError, PluginValidationError
from ganlab.registry import Registry, load_plugins, reset_cache

REPO = Path(__file__).resolve().parents[1]


def _arch(name: str, **kw) -> ganlab.ArchitectureSpec:
    return ganlab.ArchitectureSpec(
        name=name,
        description=f"{name} test pair",
        build_generator=lambda ctx: ("G", ctx.image_shape),
        build_discriminator=lambda ctx: ("D", ctx.image_shape),
        params=(ganlab.Param("width", int, 8, "units", low=1, high=64),),
        **kw,
    )


class FakePlugin:
    """One plugin implementing every hook, as a third party would."""

    @staticmethod
    @ganlab.hookimpl
    def register_architectures(register):
        register(_arch("fake-arch", reference="Nobody 2026"))

    @staticmethod
    @ganlab.hookimpl
    def register_datasets(register):
        import numpy as np

        register(
            ganlab.DatasetSpec(
                name="fake-data",
                description="four black squares",
                load=lambda params: ganlab.ImageData(np.zeros((4, 8, 8, 1), np.uint8)),
            )
        )

    @staticmethod
    @ganlab.hookimpl
    def register_losses(register):
        register(
            ganlab.LossSpec(
                name="fake-loss",
                description="zero",
                discriminator_loss=lambda r, f, p: 0.0,
                generator_loss=lambda f, p: 0.0,
                defaults=ganlab.TrainingDefaults(n_critic=3),
            )
        )

    @staticmethod
    @ganlab.hookimpl
    def register_augmentations(register):
        register(ganlab.AugmentationSpec(name="fake-aug", description="negate", apply=lambda x, ctx: -x))

    @staticmethod
    @ganlab.hookimpl
    def register_metrics(register):
        features = ganlab.FeatureSpec("fake-features", "rows as they are", lambda ctx: None)
        register(ganlab.MetricSpec(name="fake-metric", description="mean gap", outputs=("gap",), features=features,
                                   compute=lambda real, fake, ctx: {"gap": float(abs(real.mean() - fake.mean()))}))


@pytest.fixture
def registry():
    reg = Registry()
    reg.add_plugin(FakePlugin, name="fake", source="tests")
    try:
        reg.collect()
        yield reg
    finally:
        reg.pm.unregister(name="fake")
        assert reg.pm.get_plugin("fake") is None


@pytest.fixture(autouse=True)
def _fresh_cache():
    reset_cache()
    yield
    reset_cache()


def write_plugin(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


ARCH_PLUGIN = """
import ganlab

@ganlab.hookimpl
def register_architectures(register):
    register(ganlab.ArchitectureSpec(
        name={name!r}, description="from a file",
        build_generator=lambda ctx: None, build_discriminator=lambda ctx: None))
"""


# ------------------------------------------------------------------ hook contract


def test_fake_plugin_exercises_every_hook(registry):
    assert [e.name for e in registry.entries("architecture")] == ["fake-arch"]
    assert [e.name for e in registry.entries("dataset")] == ["fake-data"]
    assert [e.name for e in registry.entries("loss")] == ["fake-loss"]
    arch = registry.architecture("fake-arch")
    ctx = ganlab.BuildContext(image_shape=(8, 8, 1), num_classes=None, latent_dim=4)
    assert arch.build_generator(ctx) == ("G", (8, 8, 1))
    assert registry.dataset("fake-data").load({}).image_shape == (8, 8, 1)
    assert registry.loss("fake-loss").defaults.n_critic == 3
    assert [e.name for e in registry.entries("augmentation")] == ["fake-aug"]
    assert registry.augmentation("fake-aug").apply(2.0, None) == -2.0
    import numpy as np

    metric = registry.metric("fake-metric")
    assert metric.compute(np.ones((2, 1)), np.zeros((2, 1)), ganlab.MetricContext({})) == {"gap": 1.0}
    assert all(e.source == "tests" for e in registry.entries())


def test_every_hook_is_documented_and_tested():
    hooks = [n for n in dir(hookspecs) if n.startswith("register_")]
    assert sorted(hooks) == ["register_architectures", "register_augmentations", "register_datasets", "register_losses",
                             "register_metrics"]
    plugin_doc = (REPO / "docs" / "plugins.md").read_text()
    for name in hooks:
        assert getattr(hookspecs, name).__doc__.strip(), f"{name} has no docstring"
        assert f"`{name}`" in plugin_doc, f"{name} is not in docs/plugins.md"
        assert hasattr(FakePlugin, name), f"{name} is not exercised by FakePlugin"


def test_unknown_name_suggests_a_close_match(registry):
    with pytest.raises(PluginError, match=r"unknown architecture 'fake-ach'; did you mean 'fake-arch'\?"):
        registry.architecture("fake-ach")


def test_builtins_load_like_any_plugin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./plugins here: built-ins only
    reg = Registry().load(builtins=True, entry_points=False)
    from ganlab.builtin import DEFAULT_PLUGINS

    for modname in DEFAULT_PLUGINS:
        assert reg.pm.get_plugin(modname) is sys.modules[modname]
    assert reg.entries() and {e.source for e in reg.entries()} == {"builtin"}


def test_load_is_idempotent(tmp_path):
    write_plugin(tmp_path, "one", ARCH_PLUGIN.format(name="one"))
    reg = Registry()
    reg.load(tmp_path, builtins=False, entry_points=False)
    reg.load(tmp_path, builtins=False, entry_points=False)
    assert [e.name for e in reg.entries()] == ["one"]
    assert reg.problems == []
    assert load_plugins(tmp_path) is load_plugins(tmp_path)


# ------------------------------------------------------------------ entry points


class FakeDistribution:
    def __init__(self, name: str, version: str, entry_points):
        self.metadata = {"name": name}
        self.version = version
        self.entry_points = entry_points


def test_entry_point_plugins_load_with_their_package_source(monkeypatch):
    module = types.ModuleType("fake_ganlab_pkg")
    exec(ARCH_PLUGIN.format(name="from-pkg"), module.__dict__)
    monkeypatch.setitem(sys.modules, "fake_ganlab_pkg", module)
    good = importlib.metadata.EntryPoint(name="fakepkg", value="fake_ganlab_pkg", group="ganlab")
    other_group = importlib.metadata.EntryPoint(name="x", value="nowhere_at_all", group="console_scripts")
    broken = importlib.metadata.EntryPoint(name="broken", value="no_such_module_here", group="ganlab")
    dists = [
        FakeDistribution("fake-gan", "1.2.3", [good, other_group]),
        FakeDistribution("broken-gan", "0.1", [broken]),
    ]
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: iter(dists))
    reg = Registry().load(builtins=False, entry_points=True)
    entry = reg.find("from-pkg")[0]
    assert entry.source == "package fake-gan 1.2.3"
    assert reg.pm.get_plugin("fakepkg") is module
    [problem] = reg.problems
    assert problem.message.startswith("plugin package broken-gan (no_such_module_here) failed to import: ModuleNotFoundError")
    with pytest.raises(PluginError, match="broken-gan"):
        reg.architecture("broken")


# ------------------------------------------------------------------ plugins dir


def test_plugins_dir_loads_by_path_and_isolates_a_broken_file(tmp_path):
    good = write_plugin(tmp_path, "good", ARCH_PLUGIN.format(name="good"))
    write_plugin(tmp_path, "broken", "import ganlab\nraise RuntimeError('disk on fire')\n")
    write_plugin(tmp_path, "_private", "raise SystemExit('helper modules are not plugins')\n")
    reg = Registry().load(tmp_path, builtins=False, entry_points=False)
    assert reg.find("good")[0].source == str(good)
    [problem] = reg.problems
    expected = f"plugin file {tmp_path / 'broken.py'} failed to import: RuntimeError: disk on fire"
    assert problem.message == expected
    with pytest.raises(PluginError) as info:
        reg.architecture("broken")
    assert str(info.value) == expected


def test_cli_lists_good_plugins_and_warns_about_the_broken_one(tmp_path):
    write_plugin(tmp_path, "good", ARCH_PLUGIN.format(name="good"))
    write_plugin(tmp_path, "broken", "def broken(:\n")
    result = CliRunner().invoke(cli, ["--plugins-dir", str(tmp_path), "plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert any(e["name"] == "good" and e["source"] == str(tmp_path / "good.py") for e in listed)
    assert f"warning: plugin file {tmp_path / 'broken.py'} failed to import: SyntaxError" in result.stderr
    using = CliRunner().invoke(cli, ["--plugins-dir", str(tmp_path), "plugins", "show", "broken"])
    assert using.exit_code == 1
    assert using.output.strip().startswith(f"Error: plugin file {tmp_path / 'broken.py'} failed to import: SyntaxError")
    assert len(using.output.strip().splitlines()) == 1


def test_env_var_selects_plugins_dir(tmp_path, monkeypatch):
    write_plugin(tmp_path, "envplug", ARCH_PLUGIN.format(name="envplug"))
    monkeypatch.setenv("GANLAB_PLUGINS_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["plugins", "--kind", "architecture", "--json"])
    assert result.exit_code == 0, result.output
    assert "envplug" in [e["name"] for e in json.loads(result.stdout)]


def test_missing_plugins_dir_is_a_one_line_error(tmp_path):
    missing = tmp_path / "nope"
    result = CliRunner().invoke(cli, ["--plugins-dir", str(missing), "plugins"])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: plugins dir '{missing}' does not exist; create it, point --plugins-dir/GANLAB_PLUGINS_DIR at a folder, "
        "or turn local plugins off with --no-local-plugins\n"
    )


def test_default_plugins_dir_is_the_repo_plugins_folder(monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("GANLAB_PLUGINS_DIR", raising=False)
    reg = load_plugins()
    sources = {e.source for e in reg.entries()}
    assert any(s.startswith("plugins/") or s.startswith(str(REPO / "plugins")) for s in sources), sources


# ------------------------------------------------------------------ contract errors


def test_two_plugins_registering_one_name_names_both_sources(tmp_path):
    a = write_plugin(tmp_path, "a_first", ARCH_PLUGIN.format(name="twin"))
    b = write_plugin(tmp_path, "b_second", ARCH_PLUGIN.format(name="twin"))
    reg = Registry().load(tmp_path, builtins=False, entry_points=False)
    message = f"architecture name 'twin' is registered by both {a} and {b}; rename one of them"
    assert reg.clash_messages() == [message]
    with pytest.raises(PluginError) as info:
        reg.architecture("twin")
    assert str(info.value) == message
    assert reg.find("twin") == []


def test_registering_the_wrong_type_is_refused(tmp_path):
    write_plugin(
        tmp_path,
        "wrongtype",
        """
        import ganlab

        @ganlab.hookimpl
        def register_losses(register):
            register({"name": "dict-loss"})
        """,
    )
    reg = Registry().load(tmp_path, builtins=False, entry_points=False)
    [problem] = reg.problems
    assert problem.message == (
        f"plugin {tmp_path / 'wrongtype.py'}: register_losses registered a dict; expected ganlab.LossSpec"
    )
    assert reg.entries("loss") == []


def test_a_spec_of_another_kind_is_refused(tmp_path):
    write_plugin(
        tmp_path,
        "wrongkind",
        """
        import ganlab

        @ganlab.hookimpl
        def register_datasets(register):
            register(ganlab.ArchitectureSpec(name="x", description="",
                build_generator=print, build_discriminator=print))
        """,
    )
    reg = Registry().load(tmp_path, builtins=False, entry_points=False)
    assert "register_datasets registered a ArchitectureSpec; expected ganlab.DatasetSpec" in reg.problems[0].message


def test_a_hook_returning_specs_is_refused(tmp_path):
    write_plugin(
        tmp_path,
        "returns",
        """
        import ganlab

        @ganlab.hookimpl
        def register_architectures(register):
            return [ganlab.ArchitectureSpec(name="r", description="",
                build_generator=print, build_discriminator=print)]
        """,
    )
    reg = Registry().load(tmp_path, builtins=False, entry_points=False)
    assert reg.problems[0].message == (
        f"plugin {tmp_path / 'returns.py'}: register_architectures returned a list; "
        "it must call register(ArchitectureSpec(...)) and return nothing"
    )


def test_a_misspelt_hook_fails_loudly(tmp_path):
    path = write_plugin(
        tmp_path,
        "typo",
        """
        import ganlab

        @ganlab.hookimpl
        def register_architecture(register):
            pass
        """,
    )
    write_plugin(tmp_path, "fine", ARCH_PLUGIN.format(name="fine"))
    reg = Registry().load(tmp_path, builtins=False, entry_points=False)
    assert [p.message for p in reg.problems] == [
        f"plugin {path}: hook 'register_architecture' is not a ganlab hook; did you mean "
        "'register_architectures'? (hooks: register_architectures, register_augmentations, register_datasets, "
        "register_losses, register_metrics)"
    ]
    assert [e.name for e in reg.entries()] == ["fine"]


def test_a_hook_that_raises_is_reported(tmp_path):
    write_plugin(
        tmp_path,
        "raises",
        """
        import ganlab

        @ganlab.hookimpl
        def register_architectures(register):
            raise KeyError("weights")
        """,
    )
    reg = Registry().load(tmp_path, builtins=False, entry_points=False)
    assert reg.problems[0].message == f"plugin {tmp_path / 'raises.py'}: register_architectures raised KeyError: 'weights'"


def test_a_bad_spec_is_a_load_problem_naming_its_plugin(tmp_path):
    path = write_plugin(tmp_path, "badname", ARCH_PLUGIN.format(name="Bad Name"))
    write_plugin(tmp_path, "fine", ARCH_PLUGIN.format(name="fine"))
    reg = Registry().load(tmp_path, builtins=False, entry_points=False)
    expected = (
        f"plugin {path}: register_architectures: architecture name 'Bad Name' "
        "must be lower-case letters, digits, '-' or '_'"
    )
    assert [p.message for p in reg.problems] == [expected]
    assert [e.name for e in reg.entries()] == ["fine"]
    # Asking for a name the broken file may have provided says what is wrong with it.
    with pytest.raises(PluginError) as raised:
        reg.architecture("badname")
    assert str(raised.value) == expected


def test_bad_spec_declarations_fail_at_construction():
    with pytest.raises(PluginValidationError, match="lower-case"):
        _arch("Bad Name")
    with pytest.raises(PluginValidationError, match="declared twice"):
        ganlab.ArchitectureSpec(
            name="dup", description="", build_generator=print, build_discriminator=print,
            params=(ganlab.Param("a", int, 1), ganlab.Param("a", int, 2)),
        )
    with pytest.raises(Exception, match="out of range"):
        ganlab.Param("p", float, 5.0, low=0.0, high=1.0)
    features = ganlab.FeatureSpec("f", "", lambda ctx: None)

    def metric(**kw):
        return ganlab.MetricSpec(**{"name": "m", "description": "", "outputs": ("m",), "features": features,
                                    "compute": print, **kw})

    with pytest.raises(PluginValidationError, match="outputs must be non-empty lower-case names"):
        metric(outputs=("Bad Out",))
    with pytest.raises(PluginValidationError, match="features must be a ganlab.FeatureSpec"):
        metric(features="classifier")
    with pytest.raises(PluginValidationError, match="min_samples must be an int >= 2"):
        metric(min_samples=1)
    with pytest.raises(PluginValidationError, match="feature extractor name"):
        ganlab.FeatureSpec("Big", "", print)


# ------------------------------------------------------------------ CLI


def test_plugins_table_and_kind_filter(tmp_path):
    write_plugin(tmp_path, "tabled", ARCH_PLUGIN.format(name="tabled"))
    result = CliRunner().invoke(cli, ["--plugins-dir", str(tmp_path), "plugins", "--kind", "architecture"])
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[1]
    assert ["kind", "name", "source", "description"] == [c.strip() for c in header.strip("┃ ").split("┃")]
    assert "tabled" in result.stdout and "from a file" in result.stdout
    assert " loss " not in result.stdout and " dataset " not in result.stdout


def test_plugins_show_prints_hyperparameters(tmp_path):
    write_plugin(
        tmp_path,
        "shown",
        """
        import ganlab

        @ganlab.hookimpl
        def register_architectures(register):
            register(ganlab.ArchitectureSpec(
                name="shown", description="a documented pair", reference="Someone et al. 2030",
                build_generator=print, build_discriminator=print,
                params=(ganlab.Param("depth", int, 3, "number of blocks", low=1, high=8),
                        ganlab.Param("norm", str, "batch", "normalisation", choices=("batch", "layer")))))
        """,
    )
    result = CliRunner().invoke(cli, ["--plugins-dir", str(tmp_path), "plugins", "show", "shown"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "reference: Someone et al. 2030" in out
    assert "depth" in out and "[1, 8]" in out and "number of blocks" in out
    assert "one of batch, layer" in out
    as_json = CliRunner().invoke(cli, ["--plugins-dir", str(tmp_path), "plugins", "show", "shown", "--json"])
    [entry] = json.loads(as_json.stdout)
    assert entry["params"][0] == {
        "name": "depth", "type": "int", "default": 3, "required": False,
        "low": 1, "high": 8, "choices": None, "help": "number of blocks",
    }


def test_plugins_lists_and_shows_metrics(tmp_path):
    listed = CliRunner().invoke(cli, ["--plugins-dir", "", "plugins", "--kind", "metric", "--json"])
    assert listed.exit_code == 0, listed.output
    entries = {e["name"]: e for e in json.loads(listed.stdout)}
    assert set(entries) >= {"fd", "kid", "pr", "dc"}
    assert entries["pr"]["outputs"] == ["precision", "recall"] and entries["pr"]["lower_is_better"] is False
    assert entries["pr"]["features"] == "classifier" and entries["pr"]["min_samples"] == 100
    shown = CliRunner().invoke(cli, ["--plugins-dir", "", "plugins", "show", "kid"])
    assert shown.exit_code == 0, shown.output
    assert "reports: kid (lower is better)" in shown.stdout and "Bińkowski" in shown.stdout
    assert "subset_size" in shown.stdout and "min(500, n_real // 2)" in shown.stdout


def test_plugins_show_unknown_name(tmp_path):
    write_plugin(tmp_path, "shown", ARCH_PLUGIN.format(name="shown"))
    result = CliRunner().invoke(cli, ["--plugins-dir", str(tmp_path), "plugins", "show", "shwn"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: no plugin named 'shwn'; did you mean 'shown'?")
    assert len(result.output.strip().splitlines()) == 1


def test_the_complete_example_in_the_docs_loads_and_builds(tmp_path):
    doc = (REPO / "docs" / "plugins.md").read_text()
    code = doc.split("## A complete plugin file")[1].split("```python")[1].split("```")[0]
    write_plugin(tmp_path, "tiny", code)
    reg = Registry().load(tmp_path, builtins=False, entry_points=False)
    assert reg.problems == []
    spec = reg.architecture("tiny")
    ctx = ganlab.BuildContext(image_shape=(8, 8, 1), num_classes=None, latent_dim=16, hparams={"units": 32})
    import numpy as np

    assert spec.build_generator(ctx)(np.zeros((2, 16), "float32")).shape == (2, 8, 8, 1)
    assert spec.build_discriminator(ctx)(np.zeros((2, 8, 8, 1), "float32")).shape == (2, 1)
