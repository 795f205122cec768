"""Plugins that ship with ganlab, loaded through the same path as any other."""

DEFAULT_PLUGINS: tuple[str, ...] = (
    "ganlab.builtin.architectures",
    "ganlab.builtin.datasets",
    "ganlab.builtin.losses",
    "ganlab.builtin.augmentations",
    "ganlab.builtin.metrics",
)
