"""``ganlab compare`` against a real SQLite queue whose experiments went through the worker's store API.

Rows are made with the same calls a worker makes (enqueue resolved configs,
claim, finish with the metrics ``ganlab train`` reports), without training,
so the whole file takes a few seconds.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _store_db import sqlite_snapshot
from click.testing import CliRunner
from training_helpers import tiny_config, tiny_registry

from ganlab.cli import cli
from ganlab.store.queue import Queue
from ganlab.store.records import NewExperiment
from ganlab.store.storage import Store

# id -> (loss, seed, tag, final status, metrics as 'ganlab train' reports them)
RUNS = {
    1: ("non-saturating", 0, "study", "succeeded",
        {"fd": 4.25, "kid": 0.31, "fd_floor": 0.5, "kid_floor": 0.01, "best_fd": 4.0, "best_kid": 0.3, "best_step": 9}),
    2: ("non-saturating", 1, "study", "succeeded",
        {"fd": 6.5, "kid": 0.62, "fd_floor": 0.5, "kid_floor": 0.01, "best_fd": 5.5, "best_kid": 0.6, "best_step": 6}),
    3: ("hinge", 0, "study", "succeeded",
        {"fd": 2.125, "kid": 0.29, "fd_floor": 0.5, "kid_floor": 0.01, "best_fd": 1.875, "best_kid": 0.28, "best_step": 9}),
    4: ("hinge", 1, "study", "succeeded",
        {"fd": 3.75, "kid": 0.17, "fd_floor": 0.5, "kid_floor": 0.01, "best_fd": 3.5, "best_kid": 0.16, "best_step": 9}),
    5: ("wgan-gp", 0, "other", "diverged", None),
    6: ("non-saturating", 2, "study", "running", None),  # claimed, not finished
    7: ("hinge", 2, "study", None, None),  # still queued
}
BEST = {"fd": "2.125", "kid": "0.17", "best_fd": "1.875", "best_kid": "0.16"}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("compare") / "experiments.db"
    url = f"sqlite:///{path}"
    registry = tiny_registry()
    items = []
    for exp_id, (loss, seed, tag, _, _) in RUNS.items():
        # A bookkeeping setting that differs must not become a column.
        extra = {"checkpoint_every": 6} if exp_id == 2 else {}
        config = tiny_config(registry, loss=loss, seed=seed, steps=9, **extra)
        items.append(NewExperiment(config, name=f"{loss}-seed={seed}", tags=(tag,)))
    with Queue.open(url, create=True) as queue:
        assert [i for i, _ in queue.enqueue(items).queued] == list(RUNS)
        for exp_id, (_, _, _, status, metrics) in RUNS.items():
            if status is None:
                continue
            claim = queue.claim("test-worker", lease_s=60)
            assert claim is not None and claim.id == exp_id
            if status == "running":
                queue.renew(exp_id, claim.token, step=3, losses={"loss/generator": 0.7})
                continue
            step = 9 if status == "succeeded" else 4
            queue.finish(exp_id, claim.token, status, metrics=metrics, step=step,
                         error="loss/discriminator became nan at step 4" if status == "diverged" else None)
    return url


def run(db: str, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, ["compare", "--db", db, *args], env=env)


def ok(db: str, *args: str, env: dict[str, str] | None = None):
    result = run(db, *args, env=env)
    assert result.exit_code == 0, result.output
    return result


def as_json(db: str, *args: str) -> list[dict]:
    return json.loads(ok(db, *args, "--json").stdout)


def one_line_error(result, fragment: str) -> None:
    assert result.exit_code != 0
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1, result.output
    assert "Traceback" not in result.output
    assert fragment in result.output, result.output


def test_table_lists_started_runs_with_the_hyperparameters_that_differ(db):
    out = ok(db).stdout
    header = next(line for line in out.splitlines() if " name " in line)
    cells = [c.strip() for c in re.split(r"[┃│|]", header) if c.strip()]
    assert cells[:2] == ["id", "name"] and cells[-1] == "wall"
    # Training settings are headed without their "train." prefix (--columns and --json keep it).
    assert {"loss", "seed", "status", "steps", "fd", "kid", "best_fd", "best_kid"} <= set(cells)
    # Same everywhere (arch, dataset), bookkeeping (checkpoint_every), or one loss's own constant: no column.
    assert not {"arch", "dataset", "train.batch_size", "train.checkpoint_every", "loss.gp_weight"} & set(cells)
    # Each loss's own Adam defaults: the loss column says it all, and the caption names what it folds.
    assert "lr_g" not in cells and "beta_1" not in cells
    caption = " ".join(out.split("└")[-1].split())
    assert "train.beta_1, train.beta_2, train.lr_d, train.lr_g, train.n_critic follow loss (--columns all" in caption
    assert "fd of real vs real data (the floor): 0.5" in caption
    # Floors and the best's step are context, not scores: only in JSON and CSV.
    assert "fd_floor" not in cells and "best_step" not in cells and "fd_floor" in out
    rows = {int(m.group(1)): m.group(0) for m in re.finditer(r"^[│|]\s*(\d+)\s*[│|].*$", out, re.M)}
    assert sorted(rows) == [1, 2, 3, 4, 5, 6]  # the queued #7 has nothing to compare yet
    assert "diverged" in rows[5] and "4/9" in rows[5] and "2.125" in rows[3] and "9/9" in rows[3]
    assert "running" in rows[6] and "3/9" in rows[6]


def test_json_has_every_metric_and_only_varying_hyperparameters(db):
    records = {r["id"]: r for r in as_json(db)}
    assert sorted(records) == [1, 2, 3, 4, 5, 6]
    r3 = records[3]
    assert r3["name"] == "hinge-seed=0" and r3["status"] == "succeeded" and (r3["step"], r3["total"]) == (9, 9)
    assert {k: r3[k] for k in RUNS[3][4]} == RUNS[3][4]  # final, best, floors: as stored
    assert r3["loss"] == "hinge" and r3["train.seed"] == 0 and r3["wall_s"] >= 0
    assert records[5]["fd"] is None and records[5]["status"] == "diverged"
    assert records[6]["status"] == "running" and records[6]["wall_s"] >= 0  # time so far
    assert r3["stop_reason"] is None
    # Stored without metric cards (as before cards existed): one group, nothing to tell apart.
    assert r3["cards"] == {} and {r["card_group"] for r in records.values()} == {"A"}
    hparam_keys = set(r3) - {"id", "name", "status", "step", "total", "stop_reason", "wall_s", "cards", "card_group",
                             "card_differs"} - set(RUNS[3][4])
    assert {"loss", "train.seed", "train.lr_g"} <= hparam_keys
    for key in hparam_keys:  # every column shown explains a difference
        assert len({json.dumps(r.get(key)) for r in records.values()}) > 1, key
    assert "train.checkpoint_every" not in hparam_keys and "train.batch_size" not in hparam_keys


def test_sort_by_a_metric_puts_the_best_first_and_runs_without_it_last(db):
    assert [r["id"] for r in as_json(db, "--sort", "fd")] == [3, 4, 1, 2, 5, 6]
    assert [r["id"] for r in as_json(db, "--sort", "best_kid")] == [4, 3, 1, 2, 5, 6]
    table = ok(db, "--sort", "fd").stdout
    assert [int(i) for i in re.findall(r"^[│|]\s*(\d+)\s*[│|]", table, re.M)] == [3, 4, 1, 2, 5, 6]


def test_the_best_value_of_each_metric_column_is_highlighted(db):
    # FORCE_COLOR makes rich write its styles although the output is not a terminal.
    out = ok(db, env={"FORCE_COLOR": "1", "NO_COLOR": None, "TERM": "xterm-256color"}).stdout
    bold_green = re.findall(r"\x1b\[1;32m\s*([^\x1b]*?)\s*\x1b\[0m", out)
    assert sorted(bold_green) == sorted(BEST.values()), bold_green
    plain = ok(db).stdout
    assert "\x1b[" not in plain  # piped output stays plain text


def _table_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line[:1] in "┏┃┡│└"]


@pytest.mark.parametrize("width", [100, 80])
def test_the_table_fits_the_terminal_and_never_cuts_a_number(db, width):
    out = ok(db, "--sort", "fd", env={"COLUMNS": str(width)}).stdout
    lines = _table_lines(out)
    assert lines and max(len(line) for line in lines) <= width, "\n".join(lines)
    rows = {int(m.group(1)): m.group(0) for m in re.finditer(r"^│\s*(\d+)\s*│.*$", out, re.M)}
    # Every final value whole, on its row's one line; names keep both ends ("…" in the middle when cut).
    assert "2.125" in rows[3] and "0.29" in rows[3] and "3.75" in rows[4] and "6.5" in rows[2]
    assert re.search(r"hinge-seed=0|hinge…|…ed=0|-seed=0", rows[3])
    assert "succeeded" in rows[3] and "diverged" in rows[5]


def test_a_narrow_terminal_loses_the_best_columns_first_and_says_so(db):
    out = ok(db, env={"COLUMNS": "70"}).stdout
    header = next(line for line in out.splitlines() if " name " in line)
    cells = [c.strip() for c in re.split(r"[┃│|]", header) if c.strip()]
    assert "fd" in cells and "kid" in cells and "best_fd" not in cells and "best_kid" not in cells
    caption = " ".join(out.split("└")[-1].split())
    assert "best_fd, best_kid left out to fit the terminal (--json shows every value)" in caption
    rows = {int(m.group(1)): m.group(0) for m in re.finditer(r"^│\s*(\d+)\s*│.*$", out, re.M)}
    assert "2.125" in rows[3] and "4.25" in rows[1]


def test_columns_all_shows_every_setting(db):
    out = ok(db, "--columns", "all", "--json").stdout
    record = json.loads(out)[0]
    assert {"train.lr_g", "train.batch_size", "train.checkpoint_every", "arch", "dataset"} <= set(record)
    table = ok(db, "--columns", "all", env={"COLUMNS": "100"}).stdout
    header = next(line for line in table.splitlines() if " name " in line)
    assert " lr_g " in header and " batch_size " in header and "follow loss" not in table
    # With more columns than any terminal holds, values still print whole (wider lines, never crushed).
    assert "2.125" in next(line for line in table.splitlines() if re.match(r"^│\s*3\s*│", line))


def test_csv_parses_back_to_the_json_records(db):
    text = ok(db, "--csv", "--sort", "fd").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    records = as_json(db, "--sort", "fd")
    assert [int(r["id"]) for r in rows] == [r["id"] for r in records]
    assert list(rows[0]) == list(records[0])
    for row, rec in zip(rows, records):
        for key in ("fd", "kid", "best_fd", "fd_floor"):
            assert (float(row[key]) if row[key] else None) == rec[key]
        assert row["loss"] == rec["loss"] and row["status"] == rec["status"]


def test_group_seeds_gives_mean_and_std_per_config(db):
    groups = {g["name"]: g for g in as_json(db, "--group-seeds", "--tag", "study")}
    assert set(groups) == {"non-saturating ×3 seeds", "hinge ×2 seeds"}
    hinge = groups["hinge ×2 seeds"]
    assert hinge["ids"] == [3, 4] and hinge["fd"] == pytest.approx((2.125 + 3.75) / 2)
    assert hinge["fd_std"] == pytest.approx(1.1490485, rel=1e-6)  # sample std of 2.125 and 3.75
    assert hinge["status"] == "succeeded" and hinge["train.seed"] == "0,1"
    ns = groups["non-saturating ×3 seeds"]
    # Seed 2 is still running: the mean is over the seeds that have the metric, and the status says so.
    assert ns["ids"] == [1, 2, 6] and ns["status"] == "2 succeeded, 1 running" and ns["train.seed"] == "0,1,2"
    assert ns["fd"] == pytest.approx((4.25 + 6.5) / 2) and ns["best_fd"] == pytest.approx((4.0 + 5.5) / 2)
    table = ok(db, "--group-seeds", "--tag", "study", "--sort", "fd").stdout
    line = next(ln for ln in table.splitlines() if "hinge ×2 seeds" in ln)
    assert "2.938 ± 1.1" in line
    csv_rows = list(csv.DictReader(io.StringIO(ok(db, "--group-seeds", "--csv", "--tag", "study").stdout)))
    assert {r["ids"] for r in csv_rows} == {"1 2 6", "3 4"}


def test_ids_tags_and_statuses_select_rows(db):
    assert [r["id"] for r in as_json(db, "4", "2")] == [2, 4]
    assert [r["id"] for r in as_json(db, "--tag", "other")] == [5]
    assert [r["id"] for r in as_json(db, "--status", "queued")] == [7]
    assert [r["id"] for r in as_json(db, "--status", "running", "--status", "diverged")] == [5, 6]
    assert [r["id"] for r in as_json(db, "1", "5", "--status", "succeeded")] == [1]
    cols = ok(db, "--columns", "train.lr_g,loss", "--json").stdout
    assert "train.lr_g" in json.loads(cols)[0] and "train.seed" not in json.loads(cols)[0]


def test_bad_input_is_one_line_and_changes_nothing(db):
    path = Path(db.removeprefix("sqlite:///"))
    before = sqlite_snapshot(path)
    one_line_error(run(db, "1", "98", "99"), "no experiments 98, 99 in")
    one_line_error(run(db, "--sort", "fdd"), "--sort 'fdd': no run has that metric; did you mean 'fd'")
    one_line_error(run(db, "--columns", "train.lr"), "--columns 'train.lr' is not a hyperparameter of these runs")
    usage = run(db, "--json", "--csv")
    assert usage.exit_code == 2 and "choose one of --json and --csv" in usage.output
    assert sqlite_snapshot(path) == before
    missing = path.parent / "nothing-here.db"
    one_line_error(run(str(missing)), "")
    assert not missing.exists()


def test_nothing_matching_is_an_empty_result_with_a_note(db):
    table = ok(db, "--tag", "nope")
    assert table.stdout.strip().startswith("no experiments match (try without --tag/--status, or see: ganlab queue list --db ")
    js = ok(db, "--tag", "nope", "--json")
    assert json.loads(js.stdout) == [] and "no experiments match" in js.stderr
    cs = ok(db, "--tag", "nope", "--csv")
    assert cs.stdout == "" and "no experiments match" in cs.stderr
    # Ids that exist but do not pass the filters: same note, not an error.
    assert "no experiments match" in ok(db, "5", "--status", "succeeded").stdout


def test_compare_does_not_import_tensorflow_or_keras(db):
    code = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from ganlab.cli import cli\n"
        f"r = CliRunner().invoke(cli, ['compare', '--db', {db!r}, '--group-seeds'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(json.dumps(sorted(m for m in ('tensorflow', 'keras', 'jax', 'tensorboard') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_two_thousand_rows_are_read_in_one_pass(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'big.db'}"
    config = tiny_config(tiny_registry())
    with Queue.open(url, create=True) as queue:
        queue.enqueue([NewExperiment(config, name=f"run-{i}") for i in range(2000)], allow_duplicates=True)
    calls: list[int] = []
    real_get_many = Store.get_many

    def counting_get_many(self, ids):
        calls.append(len(ids))
        return real_get_many(self, ids)

    def no_get(self, exp_id):
        raise AssertionError("compare must not read experiments one by one")

    monkeypatch.setattr(Store, "get_many", counting_get_many)
    monkeypatch.setattr(Store, "get", no_get)
    started = time.perf_counter()
    records = as_json(url, "--status", "queued")
    elapsed = time.perf_counter() - started
    assert len(records) == 2000 and calls == [2000]
    print(f"compare --json over 2000 rows: {elapsed:.2f} s")  # a sanity figure, not a limit


def test_cli_reference_documents_compare_and_tensorboard_options():
    from ganlab.cli.compare_cmd import compare
    from ganlab.cli.tensorboard_cmd import tensorboard

    docs = Path(__file__).resolve().parents[1] / "docs"
    reference = (docs / "cli.md").read_text()
    for command in (compare, tensorboard):
        section = reference.split(f"## ganlab {command.name}\n", 1)[1].split("\n## ", 1)[0]
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert f"`{opt}" in section, (command.name, opt)
    guide = (docs / "compare.md").read_text()
    assert "](img/hparams.png)" in guide and (docs / "img" / "hparams.png").is_file()
