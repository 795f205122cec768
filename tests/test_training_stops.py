"""GAN-aware stops in the trainer: each rule ends a real run ``stopped`` with its reason, checkpointed.

The constructed case is a generator that draws one grey image whatever its
noise and never learns (``frozen_g``): its FD never improves, its diversity is
0, and a discriminator quickly tells its image from the bars every time.
"""

from __future__ import annotations

import math

import pytest
from training_helpers import tiny_config, tiny_registry

from ganlab.errors import ConfigError
from ganlab.tblog.read import read_hparams, read_scalars, read_text
from ganlab.training import train
from ganlab.training.checkpoint import load_checkpoint
from ganlab.training.run_dir import RunDir

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.usefixtures("feature_net_cache")]


@pytest.fixture(scope="module")
def registry():
    return tiny_registry()


def frozen(registry, **sets):
    return tiny_config(registry, frozen_g=True, checkpoint_every=100, sample_every=100, log_every=1, **sets)


def test_patience_stops_checkpoints_and_an_extend_gets_fresh_evaluations(registry, tmp_path):
    config = frozen(registry, steps=40, eval_every=2, patience=2)
    result = train(config, tmp_path, registry=registry)
    # Evaluations at 2 (the best), 4 and 6 (no better): the second without improvement stops it.
    assert (result.status, result.step) == ("stopped", 6), result.traceback
    assert result.stop_reason.startswith("no fd improvement in 2 evaluations (best ")
    assert result.stop_reason.endswith(" at step 2)")
    state = load_checkpoint(RunDir(tmp_path).checkpoint("latest"))[1]
    assert state["step"] == 6 and state["stops"]["fired"] == result.stop_reason
    assert read_text(tmp_path)["stop_reason"] == [(6, f"stopped at step 6: {result.stop_reason}")]
    assert read_hparams(tmp_path)["status"] == "success"

    # Resumed with the same budget (its worker died before recording it): the same ending, nothing trained.
    again = train(config, tmp_path, resume=True, registry=registry)
    assert (again.status, again.step, again.stop_reason) == ("stopped", 6, result.stop_reason)

    # Extended: the counts start afresh, so the evaluation at 8 (the third in a row without
    # improvement) does not stop it again; two new ones do, at 10. The best to beat stays step 2's.
    longer = frozen(registry, steps=60, eval_every=2, patience=2)
    with pytest.raises(ConfigError, match="holds a different experiment"):
        train(longer, tmp_path, resume=True, registry=registry)  # not asked to extend: another experiment
    extended = train(longer, tmp_path, resume=True, registry=registry, extend=True)
    assert (extended.status, extended.step, extended.start_step) == ("stopped", 10, 6), extended.traceback
    assert extended.stop_reason == result.stop_reason
    assert [s for s, _ in read_scalars(tmp_path)["metrics/fd"]] == [2, 4, 6, 8, 10]
    assert [s for s, _ in read_text(tmp_path)["stop_reason"]] == [6, 10]
    assert RunDir(tmp_path).load_config() == longer


def test_collapse_stops_at_the_first_evaluation_under_the_fraction(registry, tmp_path):
    result = train(frozen(registry, steps=40, eval_every=3, stop_collapse_fraction=0.5), tmp_path, registry=registry)
    assert (result.status, result.step) == ("stopped", 3), result.traceback
    assert result.stop_reason == "generator collapse: diversity 0.00 of the real data's at step 3, under 0.5"
    [(step, diversity)] = read_scalars(tmp_path)["metrics/diversity"]
    assert step == 3 and diversity < 1e-6
    assert RunDir(tmp_path).read_metrics()[0]["diversity"] == pytest.approx(diversity)


def test_a_learning_generator_keeps_its_diversity(registry, tmp_path):
    config = tiny_config(registry, steps=6, eval_every=3, stop_collapse_fraction=0.05)
    result = train(config, tmp_path, registry=registry)
    assert result.status == "succeeded", result.traceback
    assert all(v > 0.05 for _, v in read_scalars(tmp_path)["metrics/diversity"])


def test_the_discriminator_winning_outright_stops_the_run(registry, tmp_path):
    config = frozen(registry, steps=300, eval_every=1000, lr_d=0.02, stop_d_wins_steps=4)
    result = train(config, tmp_path, registry=registry)
    assert result.status == "stopped" and result.step < 300, result.traceback
    assert result.stop_reason.startswith("the discriminator won outright (accuracy 100 %) for 4 steps in a row")
    accuracy = read_scalars(tmp_path)["disc/accuracy"]
    # The four steps named in the reason are the last four the run finished at full accuracy.
    last = int(result.stop_reason.rsplit(" ", 1)[1].rstrip(")"))
    assert [v for s, v in accuracy if last - 4 < s <= last] == [1.0] * 4
    assert any(v < 1.0 for s, v in accuracy if s <= last - 4)
    assert load_checkpoint(RunDir(tmp_path).checkpoint("latest"))[1]["step"] == result.step


def test_stops_are_off_by_default_and_absent_from_the_stored_config(registry):
    config = tiny_config(registry, steps=6)
    assert not {"patience", "patience_metric", "stop_d_wins_steps", "stop_collapse_fraction"} & set(config.train)
    on = tiny_config(registry, steps=6, patience=3)
    assert on.train["patience"] == 3 and on.hash != config.hash
    assert math.isclose(tiny_config(registry, steps=6, stop_collapse_fraction=0).train.get("stop_collapse_fraction", 0), 0)
