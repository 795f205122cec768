"""``ganlab train`` in a place it cannot write: one ``Error:`` line naming the folder, nothing created.

The tests run as root, for whom permission bits mean nothing, and the Python
under /root cannot be run as an unprivileged user. So "unwritable" is made the
way it also happens to root: a read-only file system, a tmpfs mounted ``ro``
in a private mount namespace (``unshare --mount``) that lives and dies with the
command, never visible to the rest of the machine. A full disk is a tmpfs
with no free inode. Where unshare or mount is not allowed those tests skip,
saying so; the other cases (a file in the way, a name too long) need neither.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from training_helpers import PLUGINS

REPO = Path(__file__).resolve().parents[1]
TRAIN = ["train", "--arch", "tiny", "--dataset", "tiny-bars", "--batch-size", "16", "--steps", "3", "-q"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
GANLAB = [sys.executable, "-m", "ganlab", "--plugins-dir", str(PLUGINS)]


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def ganlab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GANLAB, *args], capture_output=True, text=True, cwd=cwd, env=ENV, timeout=300)


def in_private_tmpfs(mount_point: Path, options: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``ganlab ARGS`` with a tmpfs mounted at ``mount_point`` that only this command sees."""
    mount_point.mkdir(exist_ok=True)
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("READ-ONLY RUN DIR CASE NOT RUN: no unshare command (util-linux)")
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    # cd again: a current folder that is the mount point must be the new file system, not the one below.
    script = 'mount -t tmpfs -o "$1" tmpfs "$2" || exit 97; cd "$PWD"; shift 2; exec "$@"'
    proc = subprocess.run([unshare, "--mount", *user, "sh", "-c", script, "sh", options, str(mount_point), *GANLAB, *args],
                          capture_output=True, text=True, cwd=cwd, env=ENV, timeout=300)
    if proc.returncode == 97 or "unshare failed" in proc.stderr:
        pytest.skip(f"READ-ONLY RUN DIR CASE NOT RUN: cannot mount a private tmpfs here ({proc.stderr.strip()[:200]})")
    return proc


def test_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    line = one_error_line(ganlab(*TRAIN, "--run-dir", str(tmp_path / "notes.txt" / "run"), cwd=tmp_path))
    assert line == (f"Error: cannot use {tmp_path / 'notes.txt' / 'run'} as the run dir: "
                    f"{tmp_path / 'notes.txt'} is a file, not a folder; choose another --run-dir")


@pytest.mark.parametrize("resume", [False, True], ids=["new", "resume"])
def test_a_name_too_long(tmp_path: Path, resume: bool) -> None:
    run_dir = tmp_path / ("r" * 300)
    line = one_error_line(ganlab(*TRAIN, *(["--resume"] if resume else []), "--run-dir", str(run_dir), cwd=tmp_path))
    assert line == f"Error: cannot use {run_dir} as the run dir: File name too long; choose another --run-dir"
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_place(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    inside = in_private_tmpfs(ro, "ro,size=64k", *TRAIN, "--run-dir", str(ro / "run"), cwd=tmp_path)
    assert one_error_line(inside) == (f"Error: cannot use {ro / 'run'} as the run dir: {ro} is not writable "
                                      "(a read-only file system); choose another --run-dir")
    itself = in_private_tmpfs(ro, "ro,size=64k", *TRAIN, "--run-dir", str(ro), cwd=tmp_path)
    assert f"Error: cannot use {ro} as the run dir: {ro} is not writable" in one_error_line(itself)


def test_the_default_run_dir_in_a_read_only_folder(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    proc = in_private_tmpfs(ro, "ro,size=64k", *TRAIN, cwd=ro)  # runs/<name> under the current folder
    line = one_error_line(proc)
    assert line.startswith("Error: cannot use runs/tiny-tiny-bars-") and f": {ro} is not writable" in line


def test_a_full_disk_when_the_run_starts(tmp_path: Path) -> None:
    # The checks pass (the folder is writable) but the first file cannot be created:
    # a tmpfs with room for its root and the run dir only.
    full = tmp_path / "full"
    proc = in_private_tmpfs(full, "nr_inodes=2,size=1m", *TRAIN, "--run-dir", str(full / "run"), cwd=tmp_path)
    line = one_error_line(proc)
    assert line.startswith(f"Error: cannot write the run dir {full / 'run'}: No space left on device (")
