"""A stand-in worker for the orphan tests: the worker's real spawn code, stopped at a chosen moment.

    python worker_harness.py --db URL --runs DIR --plugins DIR --stage STAGE [--step N]

It claims the queue's next experiment and starts its child exactly as
``ganlab worker`` does (``ganlab.worker.child.spawn``, optionally through a
pre-started process), waits until the child has reached ``STAGE``, prints one
JSON line ``{"pid": ..., "run_dir": ...}`` and keeps reading the child's
reports until the test kills it:

* ``import``: at once (the child is still importing);
* ``build``: once the child's log says the slow-build plugin is building;
* ``train``: once the child reported its first checkpoint;
* ``eval``: once the child reported step N (it now samples, evaluates and
  checkpoints that step);
* ``standby``: a pre-started process only, no experiment, still warming up;
* ``handed``: the experiment handed at once to a pre-started process that is
  still warming up.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time
from pathlib import Path

from ganlab.store.queue import Queue
from ganlab.worker.child import Child, child_env, spawn
from ganlab.worker.standby import start_standby

STAGES = ("import", "build", "train", "eval", "standby", "handed")
BUILDING = "slow-build: building the generator"


def _say(**data: object) -> None:
    print(json.dumps(data), flush=True)


def _until(child: Child, reached) -> None:  # type: ignore[no-untyped-def]
    events: list[dict[str, object]] = []
    while not reached(events):
        if child.finished() is not None:
            raise SystemExit(f"the child ended before the stage: {child.log_path.read_text()[-2000:]}")
        events += child.reader.read()
        time.sleep(0.02)


def _serve(child: Child) -> None:
    while True:  # keep draining the reports, as a worker would, until killed
        child.reader.read()
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--runs", required=True)
    parser.add_argument("--plugins", required=True)
    parser.add_argument("--stage", choices=STAGES, required=True)
    parser.add_argument("--step", type=int, default=0)
    args = parser.parse_args()
    env = child_env(None, "tensorflow")
    if args.stage == "standby":
        standby = start_standby(None, "tensorflow", env)
        _say(pid=standby.process.pid)
        while True:
            time.sleep(1)
    with Queue.open(args.db) as queue:
        claim = queue.claim("harness", host=socket.gethostname(), pid=os.getpid(), lease_s=3600)
        assert claim is not None, "nothing queued"
        run_dir = (Path(args.runs) / f"{claim.id:04d}").resolve()
        queue.set_run_dir(claim.id, claim.token, str(run_dir))
    standby = start_standby(None, "tensorflow", env) if args.stage == "handed" else None
    child = spawn(claim, None, run_dir, worker_id="harness", plugins_dir=args.plugins, standby=standby)
    if args.stage == "build":
        _until(child, lambda _: BUILDING in child.log_path.read_text())
    elif args.stage == "train":
        _until(child, lambda events: any(e.get("event") == "checkpoint" for e in events))
    elif args.stage == "eval":
        _until(child, lambda events: any(e.get("event") == "progress" and e.get("step") == args.step
                                         for e in events))
    _say(pid=child.process.pid, run_dir=str(run_dir))
    _serve(child)


if __name__ == "__main__":
    main()
