"""Regenerate docs/img/hparams.png: TensorBoard's HParams table over real runs, shot by headless Chromium.

    ganlab demo --gpus none                       # three dcgan runs on digits (a few minutes on a CPU)
    python docs/hparams_screenshot.py --runs-dir runs

It starts TensorBoard on the runs (as ``ganlab tensorboard`` does), waits
until the HParams plugin lists every run, and saves a screenshot of
``/#hparams``. Nothing leaves the machine: Chromium runs with networking
extras off and a throw-away profile. The test suite uses
:func:`take_screenshot` too (tests/test_tensorboard_e2e.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from ganlab.tblog.launcher import free_port, start_tensorboard

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
# Chromium without the services that would reach out to the network or need a desktop session.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
    "--no-proxy-server",
)
ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def find_chromium() -> str | None:
    """The Chromium binary, or None when none is installed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found or next((c for c in CHROMIUM_CANDIDATES if os.access(c, os.X_OK)), None)


def hparams_sessions(base_url: str) -> list[dict]:
    """The HParams plugin's session groups (one per run), as its table view asks for them."""
    body = {"experimentName": "", "startIndex": 0, "sliceSize": 1000, "allowedStatuses": ALL_STATUSES,
            "colParams": [], "aggregationType": "AGGREGATION_AVG"}
    request = urllib.request.Request(
        base_url + "data/plugin/hparams/session_groups", data=json.dumps(body).encode(),
        # TensorBoard refuses POSTs without it (cross-site request protection).
        headers={"X-XSRF-Protected": "1", "Content-Type": "application/json"},
    )
    # Straight to the local server, whatever http_proxy says.
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with direct.open(request, timeout=10) as response:
        return json.load(response).get("sessionGroups", [])


def wait_for_sessions(base_url: str, count: int, timeout: float = 60.0) -> list[dict]:
    """Poll until TensorBoard has loaded ``count`` HParams sessions (it reads the logdir in the background)."""
    deadline = time.monotonic() + timeout
    groups: list[dict] = []
    while time.monotonic() < deadline:
        groups = hparams_sessions(base_url)
        if len(groups) >= count:
            return groups
        time.sleep(0.5)
    raise TimeoutError(f"TensorBoard listed {len(groups)} of {count} HParams sessions after {timeout:.0f} s")


def take_screenshot(url: str, out: Path, *, width: int = 1400, height: int = 900, chromium: str | None = None,
                    budget_ms: int = 15000, scale: float = 1.0) -> Path:
    """Save a PNG of ``url`` as headless Chromium renders it (``width`` x ``height`` CSS pixels times ``scale``).

    ``budget_ms`` of virtual time lets the dashboard fetch and draw its data
    before the shot is taken.
    """
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("Chromium is not installed (apt-get install chromium)")
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ganlab-chromium-") as profile:
        cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
               f"--force-device-scale-factor={scale}", f"--virtual-time-budget={budget_ms}",
               f"--screenshot={out}", url]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not out.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"chromium exited with code {done.returncode} and no screenshot: {' | '.join(tail)}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="the runs root (default runs)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "img" / "hparams.png")
    # A wide page drawn at 0.8: more of the table's columns fit in a picture of ordinary size.
    parser.add_argument("--width", type=int, default=1900, help="page width in CSS pixels (default 1900)")
    parser.add_argument("--height", type=int, default=800, help="page height in CSS pixels (default 800)")
    parser.add_argument("--scale", type=float, default=0.8, help="device scale factor (default 0.8)")
    args = parser.parse_args(argv)
    runs = [d for d in sorted(args.runs_dir.iterdir()) if d.is_dir() and any("tfevents" in f.name for f in d.iterdir())] \
        if args.runs_dir.is_dir() else []
    if not runs:
        print(f"no runs with TensorBoard events under {args.runs_dir}; run 'ganlab demo' first", file=sys.stderr)
        return 1
    server = start_tensorboard(args.runs_dir, "127.0.0.1", free_port())
    try:
        wait_for_sessions(server.url, len(runs))
        take_screenshot(server.url + "#hparams", args.out, width=args.width, height=args.height, scale=args.scale)
    finally:
        server.stop()
    print(f"wrote {args.out} ({len(runs)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
