"""Batches of real images in a reproducible order, without copying the dataset.

The order is an endless sequence of per-epoch permutations, each drawn from
``(seed, epoch)`` alone. The only state is how many batches were taken, so a
resumed run sees exactly the batches the uninterrupted one would have seen,
and a batch may straddle two epochs (a dataset smaller than a batch works).
Images stay uint8 (and memory-mapped where the dataset is): each call fancy-
indexes one batch, and normalisation to ``[-1, 1]`` happens in the compiled
step, so the host never holds a float copy of the data.
"""

from __future__ import annotations

import numpy as np

from ganlab.specs import ImageData


class BatchStream:
    """Hands out ``(images uint8 (k, B, H, W, C), labels int32 (k, B) | None)`` per training step.

    Args:
        data: the dataset plugin's images (and labels).
        batch_size: images per batch ``B``.
        seed: the experiment seed; fixes every epoch's permutation.
        batches_taken: batches already consumed (restored from a checkpoint).
    """

    def __init__(self, data: ImageData, batch_size: int, seed: int, batches_taken: int = 0) -> None:
        self.images = data.images
        self.labels = data.labels
        self.batch_size = batch_size
        self.seed = seed
        self.batches_taken = batches_taken
        self._n = len(self.images)
        self._perms: dict[int, np.ndarray] = {}

    def _permutation(self, epoch: int) -> np.ndarray:
        perm = self._perms.get(epoch)
        if perm is None:
            perm = np.random.default_rng([self.seed, epoch]).permutation(self._n)
            # Keep only the epochs a batch can still touch: the current one and the next.
            self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
            self._perms[epoch] = perm
        return perm

    def indices(self, batches: int) -> np.ndarray:
        """Dataset rows of the next ``batches`` batches, shape ``(batches, B)``; advances the stream."""
        start = self.batches_taken * self.batch_size
        positions = np.arange(start, start + batches * self.batch_size)
        epochs, offsets = np.divmod(positions, self._n)
        rows = np.empty_like(positions)
        for epoch in np.unique(epochs):
            mask = epochs == epoch
            rows[mask] = self._permutation(int(epoch))[offsets[mask]]
        self.batches_taken += batches
        return rows.reshape(batches, self.batch_size)

    def next(self, batches: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
        """The next ``batches`` batches of uint8 images and their labels."""
        rows = self.indices(batches)
        flat = rows.ravel()
        # Sorted reads are sequential on a memmap; the permutation back restores the random order.
        order = np.argsort(flat, kind="stable")
        images = np.empty((flat.size, *self.images.shape[1:]), dtype=np.uint8)
        images[order] = self.images[flat[order]]
        images = images.reshape(batches, self.batch_size, *self.images.shape[1:])
        labels = None
        if self.labels is not None:
            labels = self.labels[rows].astype(np.int32, copy=False)
        return images, labels
