"""``Store.extend`` on both databases: same row, new budget, queued again; all or nothing; no second copy of a config."""

from __future__ import annotations

import pytest

from ganlab.config import ExperimentConfig
from ganlab.errors import ConfigError, IllegalTransition
from ganlab.store import NewExperiment, Queue, Store


def _config(seed: int, steps: int = 5) -> ExperimentConfig:
    return ExperimentConfig("toy", "toyset", "toyloss", train={"seed": seed, "steps": steps})


def test_extend_requeues_the_same_row_with_the_new_budget_all_or_nothing(db_url: str) -> None:
    with Store.open(db_url, create=True) as store:
        ids = [i for i, _ in store.enqueue([NewExperiment(_config(s), f"e{s}") for s in range(3)]).queued]
    with Queue.open(db_url) as q:
        claims = [q.claim("w", lease_s=300) for _ in ids]
        q.finish(ids[0], claims[0].token, "succeeded", step=5)
        q.finish(ids[1], claims[1].token, "stopped", step=4, stop_reason="no fd improvement in 2 evaluations")
    with Store.open(db_url) as store:
        # 3 is still running: extending 1 and 3 together extends neither.
        with pytest.raises(IllegalTransition, match=f"experiment {ids[2]} is running"):
            store.extend([ids[0], ids[2]], 9)
        assert store.get(ids[0]).status == "succeeded"
        # A twin of 1 at 9 steps is queued: extending 1 to 9 would store its config twice.
        store.enqueue([NewExperiment(_config(0, steps=9), "twin")])
        with pytest.raises(ConfigError, match="already has experiment"):
            store.extend([ids[0]], 9)
        done = store.extend([ids[0], ids[1]], 12)
        assert [(e.id, e.old_steps, e.steps, e.step) for e in done] == [(ids[0], 5, 12, 5), (ids[1], 5, 12, 4)]
        for exp_id in ids[:2]:
            rec = store.get(exp_id)
            assert (rec.status, rec.total_steps, rec.stop_reason) == ("queued", 12, None)
            assert rec.config_hash == rec.experiment_config().hash
    with Queue.open(db_url) as q:
        again = q.claim("w2", lease_s=300)
        assert again is not None and again.id == ids[0] and again.experiment.step == 5
