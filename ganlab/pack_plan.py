"""``queue add --pack K``: which planned experiments form packs, checked before anything is stored.

A pack is K experiments that differ only in their seed, trained by one
worker child in one compiled JAX step (:mod:`ganlab.training.pack_trainer`).
The seeds of ``--seeds`` are cut into consecutive groups of K, each group
sharing a fresh ``pack_key``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from ganlab.errors import ConfigError
from ganlab.sweep import Grid, Planned


def check_pack(pack: int, grid: Grid | None, planned: Sequence[Planned]) -> None:
    """ConfigError, naming the fix, unless ``--pack`` can cut ``grid``'s experiments into packs.

    ``grid`` is None when the experiments come from a sweep file (not packable).
    """
    if grid is None:
        raise ConfigError("--pack cannot be combined with -f; queue each packed sweep with --seeds and --pack")
    seeds = grid.seeds or ()
    if len(seeds) < 2:
        raise ConfigError(f"--pack {pack} needs at least two seeds to pack; give them with --seeds, e.g. --seeds 0,1,2,3")
    if pack < 2:
        raise ConfigError(f"--pack {pack}: a pack holds at least 2 seeds; drop --pack to train them one by one")
    if pack > len(seeds) or len(seeds) % pack:
        raise ConfigError(f"--pack {pack} does not divide the {len(seeds)} seeds of --seeds into equal packs; "
                          f"use a --pack that divides {len(seeds)}")
    varying = [axis for axis, values in grid.axes().items() if axis != "train.seed" and len(values) > 1]
    if varying:
        raise ConfigError(f"--pack packs seeds only, but {varying[0]} varies too; queue one packed sweep per "
                          f"{varying[0]} value")
    backends = {str(p.config.train.get("backend")) for p in planned}
    if backends != {"jax"}:
        raise ConfigError("--pack needs --backend jax: packed seeds train in one compiled JAX step "
                          "(on TensorFlow, drop --pack and the seeds train one by one)")


def pack_keys(planned: Sequence[Planned], pack: int) -> list[str]:
    """One key per planned experiment: consecutive groups of ``pack`` share one."""
    keys: list[str] = []
    for start in range(0, len(planned), pack):
        key = uuid.uuid4().hex
        keys += [key] * len(planned[start:start + pack])
    return keys
