"""Many-worker benchmark (run on demand): 200 and 1,000 simulated workers on one PostgreSQL queue.

    python benchmarks/bench_many_workers.py              # needs PostgreSQL at 127.0.0.1:5432
    python benchmarks/bench_many_workers.py --no-write   # print only
    python benchmarks/bench_many_workers.py --seconds 30 --beat 1 --processes 4

Each simulated worker is a thread doing what ``ganlab worker`` does to the
database: claim, renew the lease with progress every ``--beat`` seconds,
write its own heartbeat as often, finish after ``--work`` seconds of
pretend training, claim again. The threads run in a few processes, each
with one pooled engine (``--pool`` connections), the way PgBouncer or a
pool would share connections between many workers. Beats and work are
compressed in time (a real worker renews every ``lease/3`` = 20 s), so each
figure also says how many real workers the same write rate stands for.

Also measured: how many direct connections the server accepts (its
``max_connections`` less the reserved ones), the wall a worker-per-connection
setup hits first; and the heartbeat writes per second the server sustains
when nothing else limits it, which bounds workers / (lease/3).
Figures go into the "Many workers" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from perfdoc import machine_description, replace_section  # noqa: E402

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
REAL_BEAT_S = 20.0  # ganlab worker's default: a 60 s lease, renewed every third of it


def _queue(url: str, pool: int):  # type: ignore[no-untyped-def]
    """A Queue on an engine with ``pool`` connections and no overflow: threads wait for a free one."""
    from sqlalchemy import create_engine

    from ganlab.store import Queue
    from ganlab.store.database import json_dumps

    engine = create_engine(url, pool_size=pool, max_overflow=0, pool_timeout=120, json_serializer=json_dumps,
                           connect_args={"options": "-c timezone=UTC", "connect_timeout": 10})
    return Queue(engine, url)


def _worker(queue: Any, wid: str, stop_at: float, beat_s: float, work_s: float, out: dict[str, list[float]]) -> None:
    rng = random.Random(wid)
    queue.register_worker(wid, host="sim", pid=1)
    next_beat = time.monotonic() + rng.uniform(0, beat_s)  # workers do not start in lockstep
    while time.monotonic() < stop_at:
        t0 = time.perf_counter()
        claim = queue.claim(wid, host="sim", pid=1, lease_s=60)
        out["claim"].append(time.perf_counter() - t0)
        if claim is None:
            time.sleep(beat_s)
            continue
        done_at = time.monotonic() + work_s * rng.uniform(0.5, 1.5)
        step = 0
        while time.monotonic() < min(done_at, stop_at):
            time.sleep(max(0.0, min(next_beat, done_at) - time.monotonic()))
            if time.monotonic() >= next_beat:
                next_beat += beat_s
                step += 10
                t0 = time.perf_counter()
                queue.renew(claim.id, claim.token, step=step, losses={"d": 0.7, "g": 1.1}, lease_s=60)
                queue.worker_heartbeat(wid)
                out["beat"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        if time.monotonic() >= stop_at:
            queue.release(claim.id, claim.token)
        else:
            queue.finish(claim.id, claim.token, "succeeded", metrics={"fd": 1.0}, step=step)
            out["finish"].append(time.perf_counter() - t0)


def _process(url: str, threads: int, pool: int, seconds: float, beat_s: float, work_s: float, tag: str,
             results: Any) -> None:
    queue = _queue(url, pool)
    out: dict[str, list[float]] = {"claim": [], "beat": [], "finish": []}
    stop_at = time.monotonic() + seconds
    workers = [threading.Thread(target=_worker, args=(queue, f"{tag}-{i}", stop_at, beat_s, work_s, out))
               for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.close()
    results.put(out)


def _fill(url: str, rows: int) -> None:
    from bench_queue import _sweep_options

    from ganlab.config import Resolver
    from ganlab.registry import load_plugins
    from ganlab.store import NewExperiment, Queue
    from ganlab.sweep import expand

    registry = load_plugins(None)
    with Queue.open(url, create=True) as queue:
        for offset in range(0, rows, 10_000):
            options, seeds = _sweep_options(offset)
            planned = expand(Resolver(registry), [options.grid(lists=True, seeds=seeds)])
            queue.enqueue([NewExperiment(p.config, p.name, p.priority, p.tags) for p in planned][: rows - offset])


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def simulate(workers: int, *, processes: int, pool: int, seconds: float, beat_s: float, work_s: float) -> dict[str, float]:
    import psycopg

    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    name = f"ganlab_bench_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_URL.format(name=name)
    try:
        _fill(url, max(2000, int(workers * seconds / work_s * 1.5)))
        ctx = mp.get_context("spawn")
        results = ctx.Queue()
        share = [workers // processes + (i < workers % processes) for i in range(processes)]
        procs = [ctx.Process(target=_process, args=(url, n, pool, seconds, beat_s, work_s, f"p{i}", results))
                 for i, n in enumerate(share)]
        t0 = time.perf_counter()
        for p in procs:
            p.start()
        merged: dict[str, list[float]] = {"claim": [], "beat": [], "finish": []}
        for _ in procs:
            for key, values in results.get(timeout=seconds + 300).items():
                merged[key] += values
        for p in procs:
            p.join()
        wall = time.perf_counter() - t0
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    claims = merged["claim"]
    return {
        "workers": workers, "processes": processes, "connections": processes * pool, "seconds": wall,
        "claims_per_s": len(merged["finish"]) / seconds, "claim_calls_per_s": len(claims) / seconds,
        "claim_p50_ms": _p(claims, 0.50), "claim_p99_ms": _p(claims, 0.99),
        "beat_writes_per_s": 2 * len(merged["beat"]) / seconds,
        "beat_demand_per_s": 2 * workers / beat_s if beat_s >= 0.01 else float("nan"), "beat_p99_ms": _p(merged["beat"], 0.99),
        "finish_p99_ms": _p(merged["finish"], 0.99), "real_workers": workers * REAL_BEAT_S / beat_s,
    }


def connection_limit() -> tuple[int, int, int]:
    """(max_connections, reserved for superusers, direct connections actually accepted before a refusal)."""
    import psycopg

    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    limit = int(admin.execute("SHOW max_connections").fetchone()[0])
    reserved = int(admin.execute("SHOW superuser_reserved_connections").fetchone()[0])
    in_use = int(admin.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
                 .fetchone()[0])
    admin.close()
    return limit, reserved, in_use


def beat_capacity(seconds: float, pool: int, processes: int) -> dict[str, float]:
    """Heartbeat writes/s with no pause between them: the ceiling the server puts on workers / beat interval."""
    result = simulate(pool * processes, processes=processes, pool=pool, seconds=seconds, beat_s=0.0005,
                      work_s=seconds * 10)
    return result


def write_doc(rows: list[dict[str, float]], cap: dict[str, float], limits: tuple[int, int, int], machine: str,
              args: argparse.Namespace) -> Path:
    def verdict(r: dict[str, float]) -> str:
        return "keeps up" if r["beat_writes_per_s"] >= 0.9 * r["beat_demand_per_s"] else "**saturated**"

    table = "\n".join(
        f"| {r['workers']:,} | {r['connections']} | {r['claims_per_s']:.0f} | {r['claim_p50_ms']:.1f} ms | "
        f"{r['claim_p99_ms']:.1f} ms | {r['beat_demand_per_s']:.0f} | {r['beat_writes_per_s']:.0f} | "
        f"{r['beat_p99_ms']:.1f} ms | {r['real_workers']:,.0f} | {verdict(r)} |" for r in rows)
    limit, reserved, in_use = limits
    ceiling = cap["beat_writes_per_s"]
    section = f"""## Many workers

