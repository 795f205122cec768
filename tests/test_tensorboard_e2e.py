"""``ganlab tensorboard`` end to end: runs written by the trainer, a real TensorBoard, its HTTP API.

A real worker subprocess runs three tiny experiments (two that succeed, one
whose discriminator turns NaN after its first evaluation, so it diverges);
``ganlab tensorboard`` is then started as a user would start it, and the
data routes its dashboards use are queried: every run with its
hyperparameters, final metrics and status in the HParams plugin, the curves
in the scalars plugin, the sample grid in the images plugin.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganlab.cli import cli
from ganlab.store.queue import Queue

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).resolve().parent / "training_plugins"
TINY = ["--arch", "tiny", "--dataset", "tiny-bars", "--batch-size", "16", "--steps", "12",
        "--set", "latent_dim=8", "--set", "eval_samples=64", "--set", "log_every=2", "--set", "sample_every=6",
        "--set", "eval_every=6", "--set", "checkpoint_every=6"]
# The discriminator is called twice per step: NaN from call 15 on means step 8, after the evaluation at step 6.
EXPERIMENTS = {
    "ns": ["--loss", "non-saturating", "--tag", "good"],
    "hinge": ["--loss", "hinge", "--tag", "good"],
    "nan": ["--loss", "non-saturating", "--set", "nan_after_calls=14", "--tag", "bad"],
}
ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
# Straight to the local server, whatever http_proxy says.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _env(cache: Path) -> dict[str, str]:
    # One feature-net cache for the session (as tests/test_worker.py); quiet TensorFlow.
    return {**os.environ, "GANLAB_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}


class Runs:
    """The database and runs written by the worker, and each experiment's record."""

    def __init__(self, url: str, runs_dir: Path, env: dict[str, str]) -> None:
        self.url = url
        self.runs_dir = runs_dir
        self.env = env
        with Queue.open(url) as queue:
            self.records = {r.name: r for r in queue.get_many([s.id for s in queue.list_experiments()])}
        self.by_key = {key: self.records[f"run-{key}"] for key in EXPERIMENTS}

    def run_name(self, key: str) -> str:
        return Path(self.by_key[key].run_dir).name


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    base = tmp_path_factory.mktemp("tb-e2e")
    url = f"sqlite:///{base / 'experiments.db'}"
    env = _env(tmp_path_factory.getbasetemp() / "cache")
    for key, args in EXPERIMENTS.items():
        added = CliRunner().invoke(cli, ["--plugins-dir", str(PLUGINS), "queue", "--db", url, "add", "-q",
                                         *TINY, "--name", f"run-{key}", *args])
        assert added.exit_code == 0, added.output
    # Two workers, as on a machine with two slots: the three runs take two runs' time.
    cmd = [sys.executable, "-m", "ganlab", "--plugins-dir", str(PLUGINS), "worker", "--db", url,
           "--runs-dir", str(base / "runs"), "--gpus", "none", "--poll", "0.3", "--until-empty", "-q"]
    workers = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
               for _ in range(2)]
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=240)[0])
            assert worker.returncode == 0, outputs[-1]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    result = Runs(url, base / "runs", env)
    status = {k: r.status for k, r in result.by_key.items()}
    assert status == {"ns": "succeeded", "hinge": "succeeded", "nan": "diverged"}, (status, outputs)
    return result


# ---------------------------------------------------------------------- helpers


class Server:
    """A ``ganlab tensorboard`` subprocess and the URL it printed."""

    def __init__(self, process: subprocess.Popen[str], url: str, first_line: str) -> None:
        self.process = process
        self.url = url
        self.first_line = first_line

    def get(self, path: str, **query: str | int) -> bytes:
        full = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        with DIRECT.open(full, timeout=20) as response:
            return response.read()

    def get_json(self, path: str, **query: str | int) -> object:
        return json.loads(self.get(path, **query))

    def post_json(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(),
            headers={"X-XSRF-Protected": "1", "Content-Type": "application/json"},  # TensorBoard's CSRF guard
        )
        with DIRECT.open(request, timeout=20) as response:
            return json.load(response)

    def session_groups(self) -> dict[str, dict]:
        body = {"experimentName": "", "startIndex": 0, "sliceSize": 100, "allowedStatuses": ALL_STATUSES,
                "colParams": [], "aggregationType": "AGGREGATION_AVG"}
        return {g["name"]: g for g in self.post_json("data/plugin/hparams/session_groups", body)["sessionGroups"]}

    def wait_for_runs(self, names: set[str], timeout: float = 45.0) -> dict[str, dict]:
        """TensorBoard reads the logdir in the background: poll until every run is an HParams session
        with its final status and its metrics (these runs have all ended)."""
        deadline = time.monotonic() + timeout
        groups: dict[str, dict] = {}
        while time.monotonic() < deadline:
            groups = self.session_groups()
            loaded = all(
                name in groups
                and groups[name]["sessions"][0].get("status") in ("STATUS_SUCCESS", "STATUS_FAILURE")
                and any(m["name"]["tag"] == "metrics/fd" for m in groups[name]["metricValues"])
                for name in names
            )
            if loaded and set(self.get_json("data/runs")) >= names:
                return groups
            time.sleep(0.5)
        raise AssertionError(f"TensorBoard listed {sorted(groups)} after {timeout:.0f} s, expected {sorted(names)}")


