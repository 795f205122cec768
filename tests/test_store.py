"""The experiment store on real databases: lifecycle, illegal transitions, fencing, leases, schema versions."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from _store_db import sqlite_snapshot
from sqlalchemy import create_engine, inspect, text

from ganlab.config import ExperimentConfig
from ganlab.errors import (
    ConfigError,
    DatabaseMissing,
    IllegalTransition,
    LeaseLost,
    NotFound,
    SchemaMismatch,
    StoreError,
)
from ganlab.store import NewExperiment, Queue, Store, upgrade
from ganlab.store.database import open_engine
from ganlab.store.lifecycle import STATUSES, TRANSITIONS, check_transition
from ganlab.store.migrations import Migration
from ganlab.store.models import SCHEMA_VERSION
from ganlab.store.urls import display_url, resolve_url


def cfg(seed: int = 0, steps: int = 100, arch: str = "toy") -> ExperimentConfig:
    return ExperimentConfig(arch, "toyset", "toyloss", arch_params={"width": 8}, train={"steps": steps, "seed": seed})


def new(seed: int, *, priority: int = 0, tags: tuple[str, ...] = (), name: str | None = None) -> NewExperiment:
    return NewExperiment(cfg(seed), name or f"e{seed}", priority, tags)


@pytest.fixture
def q(db_url: str):  # noqa: F811
    queue = Queue.open(db_url, create=True)
    yield queue
    queue.close()


def statuses(store: Store) -> dict[int, str]:
    return {s.id: s.status for s in store.list_experiments()}


# ---------------------------------------------------------------- URLs


def test_bare_path_means_sqlite_and_env_var_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GANLAB_DB", raising=False)
    assert resolve_url(None) == "sqlite:///experiments.db"
    assert resolve_url("runs/q.db") == "sqlite:///runs/q.db"
    assert resolve_url("/abs/q.db") == "sqlite:////abs/q.db"
    monkeypatch.setenv("GANLAB_DB", "postgresql+psycopg://u:secret@h/db")
    assert resolve_url(None) == "postgresql+psycopg://u:secret@h/db"
    assert "secret" not in display_url(resolve_url(None))
    assert resolve_url("x.db") == "sqlite:///x.db"  # --db wins over the environment


# ----------------------------------------------------------- enqueue, read


def test_enqueue_stores_the_full_record(q: Queue) -> None:
    result = q.enqueue([new(0, priority=3, tags=("a", "b")), new(1)])
    assert [name for _, name in result.queued] == ["e0", "e1"] and not result.skipped
    rec = q.get(result.queued[0][0])
    assert (rec.status, rec.priority, rec.tags, rec.attempts, rec.fence) == ("queued", 3, ("a", "b"), 0, 0)
    assert rec.experiment_config() == cfg(0)
    assert rec.config_hash == cfg(0).hash and rec.total_steps == 100 and rec.step == 0
    assert rec.queued_at.tzinfo is not None and rec.started_at is None and not rec.cancel_requested
    assert rec.to_dict()["tags"] == ["a", "b"]


def test_bulk_insert_stores_values_as_single_row_writes_do(q: Queue) -> None:
    [(exp_id, _)] = q.enqueue([new(0)]).queued
    [(other, _)] = q.enqueue([new(1)]).queued
    claim = q.claim("w")  # started_at and friends are written through the ordinary Core path
    assert claim is not None
    with q.engine.connect() as conn:
        row = conn.execute(text("SELECT queued_at, started_at, config, cancel_requested FROM experiments "
                                "WHERE id = :id"), {"id": exp_id}).one()
    queued, started = str(row.queued_at), str(row.started_at)
    # One stored format: timestamps compare correctly as text on SQLite and as timestamptz on PostgreSQL.
    assert len(queued) == len(started) and queued[10] == started[10] and queued < started
    assert queued.endswith("+00:00") or row.queued_at.utcoffset().total_seconds() == 0
    assert row.cancel_requested in (0, False)
    assert q.get(other).experiment_config() == cfg(1)


def test_duplicates_are_skipped_unless_allowed(q: Queue) -> None:
    first = q.enqueue([new(0)]).queued[0][0]
    again = q.enqueue([new(0, name="again"), new(1), new(1, name="twin")])
    assert [n for _, n in again.queued] == ["e1"]
    assert [(s.name, s.existing_id, s.existing_status) for s in again.skipped] == [
        ("again", first, "queued"), ("twin", None, None)]
    assert len(q.enqueue([new(0)], allow_duplicates=True).queued) == 1
    # A failed run does not block queueing the same config again.
    claim = q.claim("w")
    assert claim is not None and claim.id == first
    q.finish(claim.id, claim.token, "failed", error="boom")
    assert q.duplicates([cfg(0).hash]) == {cfg(0).hash: (first + 2, "queued")}


def test_enqueue_is_all_or_nothing(q: Queue) -> None:
    q.enqueue([new(-1)])
    before = statuses(q)
    # 1,500 rows span several multi-row INSERT batches; the last violates NOT NULL (names are
    # checked before the transaction, so the architecture is the column left to break).
    items = [new(i) for i in range(1500)] + [NewExperiment(cfg(99999, arch=None), "last")]  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="experiments.architecture|null value"):
        q.enqueue(items)
    assert statuses(q) == before
    with pytest.raises(ConfigError, match="tag 'a b' is not allowed"):
        q.enqueue([new(5), new(6, tags=("a b",))])
    assert statuses(q) == before


def test_list_filters_limit_and_order(q: Queue) -> None:
    q.enqueue([new(i, tags=("even",) if i % 2 == 0 else ()) for i in range(6)])
    q.enqueue([NewExperiment(cfg(0, arch="other"), "o")])
    assert [s.id for s in q.list_experiments()] == [1, 2, 3, 4, 5, 6, 7]
    assert [s.id for s in q.list_experiments(limit=2)] == [6, 7]
    assert [s.id for s in q.list_experiments(tags=["even"])] == [1, 3, 5]
    assert q.list_experiments(tags=["even"])[0].tags == ("even",)
    assert [s.id for s in q.list_experiments(architecture="other")] == [7]
    claim = q.claim("w")
    assert claim is not None
    assert [s.id for s in q.list_experiments(statuses=["running"])] == [claim.id]
    assert q.count_by_status()["queued"] == 6
    with pytest.raises(ConfigError, match="unknown status 'done'"):
        q.list_experiments(statuses=["done"])


# -------------------------------------------------------------- lifecycle


def test_lifecycle_claim_heartbeat_finish(q: Queue) -> None:
    exp_id = q.enqueue([new(0)]).queued[0][0]
    claim = q.claim("w1", host="gpu-box", pid=4242, lease_s=30)
    assert claim is not None and claim.id == exp_id and claim.token == 1
    rec = q.get(exp_id)
    assert (rec.status, rec.attempts, rec.worker_id, rec.worker_host, rec.worker_pid) == ("running", 1, "w1", "gpu-box", 4242)
    assert rec.lease_expires_at == claim.lease_expires_at and rec.started_at is not None
    q.set_run_dir(exp_id, claim.token, "/runs/1", host="gpu-box")
    beat = q.renew(exp_id, claim.token, step=40, losses={"d": 0.7, "g": 1.25}, lease_s=30)
    assert beat.cancel_requested is False and beat.lease_expires_at > claim.lease_expires_at
    rec = q.get(exp_id)
    assert (rec.step, rec.last_losses, rec.run_dir, rec.run_host) == (40, {"d": 0.7, "g": 1.25}, "/runs/1", "gpu-box")
    q.finish(exp_id, claim.token, "succeeded", metrics={"fid": 12.5}, step=100)
    rec = q.get(exp_id)
    assert (rec.status, rec.metrics, rec.step, rec.lease_expires_at) == ("succeeded", {"fid": 12.5}, 100, None)
    assert rec.finished_at is not None and q.claim("w1") is None


def test_non_finite_numbers_are_stored_as_null(q: Queue) -> None:
    q.enqueue([new(0)])
    claim = q.claim("w")
    assert claim is not None
    q.renew(claim.id, claim.token, losses={"d": float("nan"), "g": 2.0})
    q.finish(claim.id, claim.token, "diverged", metrics={"fid": float("inf"), "is": [1.5, float("-inf")]})
    rec = q.get(claim.id)
    assert rec.last_losses == {"d": None, "g": 2.0} and rec.metrics == {"fid": None, "is": [1.5, None]}


def test_claim_order_priority_then_oldest_and_tag_filter(q: Queue) -> None:
    q.enqueue([new(0), new(1, priority=5), new(2, tags=("big",)), new(3, priority=5)])
    assert q.claim("w", tags=["big"]).id == 3  # type: ignore[union-attr]
    assert q.claim("w", tags=["big"]) is None
    assert [q.claim("w").id for _ in range(2)] == [2, 4]  # type: ignore[union-attr]
    assert q.claim("w").id == 1  # type: ignore[union-attr]
    assert q.claim("w") is None


def test_cancel_queued_now_and_running_through_the_worker(q: Queue) -> None:
    q.enqueue([new(0), new(1), new(2)])
    claim = q.claim("w")
    assert claim is not None and claim.id == 1
    assert q.cancel([2, 1]) == [(2, "cancelled"), (1, "cancel requested")]
    assert q.get(2).status == "cancelled" and q.get(2).finished_at is not None
    assert q.get(1).status == "running" and q.get(1).cancel_requested
    assert q.renew(1, claim.token, step=5).cancel_requested is True
    q.finish(1, claim.token, "cancelled")
    assert q.get(1).status == "cancelled"
    assert q.cancel_all_queued() == [3] and statuses(q) == {1: "cancelled", 2: "cancelled", 3: "cancelled"}


def test_retry_requeues_and_keeps_the_run_dir(q: Queue) -> None:
    q.enqueue([new(0), new(1)])
    c1 = q.claim("w")
    assert c1 is not None
    q.set_run_dir(c1.id, c1.token, "/runs/a")
    q.renew(c1.id, c1.token, step=60)
    q.finish(c1.id, c1.token, "diverged", error="loss is NaN at step 61")
    q.cancel([2])
    assert q.retry([1, 2]) == [(1, "/runs/a"), (2, None)]
    rec = q.get(1)
    assert (rec.status, rec.run_dir, rec.error, rec.attempts, rec.finished_at, rec.step) == (
        "queued", "/runs/a", None, 0, None, 60)
    again = q.claim("w")
    assert again is not None and again.id == 1 and again.token == 2 and again.experiment.run_dir == "/runs/a"


def test_remove_and_priority(q: Queue) -> None:
    q.enqueue([new(0, tags=("t",)), new(1), new(2)])
    assert q.set_priority(3, 9).priority == 9
    assert q.claim("w").id == 3  # type: ignore[union-attr]
    assert q.remove([1, 2]) == [1, 2]
    assert list(statuses(q)) == [3]
    assert q.list_experiments(tags=["t"]) == []


# -------------------------------------------------------- illegal changes


def test_illegal_transitions_are_refused_by_the_store(q: Queue) -> None:
    q.enqueue([new(0), new(1), new(2), new(3)])
    done = q.claim("w")
    assert done is not None
    q.finish(done.id, done.token, "succeeded")
    running = q.claim("w")
    assert running is not None
    q.cancel([4])
    before = [q.get(i) for i in (1, 2, 3, 4)]
    cases = [
        (lambda: q.retry([1]), "experiment 1 is succeeded; only failed, diverged, cancelled"),
        (lambda: q.retry([4, 2]), "experiment 2 is running"),  # all or nothing: 4 stays cancelled
        (lambda: q.cancel([3, 1]), "experiment 1 is succeeded; only queued or running"),
        (lambda: q.remove([3, 2]), "experiment 2 is running; cancel it first"),
        (lambda: q.finish(running.id, running.token, "queued"), "finish status 'queued' is not one of"),
        (lambda: q.finish(running.id, running.token, "bogus"), "finish status 'bogus'"),
        (lambda: q.finish(done.id, done.token, "failed"), "experiment 1 is succeeded, no longer running"),
        (lambda: q.renew(3, 0), "experiment 3 is queued"),
    ]
    for call, message in cases:
        with pytest.raises((IllegalTransition, LeaseLost), match=message):
            call()
    assert [q.get(i) for i in (1, 2, 3, 4)] == before
    # The guard under every state change accepts exactly the lifecycle's edges.
    for source in STATUSES:
        for target in STATUSES:
            if target in TRANSITIONS[source]:
                check_transition(source, target)
            else:
                with pytest.raises(IllegalTransition, match=f"cannot go from {source} to {target}"):
                    check_transition(source, target)
    # A succeeded run goes back to the queue only through ``queue extend``; retry still refuses it (above).
    assert TRANSITIONS["succeeded"] == {"queued"} and TRANSITIONS["failed"] == {"queued"}


def test_unknown_ids_change_nothing(q: Queue) -> None:
    q.enqueue([new(0), new(1)])
    before = statuses(q)
    for call in (lambda: q.get(7), lambda: q.cancel([1, 7, 8]), lambda: q.retry([7]), lambda: q.remove([2, 7]),
                 lambda: q.set_priority(7, 1)):
        with pytest.raises(NotFound, match="no experiments? 7"):
            call()
    assert statuses(q) == before


# --------------------------------------------------------- leases, fencing


def test_fencing_a_stale_worker_cannot_overwrite_the_new_owner(q: Queue) -> None:
    q.enqueue([new(0)])
    old = q.claim("old", lease_s=10)
    assert old is not None
    reclaimed = q.reclaim_expired(now=old.lease_expires_at + timedelta(seconds=1))
    assert [(r.id, r.status) for r in reclaimed] == [(1, "queued")] and "worker old" in reclaimed[0].reason
    new_owner = q.claim("new", lease_s=10)
    assert new_owner is not None and new_owner.token == old.token + 1
    for call in (lambda: q.renew(1, old.token, step=999), lambda: q.finish(1, old.token, "failed", error="stale"),
                 lambda: q.set_run_dir(1, old.token, "/stale"), lambda: q.release(1, old.token)):
        with pytest.raises(LeaseLost, match=f"claimed again \\(token {new_owner.token}, yours {old.token}\\) by worker new"):
            call()
    q.finish(1, new_owner.token, "succeeded", metrics={"fid": 3.0})
    rec = q.get(1)
    assert (rec.status, rec.metrics, rec.error, rec.worker_id, rec.step) == ("succeeded", {"fid": 3.0}, None, "new", 0)


def test_reclaim_fails_after_max_attempts_and_honours_cancel(q: Queue) -> None:
    q.enqueue([new(0), new(1)])
    first = q.claim("w", lease_s=5)
    assert first is not None and q.reclaim_expired(max_attempts=2) == []  # lease still valid
    q.reclaim_expired(max_attempts=2, now=first.lease_expires_at + timedelta(seconds=1))
    second = q.claim("w", lease_s=5)
    assert second is not None and second.id == 1 and q.get(1).attempts == 2
    other = q.claim("w", lease_s=5)
    assert other is not None and other.id == 2
    q.cancel([2])
    late = max(second.lease_expires_at, other.lease_expires_at) + timedelta(seconds=1)
    reclaimed = {r.id: r for r in q.reclaim_expired(max_attempts=2, now=late)}
    assert reclaimed[1].status == "failed" and "attempt 2 of 2" in reclaimed[1].reason
    assert reclaimed[2].status == "cancelled"
    rec = q.get(1)
    assert rec.status == "failed" and "ganlab queue retry 1" in (rec.error or "") and rec.finished_at is not None


def test_release_gives_the_attempt_back(q: Queue) -> None:
    q.enqueue([new(0)])
    claim = q.claim("w")
    assert claim is not None
    q.release(claim.id, claim.token)
    rec = q.get(claim.id)
    assert (rec.status, rec.attempts, rec.worker_id, rec.fence) == ("queued", 0, None, 1)
    assert q.claim("w").token == 2  # type: ignore[union-attr]


def test_workers_table(q: Queue) -> None:
    q.register_worker("w1", host="box", pid=11, gpus="0,1")
    q.register_worker("w2", host="box", pid=12)
    q.worker_heartbeat("w1")
    q.worker_stopped("w2")
    workers = {w.worker_id: w for w in q.list_workers()}
    assert (workers["w1"].status, workers["w1"].gpus, workers["w2"].status) == ("running", "0,1", "stopped")
    assert workers["w1"].heartbeat_at >= workers["w1"].started_at
    assert [w.worker_id for w in q.list_workers(include_stopped=False)] == ["w1"]
    q.register_worker("w2", host="box", pid=13)  # a restart reuses the row
    assert {w.worker_id: w.pid for w in q.list_workers()}["w2"] == 13
    with pytest.raises(NotFound, match="no worker 'ghost'"):
        q.worker_heartbeat("ghost")


# ------------------------------------------------- opening, schema versions


def test_read_open_never_creates_a_database(tmp_path: Path) -> None:
    path = tmp_path / "experiments.db"
    with pytest.raises(DatabaseMissing, match=f"no experiments database at {path} .*queue something to create it"):
        Store.open(str(path))
    assert not path.exists()
    with pytest.raises(StoreError, match="folder .* does not exist"):
        Store.open(str(tmp_path / "nope" / "x.db"), create=True)


def test_corrupt_and_foreign_files_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, just text " * 200)
    for create in (False, True):
        with pytest.raises(StoreError, match="junk.db is not an SQLite database"):
            Store.open(str(junk), create=create)
    assert junk.read_bytes() == b"this is not a database, just text " * 200
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a ganlab experiments database \\(it has tables notes\\)"):
        Store.open(str(foreign), create=True)


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "experiments.db"
    Store.open(str(path), create=True).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def _stamp(url: str, version: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM ganlab_schema"))
        conn.execute(text("INSERT INTO ganlab_schema (version, description, applied_at) "
                          "VALUES (:v, 'test', CURRENT_TIMESTAMP)"), {"v": version})
    engine.dispose()


def test_schema_version_mismatch_names_the_fix(db_url: str) -> None:  # noqa: F811
    Store.open(db_url, create=True).close()
    hint = "" if db_url == "sqlite:///experiments.db" else f" --db {display_url(db_url)}"
    # This ganlab expects the next version (as the next release will): the database is older.
    with pytest.raises(SchemaMismatch) as err:
        open_engine(db_url, expected_version=SCHEMA_VERSION + 1)
    assert str(err.value).endswith(f"upgrade it with: ganlab db upgrade{hint}")
    assert f"schema version {SCHEMA_VERSION} but this ganlab needs version {SCHEMA_VERSION + 1}" in str(err.value)
    _stamp(db_url, 99)
    with pytest.raises(SchemaMismatch, match="written by a newer ganlab \\(schema version 99.*pip install -U ganlab"):
        Store.open(db_url)


def test_upgrade_applies_numbered_migrations_in_order(db_url: str) -> None:  # noqa: F811
    Store.open(db_url, create=True).close()
    assert upgrade(db_url) == (SCHEMA_VERSION, SCHEMA_VERSION)

    def add_index(conn) -> None:  # type: ignore[no-untyped-def]
        conn.execute(text("CREATE INDEX ix_experiments_name ON experiments (name)"))

    step = Migration(SCHEMA_VERSION + 1, "index experiment names", add_index)
    assert upgrade(db_url, migrations=(step,), target=SCHEMA_VERSION + 1) == (SCHEMA_VERSION, SCHEMA_VERSION + 1)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert "ix_experiments_name" in {ix["name"] for ix in inspect(conn).get_indexes("experiments")}
        versions = conn.execute(text("SELECT version, description FROM ganlab_schema ORDER BY version")).all()
    engine.dispose()
    assert [tuple(v) for v in versions] == [(SCHEMA_VERSION, "initial schema"), (SCHEMA_VERSION + 1, "index experiment names")]
    # This ganlab (still at SCHEMA_VERSION) now refuses the newer database.
    with pytest.raises(SchemaMismatch, match="newer ganlab"):
        Store.open(db_url)
    # A missing step is named, and the failed upgrade changes nothing.
    with pytest.raises(SchemaMismatch, match=f"no migration from schema version {SCHEMA_VERSION + 1} to {SCHEMA_VERSION + 2}"):
        upgrade(db_url, migrations=(step,), target=SCHEMA_VERSION + 3)


def test_upgrade_of_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "none.db"
    with pytest.raises(DatabaseMissing, match="nothing to upgrade"):
        upgrade(f"sqlite:///{path}")
    assert sqlite_snapshot(path) is None


def test_a_run_ends_pruned_or_stopped_with_its_reason(q: Queue) -> None:
    q.enqueue([new(0), new(1)])
    for status, reason in (("pruned", "pruned by asha at step 40"), ("stopped", "no fd improvement in 3 evaluations")):
        claim = q.claim("w", lease_s=30)
        assert claim is not None
        q.finish(claim.id, claim.token, status, step=40, stop_reason=reason)
        done = q.get(claim.id)
        assert (done.status, done.step, done.stop_reason) == (status, 40, reason)
        assert done.finished_at is not None and done.lease_expires_at is None
        # Neither is a failure: retry refuses them (``queue extend`` gives them more steps).
        with pytest.raises(IllegalTransition, match=f"experiment {claim.id} is {status}; only failed"):
            q.retry([claim.id])
