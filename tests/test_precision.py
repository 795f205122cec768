"""Which CPUs run a 16-bit precision natively, read from /proc/cpuinfo's format."""

from __future__ import annotations

import pytest

from ganlab.training.precision import cpu_flags, precision_warning

ZEN2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 avx f16c fma avx2 sha_ni

processor\t: 1
flags\t\t: fpu sse sse2 avx f16c fma avx2 sha_ni
"""
SAPPHIRE_RAPIDS_FLAGS = "avx2 avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes fphp asimdhp bf16 i8mm sve\n"


def test_flags_are_read_from_x86_and_arm_cpuinfo(tmp_path):
    (tmp_path / "zen2").write_text(ZEN2)
    (tmp_path / "graviton").write_text(GRAVITON3)
    assert cpu_flags(tmp_path / "zen2") == frozenset("fpu sse sse2 avx f16c fma avx2 sha_ni".split())
    assert {"bf16", "asimdhp"} <= cpu_flags(tmp_path / "graviton")
    assert cpu_flags(tmp_path / "missing") is None  # not Linux: unknown, so never a warning
    (tmp_path / "odd").write_text("processor\t: 0\n")
    assert cpu_flags(tmp_path / "odd") is None


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_an_avx2_cpu_gets_a_warning_for_either_16_bit_type(tmp_path, precision):
    (tmp_path / "zen2").write_text(ZEN2)
    message = precision_warning(precision, on_accelerator=False, flags=cpu_flags(tmp_path / "zen2"))
    kind = precision.removeprefix("mixed_")
    assert message is not None and f"no {kind} instructions" in message and "\n" not in message


@pytest.mark.parametrize(
    ("precision", "flags"),
    [
        ("mixed_bfloat16", SAPPHIRE_RAPIDS_FLAGS.split()),
        ("mixed_float16", SAPPHIRE_RAPIDS_FLAGS.split()),
        ("mixed_bfloat16", ["avx2", "avx512_bf16"]),  # Zen 4: bfloat16 but no float16
        ("mixed_bfloat16", GRAVITON3.split(":")[-1].split()),
        ("mixed_float16", GRAVITON3.split(":")[-1].split()),
        ("float32", ["avx2"]),
    ],
)
def test_no_warning_where_the_cpu_has_the_instructions(precision, flags):
    assert precision_warning(precision, on_accelerator=False, flags=flags) is None


def test_zen4_has_bfloat16_but_not_float16():
    assert precision_warning("mixed_float16", on_accelerator=False, flags=["avx2", "avx512_bf16"]) is not None


def test_no_warning_on_a_gpu_or_when_the_cpu_is_unknown():
    assert precision_warning("mixed_bfloat16", on_accelerator=True, flags=["avx2"]) is None
    assert precision_warning("mixed_bfloat16", on_accelerator=False, flags=None) is None
