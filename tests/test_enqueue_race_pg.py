"""Eight real processes queue the same configs at the same moment: each config is stored exactly once.

On PostgreSQL the duplicate check and the insert used to race (two transactions
both saw no copy and both inserted); SQLite never did, its writers take the
lock at BEGIN. Run as a script, this file is one enqueuing process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

PROCESSES = 8
ROUNDS = 6
CONFIGS_PER_ROUND = 4


def _configs(round_no: int) -> list:  # type: ignore[type-arg]
    from ganlab.config import ExperimentConfig

    return [ExperimentConfig("toy", "toyset", "toyloss", train={"seed": round_no * 100 + i})
            for i in range(CONFIGS_PER_ROUND)]


def _wait_for_all(folder: Path, round_no: int, me: int) -> None:
    """A barrier over files: every process enqueues round ``round_no`` at the same moment."""
    (folder / f"r{round_no}-p{me}").touch()
    deadline = time.monotonic() + 60
    while sum(1 for _ in folder.glob(f"r{round_no}-p*")) < PROCESSES:
        if time.monotonic() > deadline:
            raise SystemExit(f"round {round_no}: the other processes never arrived")
        time.sleep(0.001)


def _enqueue_rounds(url: str, folder: Path, me: int, out: Path) -> None:
    from ganlab.store import NewExperiment, Store

    queued: list[int] = []
    with Store.open(url) as store:
        store.duplicates([])  # connect before the first barrier, so the rounds start together
        for round_no in range(ROUNDS):
            items = [NewExperiment(c, f"r{round_no}-{i}") for i, c in enumerate(_configs(round_no))]
            _wait_for_all(folder, round_no, me)
            queued += [exp_id for exp_id, _ in store.enqueue(items).queued]
    out.write_text(json.dumps(queued))


def test_eight_processes_queueing_the_same_configs_store_each_once(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    from ganlab.store import Store

    Store.open(db_url, create=True).close()
    script = str(Path(__file__).resolve())
    procs = [
        subprocess.Popen([sys.executable, script, db_url, str(tmp_path), str(i), str(tmp_path / f"ids{i}.json")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(PROCESSES)
    ]
    try:
        outputs = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0 and err.strip() == "", err
    with Store.open(db_url) as store:
        rows = store.get_many([r.id for r in store.list_experiments()])
    per_hash = Counter(r.config_hash for r in rows)
    expected = {c.hash for r in range(ROUNDS) for c in _configs(r)}
    copies = {h: n for h, n in per_hash.items() if n > 1}
    assert not copies, f"{sum(per_hash.values())} rows for {len(expected)} configs; copies per hash: {copies}"
    assert set(per_hash) == expected
    reported = sorted(i for n in range(PROCESSES) for i in json.loads((tmp_path / f"ids{n}.json").read_text()))
    assert reported == sorted(r.id for r in rows)  # every process was told truthfully what it queued


def test_allow_duplicates_still_queues_a_copy(db_url: str) -> None:  # noqa: F811
    from ganlab.store import NewExperiment, Store

    with Store.open(db_url, create=True) as store:
        item = NewExperiment(_configs(0)[0], "again")
        first = store.enqueue([item])
        second = store.enqueue([item], allow_duplicates=True)
        third = store.enqueue([item])
    assert len(first.queued) == 1 and len(second.queued) == 1
    assert third.queued == [] and third.skipped[0].existing_id == first.queued[0][0]


if __name__ == "__main__":
    url_arg, folder_arg, me_arg, out_arg = sys.argv[1:]
    _enqueue_rounds(url_arg, Path(folder_arg), int(me_arg), Path(out_arg))
