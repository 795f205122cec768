"""Whether a reduced-precision policy can run fast on the hardware a run got.

Keras accepts ``mixed_bfloat16`` and ``mixed_float16`` on any CPU, but a CPU
without 16-bit arithmetic instructions emulates them: on an AVX2-only AMD
EPYC the seed DCGAN's ``mixed_bfloat16`` step ran 12 times slower than its
float32 step (docs/performance.md). A run that silently takes twelve times
as long wastes a night, so the trainer says so when it starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

#: CPU flags (x86 ``flags``, Arm ``Features`` in /proc/cpuinfo) that give each 16-bit type native arithmetic.
#: ``avx_ne_convert`` marks the AVX2 cores (e.g. Sierra Forest) on which oneDNN runs both types natively.
NATIVE_FLAGS: dict[str, frozenset[str]] = {
    "mixed_bfloat16": frozenset({"avx512_bf16", "amx_bf16", "avx_ne_convert", "bf16"}),
    "mixed_float16": frozenset({"avx512_fp16", "amx_fp16", "avx_ne_convert", "fphp", "asimdhp"}),
}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str] | None:
    """The first CPU's feature flags, or None where the platform does not list them."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return None


def precision_warning(precision: str, on_accelerator: bool, flags: Iterable[str] | None) -> str | None:
    """One line warning that ``precision`` is emulated on this CPU, or None when it is not (or unknown)."""
    needed = NATIVE_FLAGS.get(precision)
    if needed is None or on_accelerator or flags is None:
        return None
    if needed & frozenset(flags):
        return None
    kind = precision.removeprefix("mixed_")
    return (
        f"precision {precision}: this CPU has no {kind} instructions, so Keras emulates them and training runs "
        "several times slower than float32 (12x on an AVX2-only CPU, docs/performance.md); "
        "use --precision float32 here, or train on a GPU"
    )


def on_accelerator(backend: str) -> bool:
    """Whether the Keras backend (already imported) computes on a GPU or TPU rather than the CPU."""
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))
