"""Batches: reproducible per-epoch order, exact resume, memory maps left mapped."""

from __future__ import annotations

import numpy as np

from ganlab.specs import ImageData
from ganlab.training.data import BatchStream


def _data(n: int = 10) -> ImageData:
    images = np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1) * np.ones((1, 2, 2, 1), np.uint8)
    return ImageData(images, labels=np.arange(n) % 3)


def test_each_epoch_is_a_fresh_permutation_fixed_by_the_seed():
    stream = BatchStream(_data(), batch_size=5, seed=7)
    epochs = [stream.indices(2).ravel() for _ in range(3)]
    for rows in epochs:
        assert sorted(rows) == list(range(10))
    assert not np.array_equal(epochs[0], epochs[1])
    again = BatchStream(_data(), batch_size=5, seed=7)
    assert np.array_equal(again.indices(2).ravel(), epochs[0])
    other = BatchStream(_data(), batch_size=5, seed=8)
    assert not np.array_equal(other.indices(2).ravel(), epochs[0])


def test_images_and_labels_follow_the_rows_and_stay_uint8():
    stream = BatchStream(_data(), batch_size=4, seed=0)
    rows = BatchStream(_data(), batch_size=4, seed=0).indices(3)
    images, labels = stream.next(3)
    assert images.shape == (3, 4, 2, 2, 1) and images.dtype == np.uint8
    assert np.array_equal(images[..., 0, 0, 0], rows)  # each image holds its row number
    assert np.array_equal(labels, rows % 3) and labels.dtype == np.int32


def test_batches_straddle_epochs_and_a_set_smaller_than_a_batch_works():
    stream = BatchStream(_data(3), batch_size=8, seed=1)
    rows = stream.indices(3).ravel()  # 24 positions = 8 epochs of 3
    for epoch in range(8):
        assert sorted(rows[3 * epoch: 3 * epoch + 3]) == [0, 1, 2]


def test_a_restored_stream_continues_exactly():
    whole = BatchStream(_data(), batch_size=3, seed=5)
    expected = [whole.next(2)[0] for _ in range(6)]
    first = BatchStream(_data(), batch_size=3, seed=5)
    head = [first.next(2)[0] for _ in range(4)]
    resumed = BatchStream(_data(), batch_size=3, seed=5, batches_taken=first.batches_taken)
    tail = [resumed.next(2)[0] for _ in range(2)]
    for got, want in zip(head + tail, expected):
        assert np.array_equal(got, want)


def test_a_memory_mapped_dataset_is_indexed_not_loaded(tmp_path):
    path = tmp_path / "images.u8"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(50, 4, 4, 1))
    mm[:] = np.arange(50, dtype=np.uint8)[:, None, None, None]
    mm.flush()
    data = ImageData(np.load(path, mmap_mode="r"))
    stream = BatchStream(data, batch_size=8, seed=0)
    images, labels = stream.next(1)
    assert isinstance(stream.images, np.memmap)  # the stream keeps the map, not a copy
    assert labels is None and type(images) is np.ndarray and images.shape == (1, 8, 4, 4, 1)
    rows = BatchStream(data, batch_size=8, seed=0).indices(1)
    assert np.array_equal(images[0, :, 0, 0, 0], rows[0])
