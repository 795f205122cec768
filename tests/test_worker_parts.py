"""Worker building blocks: GPU slots, the child report channel, and how a child's end is classified."""

import os
import signal
import subprocess
import sys

import pytest

from ganlab.errors import ConfigError
from ganlab.training.report_pipe import PipeReporter, ReportReader
from ganlab.worker.gpus import parse_gpus, visible_gpus
from ganlab.worker.outcome import classify


def test_gpu_specs(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert visible_gpus() == ["2", "5"]
    assert parse_gpus("auto") == ["2", "5"]
    assert parse_gpus("5,2") == ["5", "2"]
    assert parse_gpus("none") == [None]
    with pytest.raises(ConfigError, match=r"--gpus '0,1': GPU 0 is not visible to this worker \(visible: 2,5\)"):
        parse_gpus("0,1")  # the scheduler handed this worker GPUs 2 and 5 only
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert parse_gpus("auto") == [None]  # no GPU: one CPU slot


@pytest.mark.parametrize("spec, message", [
    ("gpu0", "--gpus 'gpu0' is not valid; use auto, none, or GPU ids like 0,1"),
    ("0,0", "--gpus '0,0' names a GPU twice; list each id once"),
    ("100000000000000000000", r"GPU 100000000000000000000 is not visible to this worker \(visible: 0,1\)"),
])
def test_bad_gpu_specs(spec, message, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(ConfigError, match=message):
        parse_gpus(spec)


def test_reports_cross_a_real_pipe_from_a_child_process():
    read_fd, write_fd = os.pipe()
    code = (
        "import sys; from ganlab.training.report_pipe import PipeReporter;"
        "from ganlab.training.report import TrainResult;"
        "r = PipeReporter(int(sys.argv[1])); r.on_start(0, 10);"
        "r.on_progress(5, {'g': 1.5, 'd': 0.5}, 12.0, 768.0);"
        "r.on_result(TrainResult('succeeded', 10, {'fd': 3.0}, {'fd': 2.5})); r.close()"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(write_fd)], pass_fds=[write_fd])
    os.close(write_fd)
    reader = ReportReader(read_fd)
    events = []
    while not reader.closed:
        events += reader.read()
    child.wait()
    assert [e["event"] for e in events] == ["start", "progress", "result"]
    assert events[1]["losses"] == {"g": 1.5, "d": 0.5}
    assert events[2] == {"event": "result", "status": "succeeded", "step": 10, "metrics": {"fd": 3.0, "best_fd": 2.5},
                         "error": None}


def test_reporter_survives_a_dead_worker():
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    reporter = PipeReporter(write_fd)
    reporter.on_progress(1, {"g": 0.0}, 1.0, 1.0)  # EPIPE must not kill training
    reporter.on_progress(2, {"g": 0.0}, 1.0, 1.0)
    reporter.close()


def test_classification_reads_the_result_event():
    ok = classify(0, {"status": "succeeded", "metrics": {"fd": 1.0}}, "")
    assert (ok.status, ok.metrics) == ("succeeded", {"fd": 1.0})
    late = classify(-signal.SIGKILL, {"status": "succeeded", "step": 9, "metrics": {}}, "")
    assert late.status == "succeeded"  # killed after its result was sent: the result stands
    div = classify(3, {"status": "diverged", "step": 17, "error": None}, "")
    assert div.status == "diverged" and "step 17" in div.error and not div.retryable
    stopped = classify(4, {"status": "released", "step": 5}, "")
    assert stopped.status == "released"
    bug = classify(1, {"status": "failed", "step": 3, "error": "ValueError: bad shape"}, "tail")
    assert bug.reason == "Python exception: ValueError: bad shape" and not bug.retryable and bug.error.endswith("tail")
    oom = classify(1, {"status": "failed", "step": 0, "stage": "start", "kind": "out_of_memory",
                       "error": "ResourceExhaustedError: OOM when allocating tensor"}, "")
    assert oom.reason.startswith("out of memory: ResourceExhaustedError") and oom.retryable
    plain = classify(1, {"status": "failed", "step": 0, "stage": "start", "kind": "error",
                         "error": "dataset 'folder' cannot be loaded"}, "Error: dataset 'folder' cannot be loaded")
    assert plain.reason == "dataset 'folder' cannot be loaded" and not plain.retryable
    refused = classify(5, {"status": "refused", "stage": "start", "kind": "error", "error": "plugin file x changed"},
                       "", retry_command="ganlab queue retry 3 --rehash-plugins")
    assert refused.status == "failed" and not refused.retryable
    assert refused.error == "plugin file x changed; to run it again: ganlab queue retry 3 --rehash-plugins"


def test_classification_falls_back_on_the_exit_status_only_without_a_result():
    killed = classify(-signal.SIGKILL, None, "step 10")
    assert killed.reason == "killed by signal 9 (SIGKILL) (often the out-of-memory killer)" and killed.retryable
    # The log is detail for a user, never parsed: an OOM message in it changes nothing.
    died = classify(1, None, "Traceback (most recent call last):\nResourceExhaustedError: OOM when allocating")
    assert died.reason == "exited with code 1 without a result" and not died.retryable
    assert died.error.endswith("OOM when allocating")
    assert classify(6, None, "").retryable


class _Training:
    """What the loop reads of a running child: enough to decide about pre-starting (no process)."""

    def __init__(self, slot, *, training, finishing):
        import time
        from types import SimpleNamespace

        self.slot, self.training, self.finishing = slot, training, finishing
        self.id = id(self)
        self.claim = SimpleNamespace(experiment=SimpleNamespace(config={"train": {"backend": "tensorflow"}}))
        self.start_step, self.start_shown, self.stop_sent = None, True, None
        self.last_renew = time.monotonic()
        self.evals = []  # evaluations for a study's pruner: none here

    def poll_reports(self):
        pass

    def finished(self):
        return None


@pytest.mark.parametrize("children, prestarted", [
    ([("a", True, False)], ["a"]),                      # training: prepare its slot's next process
    ([("a", False, False)], []),                        # still starting up: not two start-ups at once
    ([("a", True, True)], ["a"]),                       # start and last step seen in one poll: still prepare
    ([("a", True, True), ("a", False, False)], []),     # the successor is starting beside the finishing one
    ([("a", True, False), ("b", True, False)], ["a", "b"]),
])
def test_when_the_worker_prestarts_a_slot(tmp_path, monkeypatch, children, prestarted):
    from ganlab.store.queue import Queue
    from ganlab.worker import loop

    started = []
    monkeypatch.setattr(loop, "start_standby", lambda slot, backend, env: started.append(slot) or object())
    with Queue.open(f"sqlite:///{tmp_path / 'q.db'}", create=True) as queue:
        worker = loop.Worker(queue, loop.WorkerOptions(slots=["a", "b"]))
        for slot, training, finishing in children:
            child = _Training(slot, training=training, finishing=finishing)
            worker.children[child.id] = child
        worker._watch_children()
        assert sorted(started) == prestarted
        worker._watch_children()
        assert sorted(started) == prestarted  # one per slot, not one per pass


def test_no_prestart_starts_no_process(tmp_path, monkeypatch):
    from ganlab.store.queue import Queue
    from ganlab.worker import loop

    started = []
    monkeypatch.setattr(loop, "start_standby", lambda slot, backend, env: started.append(slot) or object())
    with Queue.open(f"sqlite:///{tmp_path / 'q.db'}", create=True) as queue:
        worker = loop.Worker(queue, loop.WorkerOptions(slots=["a"], prestart=False))
        child = _Training("a", training=True, finishing=False)
        worker.children[child.id] = child
        worker._watch_children()
    assert started == []
