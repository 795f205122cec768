"""How much time and memory a piece of work took, with what this platform can report."""

from __future__ import annotations

import resource
import sys
from typing import Any


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def device_peak_mb(backend: str) -> float | None:
    """Peak accelerator memory in MiB on the first GPU, or None on a CPU-only machine."""
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform == "cpu":
                return None
            stats: dict[str, Any] = device.memory_stats() or {}
            peak = stats.get("peak_bytes_in_use")
            return peak / (1 << 20) if peak is not None else None
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            return None
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / (1 << 20)
    except (ImportError, RuntimeError, ValueError, KeyError):
        return None


__all__ = ["device_peak_mb", "peak_rss_mb"]
