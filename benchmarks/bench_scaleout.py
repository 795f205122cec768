"""Scale-out benchmark (run on demand): claims per second and claim latency with 8 concurrent
claiming processes, PostgreSQL vs SQLite, in the same run.

    python benchmarks/bench_scaleout.py                 # needs PostgreSQL at 127.0.0.1:5432
    python benchmarks/bench_scaleout.py --no-write      # print only

Creates and drops its own PostgreSQL database. Figures go into the "Scale-out"
section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_queue import CLAIMERS, PACED_ROWS, PACED_WORK_MS, bench_claims  # noqa: E402
from perfdoc import machine_description, replace_section  # noqa: E402

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
ROWS = 2000


def postgres_db() -> tuple[str, object]:
    import psycopg

    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    name = f"ganlab_bench_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    return name, admin


def run(tmp: Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for label, work in (("saturated", 0.0), ("paced", PACED_WORK_MS)):
        rows = ROWS if work == 0 else PACED_ROWS
        # Alternate the two databases so drift on a shared machine hits both alike.
        out[f"sqlite-{label}"] = bench_claims(tmp, work_ms=work, rows=rows)
        name, admin = postgres_db()
        try:
            out[f"postgresql-{label}"] = bench_claims(
                tmp, work_ms=work, rows=rows, url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
    return out


def write_doc(figures: dict[str, dict[str, float]], machine: str) -> Path:
    rows = "\n".join(
        f"| {db} | {label} | {f['claims_per_s']:.0f} | {f['p50_ms']:.1f} ms | {f['p99_ms']:.1f} ms | {f['max_ms']:.1f} ms |"
        for key, f in figures.items() for db, label in [key.split("-", 1)]
    )
    section = f"""## Scale-out: PostgreSQL vs SQLite

Measured by `python benchmarks/bench_scaleout.py` on {machine}; PostgreSQL 15 on the same machine
(127.0.0.1), SQLite (WAL) on local disk; {CLAIMERS} claiming processes, both databases in the same run.

| database | load | claims/s | p50 | p99 | max |
|---|---|---|---|---|---|
{rows}

"Saturated": each process claims and immediately finishes until {ROWS:,} are done. "Paced": each process
works ~{PACED_WORK_MS:g} ms per experiment ({PACED_ROWS:,} experiments). On PostgreSQL a claim is one
`UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1)`, so claimers never wait for each other's
rows; SQLite serialises every write behind one lock.

"""
    return replace_section("Scale-out", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="do not update docs/performance.md")
    args = parser.parse_args()
    machine = machine_description()
    with tempfile.TemporaryDirectory() as tmp:
        figures = run(Path(tmp))
    for key, f in figures.items():
        print(f"{key:24s} {f['claims_per_s']:7.0f} claims/s  p50 {f['p50_ms']:6.1f} ms  p99 {f['p99_ms']:6.1f} ms  "
              f"max {f['max_ms']:6.1f} ms")
    if not args.no_write:
        print(f"wrote {write_doc(figures, machine).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
