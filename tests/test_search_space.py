"""Search spaces, claim-time sampling and pruning decisions, on the real plugins and Optuna (no processes)."""

from __future__ import annotations

import random

import optuna
import pytest

from ganlab.config import Resolver
from ganlab.errors import ConfigError
from ganlab.registry import load_plugins
from ganlab.search.cohort import TrialRow
from ganlab.search.distributions import Distribution, looks_like_distribution, parse_distribution
from ganlab.search.pruning import ASHA_REDUCTION, decide
from ganlab.search.sampler import sample
from ganlab.search.space import build_space
from ganlab.sweep import Grid, load_sweep, parse_sets


@pytest.fixture(scope="module")
def resolver() -> Resolver:
    return Resolver(load_plugins(None), check_data=False)


def _space(resolver: Resolver, sets: list[str], **plugins: tuple[str, ...]):
    registry = resolver.registry
    grid = Grid(sets=parse_sets(sets, lists=True), **plugins)
    return build_space(resolver, grid, registry.plugin_files)


@pytest.mark.parametrize(("text", "expected"), [
    ("uniform(0,1)", Distribution("uniform", 0.0, 1.0)),
    ("log(1e-5, 1e-3)", Distribution("log", 1e-5, 1e-3, log=True)),
    ("int(16,64)", Distribution("int", 16, 64)),
    ("int(16,256,log)", Distribution("int", 16, 256, log=True)),
])
def test_each_distribution_form_parses(text, expected):
    assert parse_distribution("k", text) == expected


