"""Starting TensorBoard on all runs or on a chosen subset of them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from ganlab.errors import GanlabError


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def link_subset(runs: Mapping[str, Path], parent: Path | None = None) -> Path:
    """A temporary logdir holding one symlink per selected run, named as TensorBoard should show it.

    TensorBoard follows symlinked run folders, so a subset needs no copying
    and later events written to the real folders still show up.
    """
    root = Path(tempfile.mkdtemp(prefix="ganlab-tb-", dir=parent))
    for name, target in runs.items():
        safe = name.replace(os.sep, "_")
        os.symlink(Path(target).resolve(), root / safe, target_is_directory=True)
    return root


def start_tensorboard(logdir: Path, host: str, port: int, *, timeout: float = 60.0) -> subprocess.Popen[bytes]:
    """Start TensorBoard serving ``logdir`` and return once it answers HTTP."""
    cmd = [
        sys.executable, "-m", "tensorboard.main",
        "--logdir", str(logdir), "--host", host, "--port", str(port),
        "--reload_interval", "5",
    ]
    # stderr goes to a file, not a pipe: nobody drains a pipe while TensorBoard serves.
    log = tempfile.NamedTemporaryFile(prefix="ganlab-tensorboard-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    log.close()
    url = f"http://{host}:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = Path(log.name).read_text(errors="replace").strip().splitlines()
            raise GanlabError(f"TensorBoard exited with code {proc.returncode}: {err[-1] if err else 'no output'}")
        try:
            with urllib.request.urlopen(url + "data/environment", timeout=2):
                return proc
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    proc.terminate()
    raise GanlabError(f"TensorBoard did not answer on {url} within {timeout:.0f} s; is port {port} blocked?")
