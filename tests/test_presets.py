"""``--preset``: a named recipe becomes ordinary settings in the stored experiment, and the user's options win.

Through click's runner against a real SQLite queue, reading back what
``queue show`` prints and what the database holds.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from _store_db import sqlite_snapshot
from click.testing import CliRunner, Result

from ganlab.cli import cli
from ganlab.cli.experiment_options import ExperimentOptions, single_config
from ganlab.presets import PRESETS, Preset
from ganlab.registry import load_plugins


def ganlab(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args[:2], "--db", str(db), *args[2:]], env={"GANLAB_PLUGINS_DIR": ""})


def add(db: Path, *args: str) -> Result:
    result = ganlab(db, "queue", "add", "--steps", "5", "--no-build-check", *args)
    assert result.exit_code == 0, result.output
    return result


def stored(db: Path) -> list[dict]:
    conn = sqlite3.connect(db)
    try:
        return [json.loads(row[0]) for row in conn.execute("SELECT config FROM experiments ORDER BY id")]
    finally:
        conn.close()


def augment(config: dict) -> str:
    return config.get("augment", {}).get("name", "none")  # a config without augmentation stores no section


def test_small_data_is_stored_as_r1_with_adam_at_4e_4_and_shown_by_queue_show(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    add(db, "--preset", "small-data")
    config = stored(db)[0]
    assert config["loss"]["name"] == "non-saturating" and config["loss"]["params"]["r1_gamma"] == 0.1
    assert (config["train"]["lr_g"], config["train"]["lr_d"], config["train"]["beta_1"]) == (4e-4, 4e-4, 0.5)
    shown = ganlab(db, "queue", "show", "1").output
    for line in ("loss = non-saturating", "loss.r1_gamma = 0.1", "train.lr_g = 0.0004", "train.lr_d = 0.0004"):
        assert line in shown, line

    # The preset is a shorthand, not a new kind of experiment: spelled out, it is the same config.
    again = add(db, "--set", "r1_gamma=0.1", "--set", "lr_g=4e-4", "--set", "lr_d=4e-4")
    assert "same config as experiment 1" in again.output and len(stored(db)) == 1


@pytest.fixture
def recipe(monkeypatch: pytest.MonkeyPatch) -> str:
    # A preset with an augmentation and settings, to exercise what small-data does not use.
    monkeypatch.setitem(PRESETS, "test-recipe", Preset("test-recipe", "for the tests", augment="diffaugment",
                                                      sets={"train.ema": 0.999, "augment.cutout": 0.25}))
    return "test-recipe"


def test_a_presets_settings_are_stored_and_shown(tmp_path: Path, recipe: str) -> None:
    db = tmp_path / "q.db"
    add(db, "--preset", recipe)
    config = stored(db)[0]
    assert augment(config) == "diffaugment" and config["train"]["ema"] == 0.999
    shown = ganlab(db, "queue", "show", "1").output
    assert "augment = diffaugment" in shown and "train.ema = 0.999" in shown and "augment.cutout = 0.25" in shown
    assert "augment.policy = color+translation+cutout" in shown  # the plugin's own defaults come with it


def test_options_given_with_a_preset_win_over_it_under_any_spelling(tmp_path: Path, recipe: str) -> None:
    db = tmp_path / "q.db"
    add(db, "--preset", "small-data", "--loss", "wgan-gp", "--set", "lr_d=2e-4")
    config = stored(db)[0]
    assert (config["loss"]["name"], config["train"]["lr_d"], config["train"]["n_critic"]) == ("wgan-gp", 2e-4, 5)
    # The preset's R1 weight belongs to its loss: with the user's loss in its place it is dropped, not refused.
    assert "r1_gamma" not in config["loss"]["params"] and config["train"]["lr_g"] == 4e-4
    add(db, "--preset", recipe, "--set", "ema=0.99", "--set", "augment.cutout=0.5")
    config = stored(db)[1]
    assert (config["train"]["ema"], config["augment"]["params"]["cutout"]) == (0.99, 0.5)
    add(db, "--preset", recipe, "--set", "lr_g=1e-4,2e-4")  # a sweep: the preset applies to every point
    sweep = stored(db)[2:]
    assert [(augment(c), c["train"]["lr_g"], c["train"]["ema"]) for c in sweep] == [
        ("diffaugment", 1e-4, 0.999), ("diffaugment", 2e-4, 0.999)]


def test_naming_the_presets_own_plugin_again_keeps_its_settings(tmp_path: Path, recipe: str) -> None:
    db = tmp_path / "q.db"
    add(db, "--preset", "small-data")
    again = add(db, "--preset", "small-data", "--loss", "non-saturating")
    assert "same config as experiment 1" in again.output and len(stored(db)) == 1
    add(db, "--preset", recipe, "--augment", "diffaugment")
    add(db, "--preset", recipe, "--augment", "ada")  # another augmentation: the preset's cutout is not its to take
    kept, other = stored(db)[1:]
    assert kept["augment"]["params"]["cutout"] == 0.25
    assert augment(other) == "ada" and "cutout" not in other["augment"]["params"]


def test_train_resolves_the_same_preset() -> None:
    registry = load_plugins(None)
    config = single_config(registry, ExperimentOptions(preset="small-data", steps=5))
    assert config.loss == "non-saturating" and config.loss_params["r1_gamma"] == 0.1
    assert config.train["lr_d"] == 4e-4 and config.train["steps"] == 5


def test_every_preset_resolves_and_is_documented() -> None:
    registry = load_plugins(None)
    docs = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()
    for name, preset in PRESETS.items():
        single_config(registry, ExperimentOptions(preset=name))  # raises if the recipe names a setting that is gone
        assert f"`{name}`" in docs and preset.summary() in docs, name


@pytest.mark.parametrize("command", [["queue", "add", "--no-build-check"], ["train"]])
def test_an_unknown_preset_is_one_line_naming_the_presets_and_nothing_is_stored(tmp_path: Path, command: list[str]) -> None:
    db = tmp_path / "q.db"
    add(db)
    before = sqlite_snapshot(db)
    result = CliRunner().invoke(cli, [*command, "--preset", "smalldata", "--steps", "5"],
                                env={"GANLAB_PLUGINS_DIR": "", "GANLAB_DB": str(db)})
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines == [f"Error: --preset 'smalldata' is not a preset; choose one of: {', '.join(sorted(PRESETS))} "
                     "(see docs/training.md#presets)"]
    assert sqlite_snapshot(db) == before
    assert not (tmp_path / "runs").exists()


def test_a_preset_with_a_sweep_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    add(db)
    (tmp_path / "s.toml").write_text("[grid]\nloss = ['hinge']\n")
    before = sqlite_snapshot(db)
    result = ganlab(db, "queue", "add", "-f", str(tmp_path / "s.toml"), "--preset", "small-data")
    assert result.exit_code == 1 and result.stderr.strip().splitlines()[0].startswith("Error: --preset cannot be combined with -f")
    assert sqlite_snapshot(db) == before
