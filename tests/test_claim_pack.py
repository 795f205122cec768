"""Claiming a pack: all of its queued rows in one claim, each with its own token; never split between workers.

Run as a script, this file is a claiming process (see the concurrency test).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from ganlab.config import ExperimentConfig
from ganlab.store import NewExperiment, Queue, Store

PACKS, PACK = 6, 3


def _items(key: str | None, seeds: range, prefix: str) -> list[NewExperiment]:
    return [NewExperiment(ExperimentConfig("toy", "toyset", "toyloss", train={"seed": s, "p": prefix}), f"{prefix}{s}",
                          pack_key=key) for s in seeds]


def test_claim_pack_takes_every_queued_row_of_a_pack_and_claim_takes_one(db_url: str) -> None:
    with Store.open(db_url, create=True) as store:
        solo = [i for i, _ in store.enqueue(_items(None, range(1), "solo")).queued]
        pack_a = [i for i, _ in store.enqueue(_items("a" * 32, range(3), "a")).queued]
        pack_b = [i for i, _ in store.enqueue(_items("b" * 32, range(2), "b")).queued]
    with Queue.open(db_url) as q:
        assert [c.id for c in q.claim_pack("w1")] == solo
        claims = q.claim_pack("w1")
        assert [c.id for c in claims] == pack_a
        assert all(c.experiment.status == "running" and c.token == 1 for c in claims)
        # Each member is fenced on its own: one finishes, the others renew and end later.
        q.finish(claims[1].id, claims[1].token, "diverged", error="loss/generator became nan at step 3")
        q.renew(claims[0].id, claims[0].token, step=5)
        q.release(claims[2].id, claims[2].token, step=5)  # back to the queue alone
        # What is left queued of a pack is claimed as it comes (here one row: it trains alone).
        assert [c.id for c in q.claim_pack("w2")] == [pack_a[2]]
        # A plain claim takes one row of a pack (an older worker trains it alone) ...
        first_b = q.claim("w2")
        assert first_b is not None and first_b.id == pack_b[0]
        # ... and claim_pack then takes the rest of that pack.
        assert [c.id for c in q.claim_pack("w3")] == [pack_b[1]]
        assert q.claim_pack("w3") == []
        assert q.get(pack_a[1]).status == "diverged" and q.get(pack_a[0]).status == "running"


def test_a_lapsed_lease_takes_back_the_whole_pack_so_it_is_claimed_again_whole(db_url: str) -> None:
    with Store.open(db_url, create=True) as store:
        pack = [i for i, _ in store.enqueue(_items("c" * 32, range(3), "c")).queued]
        other = [i for i, _ in store.enqueue(_items("d" * 32, range(2), "d")).queued]
    with Queue.open(db_url) as q:
        claims = q.claim_pack("dead", lease_s=60)
        mine = q.claim_pack("alive", lease_s=600)
        assert [c.id for c in claims] == pack and [c.id for c in mine] == other
        # The dead pack's members were renewed one by one: the first lease lapses before the others.
        q.renew(claims[1].id, claims[1].token, lease_s=600)
        q.renew(claims[2].id, claims[2].token, lease_s=600)
        later = claims[0].lease_expires_at + timedelta(seconds=1)
        back = q.reclaim_expired(now=later)
        assert [(r.id, r.status) for r in back] == [(i, "queued") for i in pack]
        assert "another seed of its pack" in back[1].reason
        # The live pack on another worker is not touched, and the dead one comes back whole.
        assert [q.get(i).status for i in other] == ["running", "running"]
        again = q.claim_pack("new", lease_s=60)
        assert [c.id for c in again] == pack and all(c.token == 2 for c in again)


def _claim_loop(url: str, out: Path, worker: str) -> None:
    taken: list[list[int]] = []
    with Queue.open(url) as q:
        while claims := q.claim_pack(worker, lease_s=60):
            taken.append([c.id for c in claims])
            for c in claims:
                q.finish(c.id, c.token, "succeeded")
    out.write_text(json.dumps(taken))


def test_concurrent_claimers_never_split_a_pack(db_url: str, tmp_path: Path) -> None:
    with Store.open(db_url, create=True) as store:
        packs = [[i for i, _ in store.enqueue(_items(f"{k:032d}", range(PACK), f"p{k}-")).queued] for k in range(PACKS)]
    script = str(Path(__file__).resolve())
    procs = [subprocess.Popen([sys.executable, script, db_url, str(tmp_path / f"c{i}.json"), f"w{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    taken = [ids for i in range(4) for ids in json.loads((tmp_path / f"c{i}.json").read_text())]
    assert sorted(taken) == sorted(packs)  # every pack claimed whole, exactly once


if __name__ == "__main__":
    _claim_loop(sys.argv[1], Path(sys.argv[2]), sys.argv[3])
