"""Queue benchmark (run on demand, not a test): enqueue a 10,000-experiment sweep, list 100,000 rows,
and measure claim latency with 8 concurrent claiming processes.

    python benchmarks/bench_queue.py            # prints the figures and updates docs/performance.md
    python benchmarks/bench_queue.py --no-write # prints only

Goals: enqueue 10k < 0.5 s, list 100k < 1 s, claim p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from perfdoc import machine_description, replace_section  # noqa: E402

CLAIMERS = 8
CLAIM_ROWS = 4000
PACED_ROWS = 1600
PACED_WORK_MS = 20.0
LIST_ROWS = 100_000
SWEEP = ("--arch", "dcgan", "--dataset", "digits", "--loss", "hinge")


def _sweep_options(offset: int = 0):  # type: ignore[no-untyped-def]
    """The options of `ganlab queue add --set lr_g=<100 values> --seeds <100 seeds>`: 10,000 experiments."""
    from ganlab.cli.experiment_options import ExperimentOptions

    lrs = ",".join(f"{(i + 1) * 1e-5:.6g}" for i in range(100))
    return ExperimentOptions(arch="dcgan", dataset="digits", loss="hinge", sets=(f"lr_g={lrs}",)), tuple(
        range(offset, offset + 100))


def bench_enqueue(tmp: Path, repeats: int = 3) -> dict[str, float]:
    """Expand + validate 10,000 configs as `queue add` does, then insert them in one transaction."""
    from ganlab.config import Resolver
    from ganlab.registry import load_plugins
    from ganlab.store import NewExperiment, Store
    from ganlab.sweep import expand

    registry = load_plugins(None)
    runs = []
    for r in range(repeats):
        options, seeds = _sweep_options()
        db = tmp / f"enqueue{r}.db"
        Store.open(str(db), create=True).close()
        t0 = time.perf_counter()
        planned = expand(Resolver(registry), [options.grid(lists=True, seeds=seeds)])
        t1 = time.perf_counter()
        with Store.open(str(db)) as store:
            result = store.enqueue([NewExperiment(p.config, p.name, p.priority, p.tags) for p in planned])
        t2 = time.perf_counter()
        assert len(result.queued) == 10_000, len(result.queued)
        runs.append((t1 - t0, t2 - t1, t2 - t0))
    best = min(runs, key=lambda x: x[2])
    return {"expand_validate_s": best[0], "insert_s": best[1], "total_s": best[2]}


def bench_list(tmp: Path) -> dict[str, float]:
    """Fill a database with 100,000 experiments, then list them (store call, and the CLI's JSON)."""
    from click.testing import CliRunner

    from ganlab.cli import cli
    from ganlab.config import Resolver
    from ganlab.registry import load_plugins
    from ganlab.store import NewExperiment, Store
    from ganlab.sweep import expand

    registry = load_plugins(None)
    db = tmp / "list.db"
    with Store.open(str(db), create=True) as store:
        for block in range(LIST_ROWS // 10_000):
            options, seeds = _sweep_options(offset=block * 100)
            planned = expand(Resolver(registry), [options.grid(lists=True, seeds=seeds, tags=("bench",))])
            store.enqueue([NewExperiment(p.config, p.name, p.priority, p.tags) for p in planned])
    with Store.open(str(db)) as store:
        t0 = time.perf_counter()
        rows = store.list_experiments()
        store_s = time.perf_counter() - t0
        assert len(rows) == LIST_ROWS
    runner = CliRunner()
    t0 = time.perf_counter()
    result = runner.invoke(cli, ["queue", "--db", str(db), "list", "--limit", "0", "--json"])
    json_s = time.perf_counter() - t0
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == LIST_ROWS
    t0 = time.perf_counter()
    result = runner.invoke(cli, ["queue", "--db", str(db), "list"])
    table_s = time.perf_counter() - t0
    assert result.exit_code == 0
    return {"store_list_100k_s": store_s, "cli_list_json_100k_s": json_s, "cli_list_newest50_s": table_s}


def _claimer(url: str, start: str, out: str, work_ms: str) -> None:
    import random

    from ganlab.store import Queue

    pause = float(work_ms) / 1000
    latencies: list[float] = []
    with Queue.open(url) as q:
        q.claim("warm-up", tags=["none-such"])  # connect before the clock starts
        while not os.path.exists(start):
            time.sleep(0.001)
        while True:
            t0 = time.perf_counter()
            claim = q.claim(f"w{os.getpid()}")
            latencies.append(time.perf_counter() - t0)
            if claim is None:
                break
            if pause:
                time.sleep(random.uniform(0, 2 * pause))  # "training"
            q.finish(claim.id, claim.token, "succeeded")
    Path(out).write_text(json.dumps(latencies))


def bench_claims(tmp: Path, work_ms: float = 0.0, rows: int = CLAIM_ROWS, url: str | None = None) -> dict[str, float]:
    """8 processes claim ``rows`` experiments and finish each after ``work_ms`` on average.

    ``work_ms=0`` is the worst case: every process is always waiting for the write lock.
    ``url``: an empty database to use instead of a new SQLite file (e.g. PostgreSQL).
    """
    from ganlab.config import ExperimentConfig
    from ganlab.store import NewExperiment, Store

    url = url or f"sqlite:///{tmp / f'claims{work_ms:g}.db'}"
    with Store.open(url, create=True) as store:
        store.enqueue([NewExperiment(ExperimentConfig("a", "d", "l", train={"seed": i}), f"e{i}") for i in range(rows)])
    start = tmp / f"go{work_ms:g}"
    outs = [tmp / f"lat{work_ms:g}-{i}.json" for i in range(CLAIMERS)]
    procs = [subprocess.Popen([sys.executable, __file__, "--claimer", url, str(start), str(o), str(work_ms)]) for o in outs]
    time.sleep(3.0)  # let every process import and connect
    t0 = time.perf_counter()
    start.write_text("go")
    for p in procs:
        assert p.wait(timeout=600) == 0
    wall = time.perf_counter() - t0
    lat = sorted(x for o in outs for x in json.loads(o.read_text()))
    q = statistics.quantiles(lat, n=100)
    return {"claims": len(lat) - CLAIMERS, "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "max_ms": lat[-1] * 1000,
            "claims_per_s": (len(lat) - CLAIMERS) / wall}


def write_doc(figures: dict[str, dict[str, float]]) -> Path:
    """Replace the "## Queue" section of docs/performance.md (other sections are left alone)."""
    e, li, c, p = figures["enqueue"], figures["list"], figures["claims"], figures["paced"]
    section = f"""## Queue

Measured by `python benchmarks/bench_queue.py` on {figures['machine']}, SQLite (WAL) on local disk.

| what | figure | goal |
|---|---|---|
| enqueue a 10,000-experiment sweep: expand + validate | {e['expand_validate_s']:.2f} s | |
| enqueue a 10,000-experiment sweep: insert (one transaction) | {e['insert_s']:.2f} s | |
| enqueue a 10,000-experiment sweep: total | {e['total_s']:.2f} s | < 0.5 s |
| list 100,000 rows (store call) | {li['store_list_100k_s']:.2f} s | < 1 s |
| `ganlab queue list --limit 0 --json`, 100,000 rows (in-process) | {li['cli_list_json_100k_s']:.2f} s | |
| `ganlab queue list` (newest 50) on 100,000 rows (in-process) | {li['cli_list_newest50_s'] * 1000:.0f} ms | |
| claim latency, 8 processes, saturated: p50 | {c['p50_ms']:.1f} ms | |
| claim latency, 8 processes, saturated: p99 | {c['p99_ms']:.1f} ms | < 20 ms |
| claim latency, 8 processes, saturated: max | {c['max_ms']:.1f} ms | |
| claims + finishes per second, 8 processes, saturated | {c['claims_per_s']:.0f} | |
| claim latency, 8 processes, ~{PACED_WORK_MS:g} ms work per claim: p50 | {p['p50_ms']:.1f} ms | |
| claim latency, 8 processes, ~{PACED_WORK_MS:g} ms work per claim: p99 | {p['p99_ms']:.1f} ms | < 20 ms |

The sweep is `ganlab queue add --arch dcgan --dataset digits --loss hinge --set lr_g=<100 values> --seeds <100 seeds>`
with the built-in plugins. In the saturated claim test each process claims and immediately finishes
experiments until {CLAIM_ROWS:,} are done, so all eight always queue for SQLite's single write lock and
latency is mostly waiting behind the other seven (a closed loop: 8 / throughput). In the paced test each
process "trains" for a random 0-{2 * PACED_WORK_MS:g} ms between claim and finish ({PACED_ROWS:,} experiments),
closer to real workers, whose runs last minutes. Latencies include an idle poll's read-only probe.

Where the time goes: of the enqueue, about a quarter is hashing (one canonical JSON per config, reused
as the stored column), a fifth the single `executemany` and the commit, and the rest expanding the
sweep (`Resolver` caches per plugin triple, section values, dataset probe and shape check, so each
point costs a dict merge and one coercion per varying value); the cyclic garbage collector is paused
for both. In the saturated test eight processes share two cores: a process that has just released
the write lock is still running and would usually take it again before a woken waiter is scheduled,
so some claims waited behind many others (p99 about 24 ms). Yielding the CPU right after each
release hands the lock to a waiter first: p99 fell to 12-15 ms over four runs, for about 10 % less
throughput. A single uncontended claim takes about 1 ms.

"""
    return replace_section("Queue\n", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="do not update docs/performance.md")
    parser.add_argument("--claimer", nargs=4, metavar=("URL", "START", "OUT", "WORK_MS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.claimer:
        _claimer(*args.claimer)
        return
    machine = machine_description()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        with redirect_stdout(io.StringIO()):  # keep plugin chatter out of the report
            enqueue = bench_enqueue(tmp)
        print(f"enqueue 10k: expand+validate {enqueue['expand_validate_s']:.3f} s, insert {enqueue['insert_s']:.3f} s, "
              f"total {enqueue['total_s']:.3f} s (goal < 0.5 s)")
        listing = bench_list(tmp)
        print(f"list 100k: store {listing['store_list_100k_s']:.3f} s (goal < 1 s), CLI --json "
              f"{listing['cli_list_json_100k_s']:.3f} s, CLI newest 50 {listing['cli_list_newest50_s'] * 1000:.0f} ms")
        claims = bench_claims(tmp)
        paced = bench_claims(tmp, work_ms=PACED_WORK_MS, rows=PACED_ROWS)
        for label, c in (("saturated", claims), (f"paced, ~{PACED_WORK_MS:g} ms work per claim", paced)):
            print(f"claims, {CLAIMERS} processes, {label} ({c['claims']:.0f} claims): p50 {c['p50_ms']:.1f} ms, "
                  f"p99 {c['p99_ms']:.1f} ms (goal < 20 ms), max {c['max_ms']:.1f} ms, {c['claims_per_s']:.0f} claims/s")
    if not args.no_write:
        path = write_doc({"enqueue": enqueue, "list": listing, "claims": claims, "paced": paced, "machine": machine})
        print(f"wrote the Queue section of {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
