"""Chaos run for the worker (on demand): kill -9 workers at random, drain the queue, count what went wrong.

    python benchmarks/chaos_workers.py                      # the run of issue 13 (below)
    python benchmarks/chaos_workers.py --code /work/main    # the same against another checkout's code
    python benchmarks/chaos_workers.py --kills 5 --experiments 4 --steps 100

Two ``ganlab worker --gpus none`` share one SQLite queue of 8 dcgan experiments
(300 steps each, 16x16 digits). Every 3-12 s one of them, picked at random, is
killed with SIGKILL sent to its whole process group, as a crashed host or an
out-of-memory kill would, and a new worker takes its place; after 20 kills the
survivors are killed too and a third worker drains the queue
(``--until-empty``). The children run in sessions of their own, so each kill
leaves them orphaned: they must notice and stop by themselves.

Meanwhile every process of the run is sampled from ``/proc`` four times a
second. Figures:

* trainers per run dir: live training processes whose output goes to the
  run's ``train.log`` (waiting for the run dir's lock included);
* writers per run dir: processes with one of the run's TensorBoard event
  files open, i.e. training it right now (must never exceed 1);
* orphans: training or pre-started processes seen alive after their worker
  was killed, and the longest such life after the kill;
* left alive: such processes still running when the drain worker is done;
* finished twice: run dirs whose ``train.log`` says "succeeded at step" more
  than once (the experiment was trained to the end by more than one process);
* statuses in the queue at the end, and the highest 1-minute load average.

Nothing but the standard library is imported here, so ``--code`` can point at
any checkout (its ``ganlab`` runs every process of the run).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The experiments of issue 13's run: dcgan on 16x16 digits, with evaluations and checkpoints to interrupt.
DCGAN = ("--arch", "dcgan", "--dataset", "digits", "--loss", "non-saturating", "--batch-size", "32",
         "--set", "size=16", "--set", "base_filters=16", "--set", "checkpoint_every=50", "--set", "eval_every=100",
         "--set", "eval_samples=500", "--set", "log_every=10")


@dataclass
class ChaosPlan:
    """What to run and how hard to hit it."""

    experiments: int = 8
    steps: int = 300
    workers: int = 2
    kills: int = 20
    interval_s: tuple[float, float] = (3.0, 12.0)
    lease_s: float = 10.0
    seed: int = 13
    queue_args: tuple[str, ...] = DCGAN
    plugins_dir: str | None = None
    code: str | None = None  # a checkout whose ganlab every process runs (default: whatever python finds)
    drain_timeout_s: float = 1800.0


@dataclass
class ChaosReport:
    """What happened (see the module docstring)."""

    kills: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    succeeded_lines: dict[str, int] = field(default_factory=dict)
    # Runs whose log ends without "succeeded at step" or "already complete at step": a succeeded row
    # whose log does not say how it ended (a resume that found every step done says the latter).
    unexplained_ends: int = 0
    max_trainers_per_run_dir: int = 0
    max_writers_per_run_dir: int = 0
    samples_with_two_writers: int = 0
    max_live_trainers: int = 0
    orphans: int = 0
    max_orphan_life_s: float = 0.0
    left_alive: int = 0
    finished_twice: int = 0
    max_load: float = 0.0
    samples: int = 0
    duration_s: float = 0.0

    def lines(self) -> list[str]:
        return [
            f"kills: {self.kills}; statuses at the end: {self.statuses}",
            (f"most live trainers at once: {self.max_live_trainers}; most on one run dir: "
             f"{self.max_trainers_per_run_dir} (writing it: {self.max_writers_per_run_dir}; samples with two "
             f"writers on one run dir: {self.samples_with_two_writers} of {self.samples})"),
            (f"orphans seen: {self.orphans}; longest life after its worker's death: {self.max_orphan_life_s:.1f} s; "
             f"still alive when the drain ended: {self.left_alive}"),
            (f"run dirs with more than one 'succeeded at step': {self.finished_twice}; succeeded rows whose "
             f"log does not say so: {self.unexplained_ends}; "
             f"highest load average: {self.max_load:.1f}; {self.duration_s:.0f} s in all"),
        ]


@dataclass
class _Proc:
    pid: int
    ppid: int
    kind: str  # "worker", "trainer" or "standby"
    run_dir: str | None
    writes: set[str]


class _Observer(threading.Thread):
    """Samples the run's processes (found by a mark in their environment) until stopped."""

    def __init__(self, mark: bytes, report: ChaosReport) -> None:
        super().__init__(daemon=True)
        self.mark = mark
        self.report = report
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.parent: dict[int, int] = {}  # training/standby pid -> the worker it was first seen under
        self.killed_at: dict[int, float] = {}  # worker pid -> when it was killed
        self.orphan_seen: dict[int, tuple[float, float]] = {}  # pid -> (death of its worker, last seen alive)

    def run(self) -> None:
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(0.25)

    def sample(self) -> list[_Proc]:
        procs = scan(self.mark)
        now = time.monotonic()
        workers = {p.pid for p in procs if p.kind == "worker"}
        per_dir: dict[str, int] = defaultdict(int)
        writers: dict[str, int] = defaultdict(int)
        with self.lock:
            r = self.report
            r.samples += 1
            r.max_load = max(r.max_load, os.getloadavg()[0])
            live = [p for p in procs if p.kind != "worker"]
            r.max_live_trainers = max(r.max_live_trainers, sum(p.kind == "trainer" for p in live))
            for p in live:
                if p.run_dir:
                    per_dir[p.run_dir] += 1
                for d in p.writes:
                    writers[d] += 1
                self.parent.setdefault(p.pid, p.ppid)
                if p.ppid not in workers:  # its worker is gone
                    died = self.killed_at.get(self.parent[p.pid], now)
                    first = self.orphan_seen.get(p.pid, (died, now))[0]
                    self.orphan_seen[p.pid] = (first, now)
            r.max_trainers_per_run_dir = max([r.max_trainers_per_run_dir, *per_dir.values()])
            r.max_writers_per_run_dir = max([r.max_writers_per_run_dir, *writers.values()])
            r.samples_with_two_writers += any(n > 1 for n in writers.values())
            r.orphans = len(self.orphan_seen)
            r.max_orphan_life_s = max([0.0, *(last - died for died, last in self.orphan_seen.values())])
        return procs