Measured by `python benchmarks/bench_many_workers.py` on {machine}; PostgreSQL on the same machine.
Each simulated worker claims, renews its lease every {args.beat:g} s (a progress write and a worker
heartbeat: 2 writes), "trains" {args.work:g} s on average, finishes and claims again; {args.processes}
processes share the workers as threads, each process with a pool of {args.pool} connections; {args.seconds:g} s
per row.

| workers | connections | finished/s | claim p50 | claim p99 | heartbeat writes asked/s | done/s | heartbeat p99 | real workers at 20 s beats | |
|---|---|---|---|---|---|---|---|---|---|
{table}

Claim latency includes the wait for one of the pool's connections. A row "keeps up" when the heartbeat
writes done reach 90 % of those asked for; once they do not, every call queues and latencies reach
seconds: that is where the server (or the pool in front of it) is the bottleneck. Here the simulator's
threads share the server's cores, so a saturated row also measures the client's side; the ceiling
below is the server's alone. Advice: beats per second (2 x workers / beat interval) well under the
ceiling, e.g. a 60 s lease (20 s beats) up to a few thousand workers, `--lease 180` beyond.

With no pause between beats, {cap['connections']:.0f} connections sustain **{ceiling:.0f} heartbeat
writes/s** (p99 {cap['beat_p99_ms']:.1f} ms). At 2 writes per worker per beat, that is the ceiling for
workers / beat interval: about {ceiling / 2 * REAL_BEAT_S:,.0f} workers at the default 20 s beat (60 s
lease), on this machine, before the heartbeats alone saturate the server.

The wall met first is connections: the server allows `max_connections` = {limit} ({reserved} reserved for
superusers, {in_use} in use when measured). Every `ganlab worker` keeps its own connection (and each
running experiment's renewals go through it), so beyond ~{limit - reserved - in_use} workers on one server,
put PgBouncer (transaction pooling) between workers and PostgreSQL, or raise `max_connections`.

"""
    return replace_section("Many workers", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="do not update docs/performance.md")
    parser.add_argument("--workers", default="200,1000", help="simulated worker counts (comma-separated)")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--pool", type=int, default=8, help="connections per process")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run")
    parser.add_argument("--beat", type=float, default=2.0, help="seconds between a worker's heartbeats")
    parser.add_argument("--work", type=float, default=4.0, help="mean seconds of pretend training per claim")
    args = parser.parse_args()
    machine = machine_description()
    limits = connection_limit()
    rows = []
    for n in (int(v) for v in args.workers.split(",")):
        r = simulate(n, processes=args.processes, pool=args.pool, seconds=args.seconds, beat_s=args.beat,
                     work_s=args.work)
        rows.append(r)
        print(f"{n:6d} workers  {r['claims_per_s']:7.1f} finished/s  claim p50 {r['claim_p50_ms']:6.1f} ms  "
              f"p99 {r['claim_p99_ms']:7.1f} ms  heartbeat writes {r['beat_writes_per_s']:7.1f}/s  "
              f"p99 {r['beat_p99_ms']:7.1f} ms  (= {r['real_workers']:,.0f} real workers at 20 s beats)", flush=True)
    cap = beat_capacity(min(args.seconds, 10.0), args.pool, args.processes)
    print(f"heartbeat ceiling: {cap['beat_writes_per_s']:.0f} writes/s over {cap['connections']:.0f} connections "
          f"(p99 {cap['beat_p99_ms']:.1f} ms)")
    print(f"max_connections {limits[0]}, reserved {limits[1]}, in use {limits[2]}")
    if not args.no_write:
        print(f"wrote {write_doc(rows, cap, limits, machine, args).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
