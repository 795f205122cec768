"""``ganlab settings``: the training settings a user can --set, as the resolver declares them."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ganlab.cli import cli
from ganlab.config import train_params
from ganlab.registry import load_plugins


def run(*args: str):
    return CliRunner().invoke(cli, ["--no-local-plugins", "settings", *args])


def test_every_training_setting_is_listed_with_its_default_and_range():
    result = run()
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.startswith("│")}
    declared = train_params()
    assert list(rows) == [p.name for p in declared]
    for p in declared:
        assert repr(p.default) in rows[p.name] and p.type_name in rows[p.name], rows[p.name]
    # The optimiser settings depend on the loss: marked, and the footnote says how to see a loss's.
    assert "*" in rows["lr_g"] and "*" not in rows["eval_every"]
    assert "ganlab settings --loss NAME" in result.output


def test_a_loss_shows_the_optimiser_settings_it_recommends():
    spec = load_plugins("").get("loss", "wgan-gp")
    records = {r["name"]: r for r in json.loads(run("--loss", "wgan-gp", "--json").output)}
    assert records["n_critic"]["default"] == spec.defaults.n_critic != {p.name: p for p in train_params()}["n_critic"].default
    assert records["beta_2"]["default"] == spec.defaults.beta_2 and records["lr_g"]["from_loss"] is True
    assert records["steps"]["low"] == 1 and records["steps"]["from_loss"] is False
    assert records["backend"]["choices"] == ["tensorflow", "jax"]


def test_an_unknown_loss_is_one_line():
    result = run("--loss", "wgan-pg")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0 and "wgan-gp" in result.output, result.output


def test_an_unknown_set_key_points_at_the_settings_command(tmp_path):
    result = CliRunner().invoke(cli, ["--no-local-plugins", "queue", "add", "--db", str(tmp_path / "q.db"),
                                      "--dry-run", "--set", "eval_evry=5"])
    assert result.exit_code == 1 and "did you mean 'eval_every'" in result.output
    assert "'ganlab settings' for training's" in result.output
    assert not (tmp_path / "q.db").exists()
