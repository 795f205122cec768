"""Open a ganlab report in headless Chromium, offline: dump its DOM, time it, or save a screenshot.

    python docs/report_browser.py report.html --screenshot docs/img/report.png
    python docs/report_browser.py report.html --dom            # the rendered DOM on stdout

Chromium runs with a throw-away profile, every host name unresolvable and no
proxy, so the page can only show what it carries inline. The tests
(tests/test_report.py) and benchmarks/bench_report.py use these functions.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hparams_screenshot import CHROMIUM_FLAGS, find_chromium, take_screenshot  # noqa: E402

# Nothing resolves, so any request the page tried would fail instead of leaving the machine.
OFFLINE_FLAGS = ("--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9")


def dump_dom(page: Path, *, budget_ms: int | None = None, fragment: str = "", chromium: str | None = None,
             timeout: float = 300) -> tuple[str, float]:
    """The DOM of ``page`` after its scripts ran, and the seconds Chromium took (start to exit).

    Without ``budget_ms`` Chromium dumps at the load event, which comes after
    the page's inline scripts (the report's table) have run. ``fragment`` is
    the URL's ``#`` part: ``draw-all`` makes the report draw every figure, not
    only those scrolled into view; an element's id scrolls the window to it.
    """
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("Chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="ganlab-chromium-") as profile:
        cmd = [binary, *CHROMIUM_FLAGS, *OFFLINE_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,900"]
        if budget_ms is not None:
            cmd.append(f"--virtual-time-budget={budget_ms}")
        cmd += ["--dump-dom", Path(page).resolve().as_uri() + (f"#{fragment}" if fragment else "")]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        seconds = time.perf_counter() - start
    if done.returncode != 0 or "<html" not in done.stdout:
        tail = done.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"chromium exited with code {done.returncode} and no DOM: {' | '.join(tail)}")
    return done.stdout, seconds


def screenshot(page: Path, out: Path, *, width: int = 1400, height: int = 1600) -> Path:
    """A PNG of ``page`` as headless Chromium draws it."""
    # 3 s of virtual time: plotly has drawn by then (virtual time waits for the CPU work); with larger
    # budgets Chromium 1xx sometimes never takes the shot. Every figure drawn, not only those in view.
    return take_screenshot(Path(page).resolve().as_uri() + "#draw-all", out, width=width, height=height, budget_ms=3000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="the report written by ganlab report")
    parser.add_argument("--screenshot", type=Path, help="save a PNG here")
    parser.add_argument("--dom", action="store_true", help="print the rendered DOM")
    parser.add_argument("--height", type=int, default=1600, help="screenshot height in CSS pixels (default 1600)")
    args = parser.parse_args(argv)
    if not args.page.is_file():
        print(f"no report at {args.page}; write one with: ganlab report -o {args.page}", file=sys.stderr)
        return 1
    if args.screenshot:
        screenshot(args.page, args.screenshot, height=args.height)
        print(f"wrote {args.screenshot}")
    dom, seconds = dump_dom(args.page)
    if args.dom:
        print(dom)
    print(f"opened in {seconds:.2f} s (Chromium start to DOM dump)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
