"""The worker on PostgreSQL when the connection drops or the server goes away for a while."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from _store_db import _pg_admin
from test_worker import enqueue, finish, record, start_worker, wait_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_db():
    admin = _pg_admin()  # skips loudly when no server runs
    name = f"ganlab_worker_{int(time.time() * 1000) % 10**9}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin, name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


class Proxy:
    """A TCP relay to the server that can be cut and restored, like a network partition."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.resume()

    def resume(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            listener.close()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _cancel(url: str, exp_id: int) -> None:
    from click.testing import CliRunner

    from ganlab.cli import cli

    assert CliRunner().invoke(cli, ["queue", "--db", url, "cancel", str(exp_id)]).exit_code == 0


# Far more steps than the tests wait for: the tiny model must still be training when the
# connections drop, however fast the machine; each test ends the run by cancelling it.
LONG_RUN = ("--steps", "100000", "--set", "checkpoint_every=50", "--set", "eval_every=1000000")


def test_dropped_connections_are_retried(pg_db, tmp_path):
    admin, name = pg_db
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    [exp_id] = enqueue(url, *LONG_RUN)
    worker = start_worker(url, tmp_path / "runs", "--until-empty", "--lease", "6")
    try:
        wait_for(lambda: record(url, exp_id).step >= 10, what="step 10")
        killed = admin.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()) t", (name,)).fetchone()[0]
        assert killed >= 1, "the worker held a connection"
        step_at_kill = record(url, exp_id).step
        # Heartbeats carry on over fresh connections: the step stored keeps growing.
        wait_for(lambda: record(url, exp_id).step > step_at_kill + 20, what="heartbeats after the reconnect")
        _cancel(url, exp_id)
        out = finish(worker)
    finally:
        if worker.poll() is None:
            worker.kill()
    rec = record(url, exp_id)
    assert rec.status == "cancelled" and rec.attempts == 1, out  # never released or restarted
    assert "database unreachable" not in out


def test_a_lost_database_stops_children_at_lease_expiry_then_resumes(pg_db, tmp_path):
    _, name = pg_db
    direct = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    proxy = Proxy(("127.0.0.1", 5432))
    via_proxy = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{name}"
    [exp_id] = enqueue(direct, *LONG_RUN)
    lease = 4.0
    worker = start_worker(via_proxy, tmp_path / "runs", "--until-empty", "--lease", str(lease), "--poll", "0.5")
    try:
        wait_for(lambda: record(direct, exp_id).step >= 10, what="step 10")
        run_dir = Path(record(direct, exp_id).run_dir)
        proxy.cut()
        cut_at = time.monotonic()
        # The child keeps training while the lease lasts, then checkpoints and stops (exit code 4).
        wait_for(lambda: "stopped on SIGTERM" in (run_dir / "train.log").read_text(), timeout=90,
                 what="the child to stop after the lease")
        assert time.monotonic() - cut_at >= lease * 0.9
        assert record(direct, exp_id).status == "running"  # the worker could not tell anyone
        proxy.resume()
        time.sleep(1.0)
        # Cut short so the test stays quick: once settled, stop the resumed run by cancelling it.
        wait_for(lambda: (run_dir / "train.log").read_text().count("=== ") == 2, timeout=60,
                 what="the worker to start the experiment again once the database is back")
        _cancel(direct, exp_id)
        out = finish(worker, timeout=120)
    finally:
        proxy.cut()
        if worker.poll() is None:
            worker.kill()
    assert "database unreachable" in out and "lease expired while the database was unreachable" in out
    assert "database reachable again" in out
    assert record(direct, exp_id).status == "cancelled"
    assert (run_dir / "checkpoints" / "latest.npz").is_file()