def start_ganlab_tensorboard(runs: Runs, *args: str) -> Server:
    cmd = [sys.executable, "-m", "ganlab", "tensorboard", "--db", runs.url, *args]
    # Its own session: the finally below can kill it and its TensorBoard child together.
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True, env=runs.env)
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 90
    line = ""
    while time.monotonic() < deadline and not line:
        if selector.select(timeout=1.0):
            line = process.stdout.readline()
            if not line:
                break
    selector.close()
    match = re.search(r"at (http://127\.0\.0\.1:\d+/) \(HParams: \1#hparams\)", line)
    if match is None:
        stop(process)
        raise AssertionError(f"ganlab tensorboard printed {line!r}")
    return Server(process, match.group(1), line)


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM, as a service manager would stop it; kill the whole group if it does not go."""
    try:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
        return out
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def answers(url: str) -> bool:
    try:
        with DIRECT.open(url + "data/environment", timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(runs: Runs) -> Iterator[Server]:
    srv = start_ganlab_tensorboard(runs, "--runs-dir", str(runs.runs_dir))
    try:
        yield srv
    finally:
        out = stop(srv.process)
    assert srv.process.returncode == 0, out
    assert not answers(srv.url), "TensorBoard must stop with the command"


# ------------------------------------------------------------------------ tests


def test_every_run_is_listed_with_its_hyperparameters_final_metrics_and_status(runs: Runs, server: Server):
    names = {runs.run_name(k): k for k in EXPERIMENTS}
    groups = server.wait_for_runs(set(names))
    assert set(server.get_json("data/runs")) == set(names)

    experiment = server.post_json("data/plugin/hparams/experiment", {"experimentName": ""})
    hparam_names = {h["name"] for h in experiment["hparamInfos"]}
    assert {"loss", "arch", "arch.nan_after_calls", "train.seed", "train.lr_g", "train.steps"} <= hparam_names
    metric_tags = {m["name"]["tag"] for m in experiment["metricInfos"]}
    assert {"metrics/fd", "metrics/kid", "best/fd", "best/kid", "loss/generator"} <= metric_tags

    expected_status = {"ns": "STATUS_SUCCESS", "hinge": "STATUS_SUCCESS", "nan": "STATUS_FAILURE"}
    for name, key in names.items():
        record = runs.by_key[key]
        group = groups[name]
        [session] = group["sessions"]
        assert session["status"] == expected_status[key], (key, session)
        config = record.experiment_config()
        assert group["hparams"]["loss"] == config.loss
        assert group["hparams"]["arch.nan_after_calls"] == config.arch_params["nan_after_calls"]
        assert group["hparams"]["train.lr_g"] == pytest.approx(config.train["lr_g"])
        shown = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        # The final values, as the worker stored them from 'ganlab train' (float32 in the event files).
        assert shown["metrics/fd"] == pytest.approx(record.metrics["fd"], rel=1e-6)
        assert shown["metrics/kid"] == pytest.approx(record.metrics["kid"], rel=1e-5, abs=1e-7)
        assert shown["best/fd"] == pytest.approx(record.metrics["best_fd"], rel=1e-6)
        assert record.metrics["best_fd"] <= record.metrics["fd"]


def test_scalar_curves_end_at_the_stored_metrics(runs: Runs, server: Server):
    server.wait_for_runs({runs.run_name(k) for k in EXPERIMENTS})
    tags = server.get_json("data/plugin/scalars/tags")
    for key in EXPERIMENTS:
        name, record = runs.run_name(key), runs.by_key[key]
        assert {"metrics/fd", "best/fd", "loss/generator", "loss/discriminator"} <= set(tags[name])
        points = server.get_json("data/plugin/scalars/scalars", run=name, tag="metrics/fd")
        steps = [int(step) for _, step, _ in points]
        assert steps == ([6, 12] if key != "nan" else [6])  # the diverged run was evaluated once, at step 6
        assert points[-1][2] == pytest.approx(record.metrics["fd"], rel=1e-6)
    last_losses = server.get_json("data/plugin/scalars/scalars", run=runs.run_name("ns"), tag="loss/generator")
    assert last_losses[-1][1] == 12


def test_the_sample_grid_is_served_as_an_image(runs: Runs, server: Server):
    server.wait_for_runs({runs.run_name(k) for k in EXPERIMENTS})
    tags = server.get_json("data/plugin/images/tags")
    name = runs.run_name("hinge")
    assert "samples" in tags[name]
    images = server.get_json("data/plugin/images/images", run=name, tag="samples", sample=0)
    assert [entry["step"] for entry in images] == [6, 12]
    png = server.get(f"data/plugin/images/individualImage?{images[-1]['query']}")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    served = np.asarray(Image.open(io.BytesIO(png)))
    # The grid TensorBoard shows is the one the run saved as its latest samples.
    saved = np.asarray(Image.open(Path(runs.by_key["hinge"].run_dir) / "samples" / "latest.png"))
    assert served.shape == saved.shape and served.shape[0] >= 8 * 8 and np.array_equal(served, saved)


def test_id_and_tag_show_only_the_selected_runs(runs: Runs):
    good = {runs.run_name("ns"), runs.run_name("hinge")}
    srv = start_ganlab_tensorboard(runs, "--tag", "good")
    try:
        assert srv.first_line.startswith("TensorBoard serving 2 run(s) at ")
        groups = srv.wait_for_runs(good)
        assert set(srv.get_json("data/runs")) == good and set(groups) == good
    finally:
        stop(srv.process)
    assert not answers(srv.url)

    nan = runs.run_name("nan")
    srv = start_ganlab_tensorboard(runs, "--id", str(runs.by_key["nan"].id))
    try:
        groups = srv.wait_for_runs({nan})
        assert set(srv.get_json("data/runs")) == {nan}
        assert [s["status"] for s in groups[nan]["sessions"]] == ["STATUS_FAILURE"]
    finally:
        stop(srv.process)


def test_bad_input_is_one_line_and_starts_nothing(runs: Runs, tmp_path: Path):
    def error(*args: str) -> str:
        result = CliRunner().invoke(cli, ["tensorboard", "--db", runs.url, *args])
        assert result.exit_code == 1 and result.output.startswith("Error: "), result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
        return result.output

    assert "does not exist" in error("--runs-dir", str(tmp_path / "absent"))
    assert "no experiments 98, 99 in" in error("--id", "99", "--id", "98")
    assert "no run directories match" in error("--tag", "no-such-tag")
    assert "--host 'no-such-host.invalid' cannot be bound" in error("--runs-dir", str(runs.runs_dir),
                                                                    "--host", "no-such-host.invalid")
    links = set(Path(tempfile.gettempdir()).glob("ganlab-tb-*"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert f"--port {port} on 127.0.0.1 is not available" in error("--tag", "good", "--port", str(port))
    assert set(Path(tempfile.gettempdir()).glob("ganlab-tb-*")) == links  # no subset folder left behind


def _screenshot_script():
    spec = importlib.util.spec_from_file_location("hparams_screenshot", ROOT / "docs" / "hparams_screenshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_headless_chromium_shows_the_hparams_table(runs: Runs, server: Server, tmp_path: Path):
    shots = _screenshot_script()
    if shots.find_chromium() is None:
        pytest.skip("CHROMIUM NOT INSTALLED: the HParams screenshot test did not run (apt-get install chromium)")
    server.wait_for_runs({runs.run_name(k) for k in EXPERIMENTS})
    out = shots.take_screenshot(server.url + "#hparams", tmp_path / "hparams.png", width=1400, height=900)
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == (900, 1400, 3)
    # TensorBoard's orange header bar: the page is TensorBoard, not an error page.
    orange = np.all(np.abs(image[:60].astype(int) - (245, 124, 0)) < 12, axis=-1)
    assert orange.mean() > 0.5
    # The table (right of the filter panel, under the view tabs) holds rows of dark text: the data loaded.
    table = image[140:300, 300:].astype(int).sum(axis=-1) / 3
    assert (table < 110).sum() > 500, "no table rows drawn"
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50
