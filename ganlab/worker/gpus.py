"""Which GPUs a worker schedules on: parsed from ``--gpus`` or discovered."""

from __future__ import annotations

import os
import shutil
import subprocess

from ganlab.errors import ConfigError


def visible_gpus() -> list[str]:
    """GPU ids this process may use, without importing a framework.

    ``CUDA_VISIBLE_DEVICES`` wins when set (it is what the user or a cluster
    scheduler handed us); otherwise ``nvidia-smi -L`` is asked. No NVIDIA
    driver means no GPUs.
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [g.strip() for g in env.split(",") if g.strip()]
        return [g for g in ids if g != "-1"]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def parse_gpus(spec: str) -> list[str | None]:
    """Turn ``auto``, ``none`` or ``0,1`` into worker slots; ``None`` is the CPU slot.

    With no GPU (``none``, or ``auto`` on a machine without one) the worker
    runs one experiment at a time on the CPU.
    """
    text = spec.strip().lower()
    if text == "none":
        return [None]
    if text == "auto":
        return list(visible_gpus()) or [None]
    ids = [g.strip() for g in text.split(",")]
    if not ids or any(not g.isdigit() for g in ids):
        raise ConfigError(f"--gpus {spec!r} is not valid; use auto, none, or GPU ids like 0,1")
    if len(set(ids)) != len(ids):
        raise ConfigError(f"--gpus {spec!r} names a GPU twice; list each id once")
    # A child is pinned with CUDA_VISIBLE_DEVICES=<id>: an id this process cannot see would
    # either train on the CPU in silence or take a GPU a cluster scheduler gave to someone else.
    visible = visible_gpus()
    unknown = [g for g in ids if g not in visible]
    if unknown:
        shown = ",".join(visible) if visible else "none"
        raise ConfigError(f"--gpus {spec!r}: GPU {unknown[0]} is not visible to this worker (visible: {shown}); "
                          "use --gpus auto, none, or ids from that list")
    return list(ids)
