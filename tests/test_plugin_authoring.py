"""Plugin authoring (#19): ``plugins new`` templates that train, ``plugins check`` that finds the first
problem, and ``queue add`` refusing an architecture that cannot make its data's shape, with nothing stored."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ganlab.authoring import TEMPLATE_KINDS, template_source
from ganlab.cli import cli
from ganlab.config import Resolver
from ganlab.registry import Registry, reset_cache
from ganlab.store import Store

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "authoring_plugins"
CHECKING = "architecture build(s) fit their data"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    reset_cache()  # each command loads the plugins folder afresh, as a new process would
    return CliRunner().invoke(cli, list(args), env=env)


def error_line(result: Result) -> str:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)
        reset_cache()


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The broken plugins, copied with the owner-only permissions the loader insists on."""
    folder = tmp_path_factory.mktemp("authoring") / "plugins"
    shutil.copytree(FIXTURES, folder)
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


# ------------------------------------------------------------------ templates


def test_docs_show_every_template_verbatim() -> None:
    docs = (REPO / "docs" / "plugins.md").read_text()
    for kind in TEMPLATE_KINDS:
        match = re.search(rf"<!-- template: {kind} -->\n```python\n(.*?)```\n", docs, re.DOTALL)
        assert match, f"docs/plugins.md has no template block for {kind}"
        assert match.group(1) == template_source(kind), f"docs/plugins.md's {kind} template drifted from the file"
    assert docs.index("plugins new") < docs.index("## Where plugins come from")
    assert docs.index("plugins check") < docs.index("## Where plugins come from")


def test_new_writes_each_template_lists_it_and_never_overwrites(workdir: Path) -> None:
    for kind, name in (("architecture", "my-gan"), ("dataset", "my-data"), ("loss", "my-loss")):
        result = run("plugins", "new", name, "--kind", kind)
        assert result.exit_code == 0, result.output
        path = workdir / "plugins" / f"{name.replace('-', '_')}.py"
        assert f"wrote plugins/{path.name}" in result.output
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        assert f'NAME = "{name}"' in path.read_text()
    listed = json.loads(run("plugins", "--json").output)
    assert {(e["kind"], e["name"]) for e in listed} >= {("architecture", "my-gan"), ("dataset", "my-data"),
                                                        ("loss", "my-loss")}
    before = (workdir / "plugins" / "my_gan.py").read_bytes()
    assert "already exists" in error_line(run("plugins", "new", "my-gan", "--kind", "architecture"))
    (workdir / "plugins" / "my_gan.py").rename(workdir / "plugins" / "moved.py")
    (workdir / "plugins" / "my_gan.py").write_text("# the user's own file\n")
    (workdir / "plugins" / "my_gan.py").chmod(0o644)
    assert "already exists" in error_line(run("plugins", "new", "my-gan", "--kind", "dataset"))
    assert (workdir / "plugins" / "my_gan.py").read_text() == "# the user's own file\n"
    assert (workdir / "plugins" / "moved.py").read_bytes() == before
    line = error_line(run("plugins", "new", "x", "--kind", "optimizer"))
    assert "architecture, dataset, loss, augmentation, metric" in line


