"""Starting TensorBoard on all runs or on a chosen subset of them."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ganlab.errors import ConfigError, GanlabError

# TensorBoard imports TensorFlow whenever it is installed: seconds of start-up and a second framework's
# memory, for nothing, as ganlab's event files need none of it (see ganlab.tblog). A module named
# tensorboard.compat.notf is TensorBoard's own switch (what its no-TensorFlow build adds) to use the
# TensorFlow-free stub it ships; the same stub serves wherever TensorFlow is absent.
_WITHOUT_TENSORFLOW = (
    "import sys, types; sys.modules['tensorboard.compat.notf'] = types.ModuleType('tensorboard.compat.notf'); "
    "from tensorboard.main import run_main; run_main()"
)


# The probe talks to our own child: an http_proxy setting must not route it elsewhere.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now on ``host`` (the OS picks it)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.bind(address)
            return int(sock.getsockname()[1])
    except OSError as exc:
        raise ConfigError(f"--host {host!r} cannot be bound on this machine ({exc.strerror or exc}); "
                          "use 127.0.0.1, 0.0.0.0 or one of this machine's addresses") from None


def check_port_free(host: str, port: int) -> None:
    """Refuse a port something already listens on: TensorBoard would fail after we had printed its URL,
    and a probe would be answered by the other server."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            # As servers do, so a port left in TIME_WAIT by a stopped TensorBoard counts as free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        raise ConfigError(f"--port {port} on {host} is not available ({exc.strerror or exc}); "
                          "choose another port or leave --port out for a free one") from None


def browser_url(host: str, port: int) -> str:
    """The address to open: a wildcard bind is reached through the machine's name, IPv6 in brackets."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    else:
        try:
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        except ValueError:
            pass  # a host name
    return f"http://{host}:{port}/"


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


@dataclass
class TensorBoard:
    """A TensorBoard server started by :func:`start_tensorboard`; :meth:`stop` ends it."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    cleanup: list[Path] = field(default_factory=list)  # folders removed once it has stopped

    def last_log_line(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (kill it if it does not go in ``timeout`` s) and remove its temporary files."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for path in [self.log_path, *self.cleanup]:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)  # a subset's links only; the runs stay
            else:
                path.unlink(missing_ok=True)


def start_tensorboard(
    logdir: Path, host: str, port: int, *, timeout: float = 60.0, cleanup: tuple[Path, ...] = ()
) -> TensorBoard:
    """Start TensorBoard serving ``logdir`` and return once it answers HTTP.

    Check the port first (:func:`check_port_free`): a server already on it
    would answer the probe. ``cleanup``: folders to remove when it stops (also when it fails to start).
    """
    cmd = [
        sys.executable, "-c", _WITHOUT_TENSORFLOW,
        "--logdir", str(logdir), "--host", host, "--port", str(port),
        # New runs and new points show up within seconds of being written.
        "--reload_interval", "5",
    ]
    # Its output goes to a file, not a pipe: nobody drains a pipe while TensorBoard serves.
    with tempfile.NamedTemporaryFile(prefix="ganlab-tensorboard-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = TensorBoard(process, browser_url(host, port), Path(log.name), list(cleanup))
    # Probed on the address it binds (a wildcard bind answers on loopback).
    probe = browser_url("127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host, port)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                why = server.last_log_line() or "no output"
                raise GanlabError(f"TensorBoard exited with code {process.returncode}: {why}")
            try:
                with _DIRECT.open(probe + "data/environment", timeout=2):
                    return server
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        raise GanlabError(f"TensorBoard did not answer on {server.url} within {timeout:.0f} s; is port {port} blocked?")
    except BaseException:
        server.stop()  # also on Ctrl-C while waiting: no server or temporary folder is left behind
        raise
