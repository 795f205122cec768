"""Metric plugins end to end: a plugins-folder metric queued, run by a real worker, stored with its card and shown;
and runs with different cards kept apart by ``compare``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from training_helpers import PLUGINS as TRAINING_PLUGINS
from training_helpers import tiny_config, tiny_registry

from ganlab.cli import cli
from ganlab.errors import ConfigError
from ganlab.store.queue import Queue
from ganlab.store.records import NewExperiment
from ganlab.tblog.read import read_text

REPO = Path(__file__).resolve().parents[1]


def docs_metric_example() -> str:
    """The worked example of docs/plugins.md's Metrics section, as a user would save it."""
    doc = (REPO / "docs" / "plugins.md").read_text()
    return doc.split("## Metrics")[1].split("A worked example")[1].split("```python")[1].split("```")[0]


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir(mode=0o755)
    shutil.copy(TRAINING_PLUGINS / "tiny_gan.py", folder / "tiny_gan.py")
    (folder / "pixel_gap.py").write_text(docs_metric_example())
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def test_a_plugins_folder_metric_runs_from_the_queue_to_the_stored_score(tmp_path, plugins, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path / "cache"))
    url = f"sqlite:///{tmp_path / 'q.db'}"
    base = ["--plugins-dir", str(plugins)]
    add = CliRunner().invoke(cli, [*base, "queue", "--db", url, "add", "-q", "--no-build-check", "--arch", "tiny",
                                   "--dataset", "tiny-bars", "--loss", "non-saturating", "--steps", "3",
                                   "--batch-size", "16", "--set", "latent_dim=8", "--set", "eval_samples=64",
                                   "--set", "train.metrics=fd,pixel-gap"])
    assert add.exit_code == 0, add.output
    [exp_id] = [int(line) for line in add.stdout.split()]
    with Queue.open(url) as q:
        files = {(f["kind"], f["name"]) for f in q.get(exp_id).plugin_files}
    assert ("metric", "pixel-gap") in files  # pinned: the worker runs the bytes that were queued

    worker = subprocess.run([sys.executable, "-m", "ganlab", *base, "worker", "--db", url, "--runs-dir",
                             str(tmp_path / "runs"), "--gpus", "none", "--until-empty", "--poll", "0.3"],
                            capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                              "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert worker.returncode == 0, worker.stdout + worker.stderr
    with Queue.open(url) as q:
        rec = q.get(exp_id)
    assert rec.status == "succeeded", rec.error
    m = rec.metrics
    assert {"fd", "fd_floor", "pixel_gap", "pixel_gap_floor", "best_pixel_gap"} <= set(m) and "kid" not in m
    assert m["pixel_gap"] > m["pixel_gap_floor"] >= 0  # three steps of training are far from real bars
    card = m["cards"]["pixel-gap"]
    assert card["backbone"] == "pixels" and card["weights"] == "none" and card["params"] == {"scale": 1.0}
    assert (card["n_real"], card["n_fake"], card["seed"]) == (64, 64, 0) and len(card["data_hash"]) == 64
    assert m["cards"]["fd"]["backbone"] == "classifier-mlp-256x128"

    shown = CliRunner().invoke(cli, [*base, "queue", "--db", url, "show", str(exp_id)])
    assert "pixel-gap v1 (scale=1.0) on pixels weights none" in shown.stdout, shown.output
    assert "n_real 64 n_fake 64" in shown.stdout
    [row] = json.loads(CliRunner().invoke(cli, ["compare", "--db", url, "--json"]).stdout)
    assert row["pixel_gap"] == m["pixel_gap"] and row["cards"]["pixel-gap"] == card
    run_dir = Path(rec.run_dir)
    assert read_text(run_dir)["metric_cards"][0][1].count("pixel-gap v1") == 1
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["cards"] == m["cards"] and last["pixel_gap"] == m["pixel_gap"]


def _card(n_fake: int, seed: int) -> dict:
    return {"metric": "fd", "version": 1, "outputs": ["fd"], "lower_is_better": True, "params": {},
            "features": "classifier", "backbone": "classifier-mlp-256x128", "weights": "recipe:abc", "resize": "box",
            "n_real": 1000, "n_fake": n_fake, "reference": {"real": "training split"}, "data_hash": "d" * 64,
            "seed": seed, "per_seed": {"feature_net": f"net-{seed}"}}


def test_compare_ranks_only_runs_whose_cards_match_apart_from_the_seed(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    registry = tiny_registry()
    # Runs 1 and 2: 1000 samples, seeds 0 and 1 (one card); run 3: 500 samples, whose FD is biased upwards less.
    runs = {1: (0, 1000, 3.0), 2: (1, 1000, 2.0), 3: (2, 500, 1.0)}
    with Queue.open(url, create=True) as q:
        q.enqueue([NewExperiment(tiny_config(registry, seed=seed, eval_samples=n), name=f"run{i}")
                   for i, (seed, n, _) in runs.items()])
        for seed, n, fd in runs.values():
            claim = q.claim("w", lease_s=60)
            q.finish(claim.id, claim.token, "succeeded", step=3,
                     metrics={"fd": fd, "fd_floor": 0.5, "cards": {"fd": _card(n, seed)}})
    out = json.loads(CliRunner().invoke(cli, ["compare", "--db", url, "--sort", "fd", "--json"]).stdout)
    assert [(r["id"], r["card_group"]) for r in out] == [(2, "A"), (1, "A"), (3, "B")]
    assert out[2]["card_differs"] == ["fd.n_fake: 1000 vs 500"]
    table = CliRunner().invoke(cli, ["compare", "--db", url, "--sort", "fd"], env={"COLUMNS": "200"}).stdout
    assert "metric card A of 2 (2 run(s))" in table and "differs from A in fd.n_fake: 1000 vs 500" in table
    assert "2 metric cards among these runs" in table
    # Run 3's lower FD is not "best" across the cards: each table has its own best.
    from ganlab.cli.compare_cmd import record_row
    from ganlab.compare.cards import card_groups
    from ganlab.compare.table import best_values
    from ganlab.report.collect import ReportRun
    from ganlab.report.page import columns_and_rows

    with Queue.open(url) as q:
        report_runs = [ReportRun(row=record_row(q.get(i)), run_dir=None) for i in runs]
    groups = card_groups([r.row for r in report_runs], "fd")
    assert [best_values(g.rows, ["fd"]) for g in groups] == [{"fd": 2.0}, {"fd": 1.0}]
    cols, table_rows = columns_and_rows(report_runs, [], ["fd", "fd_floor"], groups)
    fd_col = next(c for c in cols if c["key"] == "fd")
    assert fd_col["best"] == [2.0, 1.0] and cols[2]["key"] == "card_group"
    assert [r[2] for r in table_rows] == ["A", "A", "B"]


def test_reported_names_follow_train_metrics_for_configs_and_stored_rows():
    from ganlab.metrics import reported_names

    registry = tiny_registry()
    assert reported_names(tiny_config(registry), registry) == ["fd", "kid"]
    with pytest.raises(ConfigError, match="data set of 256 images gives 64"):  # its holdout split is too small
        tiny_config(registry, metrics="fd,pr,dc", eval_samples=128)
    config = tiny_config(registry, metrics="fd,pr,dc", eval_samples=128, n=1000)
    assert reported_names(config, registry) == ["fd", "precision", "recall", "density", "coverage"]
    # A queue row's config (the dict), with the default left out as stored.
    assert reported_names(json.loads(tiny_config(registry).to_json()), registry) == ["fd", "kid"]
    assert reported_names(json.loads(config.to_json()), registry)[-1] == "coverage"


def test_a_failing_metric_plugin_is_a_failed_evaluation_not_a_failed_run(tmp_path):
    import numpy as np

    import ganlab
    from ganlab.metrics.suite import MetricFailed, MetricSuite
    from ganlab.specs import ImageData

    class Extractor:
        card = staticmethod(lambda: {"backbone": "pixels"})

        def __call__(self, images):
            return np.asarray(images).reshape(len(images), -1)

    pixels = ganlab.FeatureSpec("pixels", "", lambda ctx: Extractor())
    broken = ganlab.MetricSpec("broken", "", ("score",), pixels, lambda r, f, ctx: 1 / 0)
    wrong = ganlab.MetricSpec("wrong", "", ("score",), pixels, lambda r, f, ctx: {"other": 1.0})
    data = ImageData(np.random.default_rng(0).integers(0, 255, (40, 4, 4, 1), dtype=np.uint8))
    for spec, message in ((broken, "metric 'broken' failed: ZeroDivisionError"),
                          (wrong, "metric 'wrong' returned ['other']; it must return score")):
        with pytest.raises(MetricFailed, match=message.replace("[", r"\[").replace("]", r"\]")):
            MetricSuite(data, [spec], n_real=20).floor()
    assert issubclass(MetricFailed, ValueError)  # the trainer logs a failed evaluation and trains on


def test_two_backbones_under_one_name_are_refused_at_enqueue():
    import ganlab
    import ganlab.builtin.metrics as builtin_metrics
    from ganlab.metrics.selection import check_metrics
    from ganlab.registry import Registry

    class Impostor:
        @staticmethod
        @ganlab.hookimpl
        def register_metrics(register):
            other = ganlab.FeatureSpec("classifier", "not the built-in one", lambda ctx: None)
            register(ganlab.MetricSpec("mine", "", ("mine",), other, lambda r, f, ctx: {"mine": 0.0}))

    reg = Registry()
    reg.add_plugin(builtin_metrics, name="builtin-metrics", source="builtin")
    reg.add_plugin(Impostor, name="impostor", source="tests")
    reg.collect()
    assert check_metrics(reg, {"metrics": "fd,kid", "eval_samples": 100}, None) == "fd,kid"
    with pytest.raises(ConfigError, match="metrics 'fd' and 'mine' use two different feature extractors both named "
                                          "'classifier'"):
        check_metrics(reg, {"metrics": "fd,mine", "eval_samples": 100}, None)
