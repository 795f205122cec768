"""Several experiments on one GPU (``ganlab worker --per-gpu K|auto``): how many, and how much memory each gets.

A DCGAN-class model on 32x32 images uses a small part of a modern GPU; up to
K children (each its own process, lease and fencing token, as always) share
one. Each child gets a memory share so that one cannot starve the others:
JAX's ``XLA_PYTHON_CLIENT_MEM_FRACTION`` and, on TensorFlow, a logical
device memory limit (applied by :func:`apply_tf_memory_limit` in the child).
With ``auto`` the worker admits another run on a GPU only while the memory
its running ones measurably use (nvidia-smi, once they train) leaves room for
one more; children then get no fixed fraction (allocation grows on demand).

On the CPU one run already uses every core: more than one is refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from ganlab.errors import ConfigError

#: Tells a TensorFlow child its memory share in MiB (read by apply_tf_memory_limit).
TF_MEMORY_ENV = "GANLAB_GPU_MEMORY_MB"
#: The part of a GPU's memory the shares add up to: the rest is the driver's and the CUDA contexts'.
USABLE = 0.9
#: ``auto`` never runs more than this many experiments on one GPU.
AUTO_MAX = 16
#: ``auto`` admits another run only if this much more than a running one's memory is free.
AUTO_MARGIN = 1.25


def parse_per_gpu(spec: str) -> int | None:
    """``--per-gpu``: a count from 1 to 64, or ``auto`` (None)."""
    text = spec.strip().lower()
    if text == "auto":
        return None
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise ConfigError(f"--per-gpu {spec!r} is not valid; use a count from 1 to 64, or auto")
    return int(text)


def check_per_gpu(per_gpu: int | None, slots: list[str | None]) -> None:
    """ConfigError for more than one run at a time on a worker without a GPU."""
    if per_gpu != 1 and all(slot is None for slot in slots):
        shown = "auto" if per_gpu is None else str(per_gpu)
        raise ConfigError(f"--per-gpu {shown} needs a GPU (this worker has none: --gpus none, or none visible); "
                          "on the CPU one run already uses every core. Drop --per-gpu, or pack seeds with "
                          "'queue add --pack K'")


def share_env(per_gpu: int | None, backend: str, total_mib: float | None) -> dict[str, str]:
    """What a child's environment adds so that it keeps to its share of the GPU (nothing for one per GPU)."""
    if per_gpu is None or per_gpu == 1:
        return {}
    if backend == "jax":
        return {"XLA_PYTHON_CLIENT_MEM_FRACTION": f"{USABLE / per_gpu:.3f}"}
    if total_mib:
        return {TF_MEMORY_ENV: str(int(total_mib * USABLE / per_gpu))}
    return {}


def admit_another(running: int, settled: int, used_mib: float | None, total_mib: float | None,
                  limit: int = AUTO_MAX) -> bool:
    """``auto``: may one more run start on a GPU where ``running`` runs are, ``settled`` of them training?

    ``used_mib``/``total_mib``: the GPU's memory in use and in all (nvidia-smi); None when unknown.
    Another run is admitted only once every running one trains (its memory is then known) and the
    free memory holds the average run's use with a margin.
    """
    if running == 0:
        return True
    if running >= limit or settled < running or used_mib is None or total_mib is None:
        return False
    return total_mib - used_mib >= AUTO_MARGIN * used_mib / running


def gpu_memory(gpu: str) -> tuple[float, float] | None:
    """``(used MiB, total MiB)`` of GPU ``gpu`` from nvidia-smi, or None."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "-i", gpu, "--query-gpu=memory.used,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=False).stdout
        used, total = (float(x) for x in out.strip().splitlines()[0].split(","))
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None
    return used, total


def apply_tf_memory_limit() -> None:
    """In a TensorFlow child: cap its GPU at the share the worker gave it (before TensorFlow uses the GPU)."""
    limit = os.environ.get(TF_MEMORY_ENV)
    if not limit:
        return
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        try:
            tf.config.set_logical_device_configuration(gpus[0], [tf.config.LogicalDeviceConfiguration(memory_limit=int(limit))])
        except RuntimeError:
            pass  # the GPU was already initialised in this process: the share cannot be set any more
