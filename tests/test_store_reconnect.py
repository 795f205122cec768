"""A worker's queue on PostgreSQL when the server cuts a connection in the middle of a transaction.

The server end is killed with pg_terminate_backend at an exact point (before a
statement, or just before COMMIT), so the race the worker meets by chance
happens on every run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _store_db import PG_URL, _pg_admin
from sqlalchemy import event
from test_store import new

from ganlab.errors import DatabaseUnreachable
from ganlab.store import Queue

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg() -> Iterator[tuple[Any, Queue]]:
    admin = _pg_admin()  # skips loudly when no server runs
    name = f"ganlab_reconnect_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    queue = Queue.open(PG_URL.format(name=name), create=True)
    try:
        yield admin, queue
    finally:
        queue.close()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _backend_pid(conn: Any) -> int:
    return conn.connection.dbapi_connection.info.backend_pid


def cut_once(admin: Any, queue: Queue, event_name: str, when: Callable[..., bool] = lambda *a: True) -> list[int]:
    """Terminate the server end of the first connection that reaches ``event_name`` with ``when`` true."""
    killed: list[int] = []

    def cut(conn: Any, *args: Any) -> None:
        if not killed and when(*args):
            pid = _backend_pid(conn)
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))  # waits until it is gone
            killed.append(pid)

    event.listen(queue.engine, event_name, cut)
    return killed


def _running(q: Queue) -> tuple[int, int]:
    """A queued experiment, claimed: its id and fencing token."""
    [(exp_id, _)] = q.enqueue([new(0)]).queued
    claim = q.claim("w", lease_s=30)
    assert claim is not None and claim.id == exp_id
    return exp_id, claim.token


def _is_update(cursor: Any, statement: str, *rest: Any) -> bool:
    return statement.lstrip().upper().startswith("UPDATE EXPERIMENTS")


def test_a_heartbeat_cut_mid_transaction_is_run_again_on_a_fresh_connection(pg: tuple[Any, Queue]) -> None:
    admin, q = pg
    exp_id, token = _running(q)
    killed = cut_once(admin, q, "before_cursor_execute", _is_update)
    beat = q.renew(exp_id, token, step=42, losses={"g": 1.5}, lease_s=30)
    assert killed, "the test never cut the connection"
    assert not beat.cancel_requested
    rec = q.get(exp_id)
    assert (rec.status, rec.step, rec.last_losses, rec.fence) == ("running", 42, {"g": 1.5}, token)
    with q.engine.connect() as conn:
        assert _backend_pid(conn) != killed[0]  # the retry ran on a new server process


def test_a_claim_cut_mid_transaction_takes_exactly_one_experiment(pg: tuple[Any, Queue]) -> None:
    admin, q = pg
    ids = [i for i, _ in q.enqueue([new(0), new(1)]).queued]
    killed = cut_once(admin, q, "before_cursor_execute", _is_update)
    claim = q.claim("w", lease_s=30)
    assert killed and claim is not None
    # The cut take was rolled back by the server; the retry took the first one, attempt 1.
    assert (claim.id, claim.experiment.attempts, claim.token) == (ids[0], 1, 1)
    assert [(s.id, s.status) for s in q.list_experiments()] == [(ids[0], "running"), (ids[1], "queued")]


def test_a_write_cut_during_its_commit_is_reported_not_repeated(pg: tuple[Any, Queue]) -> None:
    admin, q = pg
    exp_id, token = _running(q)
    executed: list[str] = []
    event.listen(q.engine, "before_cursor_execute", lambda c, cur, statement, *a: executed.append(statement))
    killed = cut_once(admin, q, "commit")
    # Whether a COMMIT that never answered landed is unknowable here: the caller must hear of it.
    with pytest.raises(DatabaseUnreachable, match="cannot reach database"):
        q.finish(exp_id, token, "succeeded", metrics={"fd": 1.0})
    assert killed
    assert sum(s.lstrip().upper().startswith("UPDATE EXPERIMENTS") for s in executed) == 1  # not run twice
    # The server never saw the COMMIT, so the row is untouched and the worker's later retry succeeds.
    assert q.get(exp_id).status == "running"
    q.finish(exp_id, token, "succeeded", metrics={"fd": 1.0})
    assert q.get(exp_id).status == "succeeded"


def test_a_heartbeat_cut_during_its_commit_is_repeated_since_twice_is_the_same_as_once(pg: tuple[Any, Queue]) -> None:
    admin, q = pg
    exp_id, token = _running(q)
    killed = cut_once(admin, q, "commit")
    q.renew(exp_id, token, step=7, lease_s=30)
    assert killed
    assert q.get(exp_id).step == 7


def test_a_server_that_stays_away_is_reported_after_one_retry(pg: tuple[Any, Queue]) -> None:
    admin, q = pg
    exp_id, token = _running(q)
    cuts: list[int] = []

    def cut_every_time(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if _is_update(cursor, statement):
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (_backend_pid(conn),))
            cuts.append(1)

    event.listen(q.engine, "before_cursor_execute", cut_every_time)
    with pytest.raises(DatabaseUnreachable):
        q.renew(exp_id, token, step=5)
    assert len(cuts) == 2  # the first try and one retry, no loop
    event.remove(q.engine, "before_cursor_execute", cut_every_time)
    assert q.get(exp_id).step != 5
