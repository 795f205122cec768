"""The comparison table's logic: which columns, which order, seed groups, the best values."""

import pytest

from ganlab.compare.fit import fit_widths, middle_ellipsis, table_width
from ganlab.compare.table import (
    RunRow,
    best_values,
    flat_metrics,
    follows_plugin,
    group_seeds,
    resolve_columns,
    sort_rows,
    to_records,
    varying_keys,
)
from ganlab.errors import ConfigError


def row(i, loss, seed, fd, status="succeeded"):
    hp = {"arch": "dcgan", "loss": loss, "train.seed": seed, "train.lr_g": 2e-4, "train.checkpoint_every": 100 + i}
    return RunRow(id=i, name=f"r{i}", status=status, step=100, total=100, hparams=hp, metrics={"fd": fd, "kid": fd / 10})


ROWS = [row(1, "hinge", 0, 4.0), row(2, "hinge", 1, 6.0), row(3, "wgan-gp", 0, 2.0), row(4, "wgan-gp", 1, 3.0)]


def test_only_differing_hyperparameters_become_columns():
    assert varying_keys(ROWS) == ["loss", "train.seed"]  # bookkeeping settings are not explanations
    assert resolve_columns(ROWS, ["train.lr_g"]) == ["train.lr_g"]
    with pytest.raises(ConfigError, match="--columns 'train.lr' is not a hyperparameter of these runs; did you mean 'train.lr_g'"):
        resolve_columns(ROWS, ["train.lr"])


def test_sorting_puts_the_best_first_and_missing_last():
    rows = ROWS + [RunRow(5, "r5", "failed", 3, 100, {"loss": "lsgan"}, {})]
    assert [r.id for r in sort_rows(rows, "fd")] == [3, 4, 1, 2, 5]
    with pytest.raises(ConfigError, match="--sort 'fdd': no run has that metric; did you mean 'fd'"):
        sort_rows(rows, "fdd")


def test_seed_groups_give_mean_and_std():
    groups = {g.hparams["loss"]: g for g in group_seeds(ROWS)}
    hinge = groups["hinge"]
    assert hinge.ids == [1, 2] and hinge.metrics["fd"] == pytest.approx(5.0)
    assert hinge.spread["fd"] == pytest.approx(1.4142135, rel=1e-6)
    assert best_values(list(groups.values()), ["fd"]) == {"fd": pytest.approx(2.5)}
    rec = to_records([hinge], ["loss"], ["fd"])[0]
    assert rec["fd_std"] == pytest.approx(1.4142135, rel=1e-6) and rec["ids"] == [1, 2]


def test_flat_metrics_keeps_numbers_only():
    assert flat_metrics({"fd": 1, "best": {"fd": 0.5}, "note": "x", "ok": True}) == {"fd": 1.0, "best/fd": 0.5}


def test_a_setting_that_follows_the_plugin_is_folded_but_a_swept_one_is_not():
    rows = [RunRow(id=i, name=f"r{i}", status="succeeded", step=1, total=1, metrics={},
                   hparams={"loss": loss, "train.lr_g": lr, "train.beta_1": beta})
            for i, (loss, lr, beta) in enumerate([("hinge", 1e-4, 0.0), ("hinge", 2e-4, 0.0),
                                                  ("wgan-gp", 1e-4, 0.5), ("wgan-gp", 2e-4, 0.5)])]
    assert follows_plugin(rows, ["loss", "train.beta_1", "train.lr_g"]) == {"train.beta_1": "loss"}
    # Without a varying plugin column, nothing explains a difference.
    assert follows_plugin(rows[:2], ["train.lr_g"]) == {}


def test_fit_widths_shrinks_text_widest_first_and_never_a_number():
    # id (fixed 2), name 40 (floor 16), loss 14 (floor 8), fd (fixed 5)
    widths = fit_widths([2, 40, 14, 5], [None, 16, 8, None], available=60)
    assert widths is not None and table_width(widths) <= 60
    assert widths[0] == 2 and widths[3] == 5 and widths[2] == 14 and widths[1] == 60 - 11 - 2 - 14 - 5  # 4 columns: 3 rules inside, 2 outside, 6 pads
    assert fit_widths([2, 40, 14, 5], [None, 16, 8, None], available=30) is None
    assert fit_widths([2, 10], [None, 4], available=100) == [2, 10]


def test_middle_ellipsis_keeps_both_ends():
    assert middle_ellipsis("dcgan-digits-hinge-seed=3", 12) == "dcgan…seed=3"
    assert len(middle_ellipsis("x" * 50, 17)) == 17
    assert middle_ellipsis("short", 12) == "short"