def test_every_template_trains_and_passes_its_check(workdir: Path, feature_net_cache: None) -> None:
    from ganlab.training import train

    for kind in TEMPLATE_KINDS:
        assert run("plugins", "new", f"t-{kind}", "--kind", kind).exit_code == 0
    registry = Registry().load(workdir / "plugins", entry_points=False)
    assert not registry.problems
    config = Resolver(registry).resolve("t-architecture", "t-dataset", "t-loss", {
        "steps": 3, "batch_size": 8, "latent_dim": 8, "units": 16, "count": 64, "eval_samples": 16,
        "eval_every": 3, "sample_every": 3, "checkpoint_every": 3, "log_every": 1, "metrics": "fd,t-metric"},
        "t-augmentation")
    result = train(config, workdir / "run", registry=registry)
    assert result.status == "succeeded" and result.step == 3, result.error
    assert result.metrics and all(math.isfinite(v) for v in result.metrics.values())
    # An untrained generator's pixels spread nothing like the data's: the template's score is far from 0.
    assert result.metrics["t_metric"] > 0.1 and "t_metric_floor" in result.metrics

    arch = run("plugins", "check", "t-architecture", "--dataset", "t-dataset", "--set", "units=16", "--json")
    assert arch.exit_code == 0, arch.output
    report = json.loads(arch.stdout)
    assert report["ok"] and [m["params"] > 0 for m in report["models"]] == [True, True]
    assert report["facts"]["generator output"] == "shape (16, 16, 1), data (16, 16, 1)"
    assert "training step" in report["facts"] and "memory" in report["facts"]
    loss = run("plugins", "check", "t-loss")
    assert loss.exit_code == 0 and "regulariser:" in loss.output and "passed every check" in loss.output
    metric = run("plugins", "check", "t-metric")
    assert metric.exit_code == 0 and "backbone: pixels" in metric.output and "passed every check" in metric.output, \
        metric.output
    aug = run("plugins", "check", "t-augmentation")
    assert aug.exit_code == 0 and "gradient: norm" in aug.output and "passed every check" in aug.output, aug.output
    data = run("plugins", "check", "t-dataset", "--grid", str(workdir / "grid.png"))
    assert data.exit_code == 0, data.output
    assert "4 classes" in data.output and "dtype uint8" in data.output
    assert (workdir / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------- check


@pytest.mark.parametrize(("name", "fragments"), [
    ("badshape", ("generator makes images of shape (8, 8, 1)", "(32, 32, 1)")),
    ("norange", ("outside the data's [-1, 1]", "tanh")),
    ("baddisc", ("discriminator returns shape (16, 4)", "one logit per image")),
    ("nanloss", ("discriminator_loss returns nan",)),
    ("shrinkaug", ("shape (8, 16, 16, 1) into float32 of shape (8, 16, 8, 1)", "keep shape and dtype")),
    ("roundaug", ("gradient through it is 0.0", "must be differentiable")),
])
def test_check_names_the_first_problem(fixtures: Path, name: str, fragments: tuple[str, ...]) -> None:
    result = run("--plugins-dir", str(fixtures), "plugins", "check", name)
    line = error_line(result)
    assert result.exit_code == 1
    for fragment in fragments:
        assert fragment in line, line
    as_json = run("--plugins-dir", str(fixtures), "plugins", "check", name, "--json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["ok"] is False and fragments[0] in report["problem"]


def test_check_on_jax_runs_in_a_child(fixtures: Path) -> None:
    result = run("--plugins-dir", str(fixtures), "plugins", "check", "badshape", "--backend", "jax", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["backend"] == "jax" and "(8, 8, 1)" in report["problem"]


# ------------------------------------------------------------------- enqueue


def test_enqueue_refuses_a_sweep_that_cannot_make_the_data_shape(fixtures: Path, tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    sweep = ("--plugins-dir", str(fixtures), "queue", "add", "--db", str(db), "--arch", "badshape",
             "--set", "lr_g=1e-4,2e-4,3e-4,4e-4,5e-4", "--steps", "5")
    line = error_line(run(*sweep))
    for fragment in ("'badshape'", "units=16", "(8, 8, 1)", "(32, 32, 1)", "nothing was queued"):
        assert fragment in line, line
    assert not db.exists()
    fix = re.search(r"Try it with: (ganlab plugins check [^(]*) \(", line)
    assert fix, line
    check = run("--plugins-dir", str(fixtures), *fix.group(1).split()[1:])
    assert "generator makes images of shape (8, 8, 1)" in error_line(check)
    assert "(8, 8, 1)" in error_line(run(*sweep, "--dry-run"))
    assert not db.exists()
    # The refusal itself was cached: the second and third tries started no child.
    assert CHECKING not in run(*sweep).output
    queued = run(*sweep, "--no-build-check", "-q")
    assert queued.exit_code == 0 and len(queued.stdout.split()) == 5


def test_a_second_add_of_a_good_sweep_hits_the_cache(fixtures: Path, tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    plugin = tmp_path / "plugins"
    plugin.mkdir(mode=0o755)
    shutil.copy(FIXTURES / "badshape.py", plugin / "fine.py")
    source = (plugin / "fine.py").read_text().replace('"badshape"', '"fine"')
    (plugin / "fine.py").write_text(source.replace("8 * 8 * ctx.channels", "ctx.height * ctx.width * ctx.channels")
                                    .replace("(8, 8, ctx.channels)", "ctx.image_shape"))
    (plugin / "fine.py").chmod(0o644)
    add = ("--plugins-dir", str(plugin), "queue", "add", "--db", str(db), "--arch", "fine",
           "--set", "units=8,16", "--set", "lr_g=1e-4,2e-4", "--steps", "5")
    first = run(*add)
    assert first.exit_code == 0, first.output
    assert "checking that 2 " + CHECKING in first.stderr  # two distinct builds, not four experiments
    second = run(*add, "--allow-duplicates")
    assert second.exit_code == 0 and CHECKING not in second.output
    with Store.open(str(db)) as store:
        assert len(store.list_experiments()) == 8
    # Editing the plugin changes its hash: it is checked again.
    (plugin / "fine.py").write_text(source.replace("8 * 8 * ctx.channels", "16 * 16 * ctx.channels")
                                    .replace("(8, 8, ctx.channels)", "(16, 16, ctx.channels)"))
    third = run(*add, "--allow-duplicates")
    assert "(16, 16, 1)" in error_line(third) and CHECKING in third.output
    with Store.open(str(db)) as store:
        assert len(store.list_experiments()) == 8


def test_new_refuses_a_folder_others_can_write_and_a_turned_off_folder(workdir: Path) -> None:
    shared = workdir / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    line = error_line(run("--plugins-dir", str(shared), "plugins", "new", "mine", "--kind", "loss"))
    assert "writable by everyone" in line and "chmod go-w" in line
    assert list(shared.iterdir()) == []
    line = error_line(run("plugins", "new", "mine", "--kind", "loss", env={"GANLAB_PLUGINS_DIR": ""}))
    assert "local plugins are off" in line
    assert not (workdir / "plugins").exists()