@pytest.mark.parametrize(("text", "fragment"), [
    ("normal(0,1)", "unknown distribution 'normal'"),
    ("loguniform(1e-5,1e-3)", "did you mean 'log'"),
    ("uniform(1,1)", "low bound must be below"),
    ("log(0,1)", "above 0"),
    ("int(1.5,4)", "whole-number"),
    ("int(1,4,exp)", "can only be log"),
    ("uniform(1)", "two numbers"),
])
def test_a_malformed_distribution_says_what_is_wrong(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_distribution("k", text)


def test_values_that_only_contain_parentheses_stay_values():
    assert not looks_like_distribution("/data/faces(1)")
    assert not looks_like_distribution("a,b")
    assert looks_like_distribution("loguni(1,2)")


def test_the_space_routes_each_key_and_checks_every_bound(resolver):
    space = _space(resolver, ["lr_g=log(1e-5,1e-3)", "base_filters=int(16,64)", "n_critic=1,2"],
                   losses=("hinge", "wgan-gp"))
    assert {d.key: d.target for d in space.dims} == {
        "loss": "loss", "lr_g": "train.lr_g", "base_filters": "arch.base_filters", "n_critic": "train.n_critic"}
    assert set(space.bases) == {"dcgan/digits/hinge/none", "dcgan/digits/wgan-gp/none"}
    config, _ = space.config_for({"loss": "wgan-gp", "lr_g": 2e-4, "base_filters": 40, "n_critic": 2})
    assert (config.loss, config.train["lr_g"], config.arch_params["base_filters"], config.train["n_critic"]) == \
        ("wgan-gp", 2e-4, 40, 2)
    assert "gp_weight" in config.loss_params  # the base of that loss, with its own parameters
    with pytest.raises(ConfigError, match="not in the study's space"):
        space.config_for({"loss": "hinge", "lr_g": 1.0, "base_filters": 40, "n_critic": 2})


@pytest.mark.parametrize(("sets", "fragment"), [
    (["lr_g=log(1e-12,1e-3)"], "outside the range declared for lr_g"),
    (["base_filters=int(2,64)"], "outside the range declared for base_filters"),
    (["steps=uniform(1,5)"], "steps is an integer"),
    (["backend=uniform(1,5)"], "not a number range"),
    (["nosuch=uniform(1,5)"], "nosuch"),
    (["n_critic=1,500", "lr_g=log(1e-5,1e-3)"], "n_critic"),
    (["lr_g=2e-4"], "nothing to search"),
])
def test_a_space_a_plugin_would_refuse_is_refused_whole(resolver, sets, fragment):
    with pytest.raises(ConfigError, match=fragment):
        _space(resolver, sets)


def test_a_grid_refuses_a_distribution(resolver):
    from ganlab.sweep import expand

    with pytest.raises(ConfigError, match="sample it with --search random or --search tpe"):
        expand(resolver, [Grid(sets=parse_sets(["lr_g=log(1e-5,1e-3)"], lists=True))])


@pytest.mark.parametrize("kind", ["random", "tpe"])
def test_sampled_points_stay_in_bounds_and_depend_only_on_the_rows(resolver, kind):
    space = _space(resolver, ["lr_g=log(1e-5,1e-3)", "base_filters=int(16,64,log)", "loss.gp_weight=1,10"],
                   losses=("wgan-gp",))
    rows: list[TrialRow] = []
    rng = random.Random(0)
    for trial in range(12):
        values = sample(kind, 7, 12, "minimize", space, trial, rows)
        assert values == sample(kind, 7, 12, "minimize", space, trial, rows), "same rows, same draw"
        assert 1e-5 <= values["lr_g"] <= 1e-3
        assert isinstance(values["base_filters"], int) and 16 <= values["base_filters"] <= 64
        assert values["loss.gp_weight"] in (1.0, 10.0)
        space.config_for(values)
        rows.append(TrialRow(trial, "succeeded", values, rng.random()))
    assert len({r.params["lr_g"] for r in rows}) == 12


def test_tpe_learns_from_finished_trials(resolver):
    """Once trials finished, TPE draws near the best ones: here the objective is lr_g itself."""
    space = _space(resolver, ["lr_g=uniform(0.0001,0.9)"])
    rows = [TrialRow(k, "succeeded", {"lr_g": v}, v) for k, v in enumerate([0.8, 0.5, 0.3, 0.7, 0.02, 0.6, 0.4, 0.9])]
    drawn = [sample("tpe", 1, 30, "minimize", space, k, rows)["lr_g"] for k in range(8, 20)]
    uniform = [sample("random", 1, 30, "minimize", space, k, rows)["lr_g"] for k in range(8, 20)]
    assert sum(drawn) / len(drawn) < sum(uniform) / len(uniform)


def test_rebuilt_asha_decides_as_optuna_does_live():
    """The pruner rebuilt from stored evaluations takes Optuna's own decisions, trial after trial."""
    rng = random.Random(3)
    live = optuna.create_study(pruner=optuna.pruners.SuccessiveHalvingPruner(
        min_resource=10, reduction_factor=ASHA_REDUCTION))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stored: list[TrialRow] = []
    pruned = 0
    for k in range(10):
        trial = live.ask()
        values: dict[int, float] = {}
        outcome = "succeeded"
        for step in range(10, 100, 10):
            values[step] = rng.uniform(0, 100) / (1 + step / 50)
            trial.report(values[step], step)
            expected = trial.should_prune()
            current = TrialRow(k, "running", None, None, dict(values))
            assert decide("asha", "minimize", "fd", 10, current, step, stored).prune == expected, (k, step)
            if expected:
                outcome = "pruned"
                break
        if outcome == "pruned":
            live.tell(trial, state=optuna.trial.TrialState.PRUNED)
            pruned += 1
            stored.append(TrialRow(k, "pruned", None, None, values))
        else:
            live.tell(trial, values[max(values)])
            stored.append(TrialRow(k, "succeeded", None, values[max(values)], values))
    assert 0 < pruned < 10


def test_the_reason_names_the_pruner_the_step_and_the_bar():
    best = TrialRow(0, "succeeded", None, 1.0, {10: 2.0, 20: 1.0})
    worse = TrialRow(1, "running", None, None, {10: 9.0})
    decision = decide("asha", "minimize", "fd", 10, worse, 10, [best, worse])
    assert decision.prune and decision.reason.startswith("pruned by asha at step 10 (fd 9 vs 2")
    assert not decide("none", "minimize", "fd", 10, worse, 10, [best, worse]).prune


def test_a_sweep_file_takes_a_search_table_and_distributions(tmp_path, resolver):
    path = tmp_path / "s.toml"
    path.write_text('[search]\nsampler = "tpe"\ntrials = 5\nprune = "median"\n\n'
                    '[set]\nlr_g = "log(1e-5,1e-3)"\n\n[grid]\nloss = ["hinge", "wgan-gp"]\n')
    grids, search = load_sweep(path)
    assert search == {"sampler": "tpe", "trials": 5, "prune": "median"}
    assert grids[0].sets["lr_g"] == (Distribution("log", 1e-5, 1e-3, log=True),)
    path.write_text('[search]\ntrails = 5\n[grid]\narch = "dcgan"\n')
    with pytest.raises(ConfigError, match="did you mean 'trials'"):
        load_sweep(path)
