"""A real single-node SLURM cluster for the tests: munged, slurmctld and slurmd in a temporary folder.

Debian's ``slurm-wlm`` and ``munge`` packages provide the daemons. The
cluster has one node with this machine's CPUs, no cgroups (processes are
tracked through /proc), and its own ports, munge socket and state folder, so
it leaves the machine's own configuration alone. Clients find it through
``SLURM_CONF``, which :func:`slurm_cluster` sets for the test session.

When it cannot start (packages missing, not root, a daemon that dies), the
tests that need it are skipped with a message in capitals, as the
PostgreSQL tests are.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")


@dataclass
class Cluster:
    """A started cluster: ``env`` is what a client (sbatch, ganlab slurm) needs to reach it."""

    folder: Path
    conf: Path
    node: str
    cpus: int
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=30, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
        return done

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else f"(no {name}.log)"

    def cancel_all(self) -> None:
        """End every job on the cluster (all are this session's) and wait until none is left."""
        self.run("scancel", "--user", str(os.getuid()), check=False)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.run("squeue", "-h", "-o", "%i", check=False).stdout.strip():
            time.sleep(0.3)

    def stop(self) -> None:
        if self.processes and all(p.poll() is None for p in self.processes):
            self.cancel_all()  # else slurmstepd and the jobs' processes would outlive slurmd
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _conf(folder: Path, node: str, cpus: int, memory_mb: int, munge_socket: Path) -> str:
    ctld, slurmd = _free_port(), _free_port()
    # KillWait and OverTimeLimit at their smallest: a job past its time limit is ended within seconds.
    # cred_expire is also how long a requeued job waits before it may start again (120 s by default; 5 s here).
    # MinJobAge keeps finished jobs visible to squeue/scontrol long enough for the tests to read them.
    return f"""\
ClusterName=ganlabtest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld}
SlurmdPort={slurmd}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket},cred_expire=5
SlurmUser=root
SlurmdUser=root
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=2
OverTimeLimit=0
MinJobAge=600
InactiveLimit=0
MessageTimeout=10
JobRequeue=1
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def start_cluster(folder: Path) -> Cluster:
    """Start munged, slurmctld and slurmd; raises RuntimeError saying why when they do not come up."""
    missing = [d for d in DAEMONS if _which(d) is None]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        raise RuntimeError("slurmd must run as root here (it starts jobs as their user)")
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool", "munge"):
        (folder / sub).mkdir(exist_ok=True)
    node = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    memory_mb = max(256, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 // 2)
    munge_dir = folder / "munge"
    munge_dir.chmod(0o700)
    key = munge_dir / "munge.key"
    key.write_bytes(os.urandom(128))
    key.chmod(0o600)
    munge_socket = munge_dir / "munge.socket"
    conf = folder / "slurm.conf"
    conf.write_text(_conf(folder, node, cpus, memory_mb, munge_socket))
    env = dict(os.environ, SLURM_CONF=str(conf))
    for var in [v for v in env if v.startswith(("SLURM_", "SBATCH_", "SQUEUE_")) and v != "SLURM_CONF"]:
        del env[var]  # a test session started inside a SLURM job must not talk about that job
    cluster = Cluster(folder, conf, node, cpus, env, [])
    commands = [
        ("munged", [_which("munged"), "--foreground", "--force", f"--socket={munge_socket}", f"--key-file={key}",
                    f"--pid-file={munge_dir}/munged.pid", f"--log-file={folder}/munged.log",
                    f"--seed-file={munge_dir}/seed"]),
        ("slurmctld", [_which("slurmctld"), "-D", "-c", "-i", "-f", str(conf)]),
        ("slurmd", [_which("slurmd"), "-D", "-f", str(conf), "-N", node]),
    ]
    try:
        for name, cmd in commands:
            log = open(folder / f"{name}.out", "wb")  # noqa: SIM115 - the daemon writes it until stop()
            cluster.processes.append(subprocess.Popen([str(c) for c in cmd], env=env, stdout=log,
                                                      stderr=subprocess.STDOUT, start_new_session=True))
            if name == "munged":
                _wait(lambda: munge_socket.exists(), 10, "munged did not create its socket", cluster, name)
            elif name == "slurmctld":
                _wait(lambda: cluster.run("scontrol", "ping", check=False).stdout.count("UP") > 0, 20,
                      "slurmctld does not answer", cluster, name)
        _wait(lambda: _node_idle(cluster), 30, "the node did not become idle", cluster, "slurmd")
    except RuntimeError:
        cluster.stop()
        raise
    return cluster


def _node_idle(cluster: Cluster) -> bool:
    out = cluster.run("sinfo", "-h", "-o", "%t", check=False).stdout.strip()
    return out.startswith("idle")


def _wait(ready, timeout: float, message: str, cluster: Cluster, name: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if any(p.poll() is not None for p in cluster.processes):
            break
        time.sleep(0.2)
    out = cluster.folder / f"{name}.out"
    detail = (out.read_text(errors="replace").strip()[-500:] if out.exists() else "") or cluster.log(name)[-500:]
    raise RuntimeError(f"{message}: {detail}")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A single-node SLURM cluster for the whole session; skips loudly when it cannot start."""
    try:
        cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    except RuntimeError as exc:
        pytest.skip(f"SLURM TESTS NOT RUN: no single-node cluster could start ({exc})")
    try:
        yield cluster
    finally:
        cluster.stop()
