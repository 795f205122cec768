"""The comparison table's logic: which columns, which order, seed groups, the best values."""

import pytest

from ganlab.compare.table import (
    RunRow,
    best_values,
    flat_metrics,
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
