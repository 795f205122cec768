"""Writing a benchmark's figures into its own section of docs/performance.md."""

from __future__ import annotations

import os
import platform
from pathlib import Path

PERFORMANCE_MD = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


def replace_section(heading: str, section: str, path: Path = PERFORMANCE_MD) -> Path:
    """Put ``section`` (which starts with ``## {heading}``) in place of the old one, or append it.

    Other benchmarks' sections are left as they are.
    """
    text = path.read_text() if path.exists() else "# Performance\n\n"
    start = text.find(f"## {heading}")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end != -1 else "")
    path.parent.mkdir(exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n")
    return path


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the architecture where that is not available."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def cpu_features() -> str:
    """The vector units and 16-bit arithmetic that decide training speed, e.g. "AVX2, no bfloat16/float16"."""
    from ganlab.training.precision import NATIVE_FLAGS, cpu_flags

    flags = cpu_flags()
    if flags is None:
        return platform.machine()
    widest = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("sve", "SVE"), ("asimd", "NEON"))
                   if flag in flags), "no wide vectors")
    native = [p.removeprefix("mixed_") for p, needed in NATIVE_FLAGS.items() if needed & flags]
    emulated = [p.removeprefix("mixed_") for p in NATIVE_FLAGS if p.removeprefix("mixed_") not in native]
    parts = [platform.machine(), widest]
    if native:
        parts.append(" and ".join(native) + " instructions")
    if emulated:
        parts.append("no " + "/".join(emulated) + " instructions")
    if "amx_tile" in flags:
        parts.append("AMX")
    return ", ".join(parts)


def machine_description() -> str:
    """Where the figures were measured, with the load at the start (this VM is shared)."""
    return (f"{os.cpu_count()}-core {cpu_model()} ({cpu_features()}, {platform.system()}), "
            f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the start (the VM is shared)")

