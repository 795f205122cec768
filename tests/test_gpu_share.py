"""``worker --per-gpu``: what can be checked without a GPU.

The count's parsing, the refusal on a CPU-only worker, the environment a
child gets (its memory share), and ``auto``'s admission rule fed with memory
readings as nvidia-smi would give them.
"""

from __future__ import annotations

import pytest

from ganlab.errors import ConfigError
from ganlab.worker.child import child_env
from ganlab.worker.gpu_share import (
    AUTO_MAX,
    TF_MEMORY_ENV,
    admit_another,
    check_per_gpu,
    parse_per_gpu,
    share_env,
)


def test_per_gpu_is_a_count_or_auto():
    assert parse_per_gpu("4") == 4 and parse_per_gpu(" AUTO ") is None and parse_per_gpu("1") == 1
    for bad in ("0", "-1", "65", "x", "", "1.5", "auto4"):
        with pytest.raises(ConfigError, match="--per-gpu .* is not valid; use a count from 1 to 64, or auto"):
            parse_per_gpu(bad)


def test_more_than_one_per_gpu_is_refused_without_a_gpu():
    for per_gpu in (4, None):
        with pytest.raises(ConfigError, match="needs a GPU"):
            check_per_gpu(per_gpu, [None])
    check_per_gpu(1, [None])
    check_per_gpu(4, ["0", "1"])


def test_a_child_gets_its_memory_share():
    jax = child_env("0", "jax", share_env(4, "jax", None))
    assert jax["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.225" and jax["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert jax["CUDA_VISIBLE_DEVICES"] == "0"
    tf = child_env("1", "tensorflow", share_env(4, "tensorflow", 80_000.0))
    assert tf[TF_MEMORY_ENV] == "18000" and "TF_FORCE_GPU_ALLOW_GROWTH" not in tf  # TF refuses both at once
    # One per GPU, or auto: no fixed share (allocation grows on demand, as without --per-gpu).
    for per_gpu in (1, None):
        env = child_env("0", "jax", share_env(per_gpu, "jax", 80_000.0))
        assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in env and env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert share_env(4, "tensorflow", None) == {}  # total unknown (no nvidia-smi): no limit rather than a wrong one


@pytest.mark.parametrize(("running", "settled", "used", "total", "admitted"), [
    (0, 0, None, None, True),          # an idle GPU always takes one
    (1, 0, 500.0, 80_000.0, False),    # the running one has not trained yet: its memory is not known
    (1, 1, 2_000.0, 80_000.0, True),   # plenty of room
    (3, 3, 60_000.0, 80_000.0, False), # 20 GB each, 20 GB free: not with the margin
    (3, 3, 45_000.0, 80_000.0, True),  # 15 GB each, 35 GB free
    (2, 2, None, None, False),         # no reading: admit nothing more
    (AUTO_MAX, AUTO_MAX, 100.0, 80_000.0, False),
])
def test_auto_admits_another_run_while_measured_memory_leaves_room(running, settled, used, total, admitted):
    assert admit_another(running, settled, used, total) is admitted
