"""The C++ start-up noise filter: real captured lines dropped, everything a user needs kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ganlab.logfilter import NOISE, clean_text, is_noise, without_noise
from ganlab.worker.outcome import classify, tail

NOISE_FILE = Path(__file__).resolve().parent / "tf_startup_noise.txt"

KEPT = [
    "=== 2026-12-03 07:50:00 UTC: experiment 3 attempt 1, worker host-1-abc, CPU ===",
    "training from step 0 to 40",
    "step 40/40  120.3 steps/s  1,925 img/s  D 1.386 G 0.693",
    "eval at step 40: fd 12.5  fd_floor 0.8",
    "Traceback (most recent call last):",
    '  File "/x/faulty.py", line 12, in _fail',
    "RuntimeError: injected failure while building the generator",
    "Error: training failed at step 0: RuntimeError: injected failure",
    "",
    # A C++ line about running out of memory is the first sign of the real failure: always kept.
    "W0000 00:00:1709633529.118204   48211 bfc_allocator.cc:482] Allocator (GPU_0_bfc) ran out of memory trying to "
    "allocate 1.2GiB (rounded to 1288490240)requested by op Conv2D",
    "2024-03-05 10:12:09.420981: W tensorflow/core/framework/op_kernel.cc:1827] OP_REQUIRES failed at "
    "conv_ops.cc:1068 : RESOURCE_EXHAUSTED: OOM when allocating tensor with shape[64,128,32,32]",
    # C++ errors and fatal lines not on the list may be the cause of a crash.
    "E0000 00:00:1709633529.118204   48211 cuda_executor.cc:1102] could not synchronize on CUDA context: "
    "CUDA_ERROR_ILLEGAL_ADDRESS",
    "F0000 00:00:1709633529.118204   48211 gpu_util.cc:71] Check failed: status.ok()",
    # A plugin's own output that merely mentions TensorFlow's words.
    "WARNING: the generator has 3 unused layers",
    "I note: oneDNN custom operations are on",
]


def _captured() -> list[str]:
    return [line for line in NOISE_FILE.read_text().splitlines() if not line.startswith("#")]


def test_captured_start_up_noise_is_all_dropped() -> None:
    lines = _captured()
    assert len(lines) >= 20
    assert [line for line in lines if not is_noise(line)] == []
    assert all(why for why, _ in NOISE)  # every pattern says why it is there


def test_what_a_user_needs_is_kept() -> None:
    assert [line for line in KEPT if is_noise(line)] == []
    mixed = [line for pair in zip(_captured(), KEPT) for line in pair]
    assert without_noise(mixed) == KEPT[: len(mixed) // 2]
    assert clean_text("\n".join(_captured() + KEPT[4:7])) == "\n".join(KEPT[4:7])


def test_a_fresh_tensorflow_prints_only_noise_before_the_program(tmp_path: Path) -> None:
    """The start-up of the TensorFlow installed here, as a worker's CPU child sees it: nothing survives the filter."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0", "CUDA_VISIBLE_DEVICES": "", "KERAS_BACKEND": "tensorflow"}
    code = ("import tensorflow as tf\n"
            "tf.function(lambda a: tf.nn.relu(tf.matmul(a, a)))(tf.ones((4, 4)))\n"
            "print('program starts', flush=True)\n"
            "raise SystemExit('the real error')\n")
    log = tmp_path / "train.log"
    with open(log, "wb") as out:  # one file for both streams, as a worker's child writes its log
        run = subprocess.run([sys.executable, "-c", code], env=env, stdout=out, stderr=subprocess.STDOUT, timeout=300)
    raw = log.read_text().splitlines()
    assert any(is_noise(line) for line in raw), raw  # TensorFlow did say something first
    assert tail(log).splitlines() == ["program starts", "the real error"]
    outcome = classify(run.returncode, None, tail(log))
    assert outcome.reason == "exited with code 1 without a result"
    assert outcome.error.splitlines()[1:] == ["program starts", "the real error"]  # the detail starts at the program