def scan(mark: bytes) -> list[_Proc]:
    """The live (not zombie) processes carrying ``mark``, classified."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if mark not in (entry / "environ").read_bytes():
                continue
            stat = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
            if stat[0] in (b"Z", b"X"):
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            out = os.readlink(entry / "fd" / "1")
            writes = set()
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if os.path.basename(target).startswith("events.out.tfevents"):
                    writes.add(os.path.dirname(target))
        except OSError:
            continue  # it ended while being read
        if b"worker" in argv and b"ganlab" in argv:
            kind = "worker"
        elif b"ganlab.worker.standby" in argv and not out.endswith("train.log"):
            kind = "standby"  # pre-started, not handed an experiment
        elif b"ganlab.worker.child_main" in argv or b"ganlab.worker.standby" in argv or b"train" in argv:
            kind = "trainer"
        else:
            continue
        run_dir = os.path.dirname(out) if out.endswith("train.log") else None
        found.append(_Proc(int(entry.name), int(stat[1]), kind, run_dir, writes))
    return found


def _env(plan: ChaosPlan, mark: str) -> dict[str, str]:
    env = {**os.environ, "GANLAB_CHAOS_MARK": mark, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if plan.code:
        env["PYTHONPATH"] = plan.code
    return env


def _ganlab(plan: ChaosPlan) -> list[str]:
    return [sys.executable, "-m", "ganlab", *(["--plugins-dir", plan.plugins_dir] if plan.plugins_dir else [])]


def _open(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)


def _unfinished(db: Path) -> int:
    with _open(db) as conn:
        return conn.execute("SELECT count(*) FROM experiments WHERE status IN ('queued', 'running')").fetchone()[0]


def run_chaos(plan: ChaosPlan, work: Path, say=print) -> ChaosReport:  # type: ignore[no-untyped-def]
    """Run ``plan`` in the folder ``work`` and report; every process it started is gone when it returns."""
    rng = random.Random(plan.seed)
    mark = f"chaos-{uuid.uuid4().hex}"
    env = _env(plan, mark)
    db = work / "q.db"
    url = f"sqlite:///{db}"
    runs = work / "runs"
    started = time.monotonic()
    subprocess.run([*_ganlab(plan), "queue", "--db", url, "add", "-q", *plan.queue_args, "--steps", str(plan.steps),
                    "--seeds", ",".join(str(i) for i in range(plan.experiments))],
                   check=True, env=env, cwd=work, stdout=subprocess.DEVNULL)
    report = ChaosReport()
    observer = _Observer(mark.encode(), report)
    observer.start()
    logs: list[Path] = []

    def worker(*extra: str) -> subprocess.Popen[bytes]:
        log = work / f"worker-{len(logs)}.log"
        logs.append(log)
        with open(log, "wb") as out:
            return subprocess.Popen(
                [*_ganlab(plan), "worker", "--db", url, "--runs-dir", str(runs), "--gpus", "none", "--poll", "0.5",
                 "--lease", f"{plan.lease_s:g}", "--max-attempts", "1000", *extra],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work, start_new_session=True)

    def kill(proc: subprocess.Popen[bytes]) -> None:
        with observer.lock:
            observer.killed_at[proc.pid] = time.monotonic()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the worker's whole process group, as in issue 13
        except ProcessLookupError:
            pass
        proc.wait()
        report.kills += 1

    try:
        workers = [worker() for _ in range(plan.workers)]
        for n in range(plan.kills):
            time.sleep(rng.uniform(*plan.interval_s))
            if not _unfinished(db):
                say(f"the queue is done after {n} kills")
                break
            victim = rng.randrange(len(workers))
            kill(workers[victim])
            workers[victim] = worker() if n < plan.kills - 1 else workers[victim]
            say(f"kill {report.kills}: {_unfinished(db)} experiment(s) unfinished")
        for proc in workers:
            if proc.poll() is None:
                kill(proc)
        drain = worker("--until-empty")
        drain.wait(timeout=plan.drain_timeout_s)
        say(f"drained (worker exit code {drain.returncode})")
        observer.halt.set()
        observer.join()
        left = [p for p in observer.sample() if p.kind != "worker"]
        report.left_alive = len(left)
    finally:
        observer.halt.set()
        for p in scan(mark.encode()):  # what outlived the run: end it, by pid
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    with _open(db) as conn:
        rows = conn.execute("SELECT status, run_dir FROM experiments").fetchall()
    for status, run_dir in rows:
        report.statuses[status] = report.statuses.get(status, 0) + 1
        try:
            text = (Path(run_dir) / "train.log").read_text(errors="replace") if run_dir else ""
        except OSError:
            text = ""
        report.succeeded_lines[str(run_dir)] = len(re.findall(r"^succeeded at step", text, re.M))
        if status == "succeeded" and not re.search(r"^(succeeded|already complete) at step", text, re.M):
            report.unexplained_ends += 1
    report.finished_twice = sum(n > 1 for n in report.succeeded_lines.values())
    report.duration_s = time.monotonic() - started
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", help="checkout whose ganlab to run (default: the one python finds)")
    parser.add_argument("--experiments", type=int, default=ChaosPlan.experiments)
    parser.add_argument("--steps", type=int, default=ChaosPlan.steps)
    parser.add_argument("--kills", type=int, default=ChaosPlan.kills)
    parser.add_argument("--lease", type=float, default=ChaosPlan.lease_s)
    parser.add_argument("--seed", type=int, default=ChaosPlan.seed)
    parser.add_argument("--json", dest="json_path", help="also write the figures to this file")
    parser.add_argument("--keep", help="run in this (new) folder and keep it, logs and runs included")
    args = parser.parse_args()
    plan = ChaosPlan(experiments=args.experiments, steps=args.steps, kills=args.kills, lease_s=args.lease,
                     seed=args.seed, code=str(Path(args.code).resolve()) if args.code else None)
    if args.keep:
        Path(args.keep).mkdir(parents=True)
        report = run_chaos(plan, Path(args.keep).resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="ganlab-chaos-") as tmp:
            report = run_chaos(plan, Path(tmp))
    for line in report.lines():
        print(line)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"plan": asdict(plan), "report": asdict(report)}, indent=2))


if __name__ == "__main__":
    main()
