"""Whether the database and the runs folder are ones every node of a cluster can reach.

A worker on another node opens the same ``--db`` and writes into the same
``--runs-dir``: a SQLite file or a folder on a node's own disk, or a
PostgreSQL server named ``localhost``, would give each node a queue and a
runs folder of its own. The file system is read from ``/proc/self/mounts``
(the mount that holds the path, the longest matching mount point).
"""

from __future__ import annotations

import os
from pathlib import Path

from ganlab.errors import ConfigError
from ganlab.store.urls import display_url, parse_url, sqlite_path

# Network and cluster file systems: what every node of a cluster mounts alike.
SHARED_FS = frozenset({
    "nfs", "nfs4", "lustre", "gpfs", "beegfs", "cephfs", "ceph", "glusterfs", "fuse.glusterfs", "cifs", "smb3",
    "smbfs", "panfs", "wekafs", "fuse.weka", "orangefs", "pvfs2", "afs", "fuse.sshfs", "fuse.juicefs", "fuse.ceph",
    "fuse.beegfs", "9p", "virtiofs", "gfs2", "ocfs2", "fuse.lizardfs", "fuse.mfs", "quobyte", "fuse.quobyte",
})
LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1", "ip6-localhost"})
SINGLE_NODE_HINT = "or pass --single-node if the SLURM cluster is this one machine"


def _unescape(field: str) -> str:
    # /proc/self/mounts writes a space in a mount point as \040 (tab, newline, backslash likewise).
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def filesystem_of(path: Path, mounts: str | None = None) -> str:
    """The type of the file system that holds, or will hold, ``path``: e.g. ``nfs4``, ``lustre``, ``ext4``."""
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text()
        except OSError:
            return "unknown"
    target = Path(os.path.abspath(path)).resolve()  # links in the part that exists are followed
    best, kind = -1, "unknown"
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = Path(_unescape(fields[1]))
        if (target == point or point in target.parents) and len(point.parts) > best:
            best, kind = len(point.parts), fields[2]
    return kind


def is_shared(path: Path, mounts: str | None = None) -> bool:
    return filesystem_of(path, mounts) in SHARED_FS


def check_db_shared(url: str, *, single_node: bool = False, mounts: str | None = None) -> None:
    """ConfigError unless every node can reach the database ``url``."""
    if single_node:
        return
    path = sqlite_path(url)
    if path is not None:
        kind = filesystem_of(path, mounts)
        if kind not in SHARED_FS:
            raise ConfigError(
                f"--db {display_url(url)} is an SQLite file on a local file system ({kind}) that only this machine sees; "
                "workers on other nodes need the same queue: use a PostgreSQL URL or a file on a shared file "
                f"system (NFS, Lustre, GPFS, BeeGFS, CephFS), {SINGLE_NODE_HINT}"
            )
        return
    host = (parse_url(url).host or "").lower()
    if host in LOCAL_HOSTS:
        where = f"host {host}" if host else "a local socket"
        raise ConfigError(
            f"--db {display_url(url)} reaches the database through {where}, which on another node is that node "
            f"itself; give the database server's name or address, {SINGLE_NODE_HINT}"
        )


def check_runs_shared(runs_dir: Path, *, single_node: bool = False, mounts: str | None = None) -> None:
    """ConfigError unless ``runs_dir`` is on a file system every node mounts."""
    if single_node:
        return
    kind = filesystem_of(runs_dir, mounts)
    if kind not in SHARED_FS:
        raise ConfigError(
            f"--runs-dir {runs_dir} is on a local file system ({kind}) that only this machine sees; a task requeued on "
            "another node could not resume from its checkpoints: give a folder on a shared file system, "
            f"{SINGLE_NODE_HINT}"
        )
