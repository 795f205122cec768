"""Checkpoint files: round trip, atomic replacement, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from ganlab.errors import ConfigError
from ganlab.training import checkpoint as ck


def test_round_trip_keeps_arrays_and_state(tmp_path):
    path = ck.checkpoint_path(tmp_path, "latest")
    arrays = {**ck.pack("g", [np.ones((2, 3), np.float32), np.array([7, 9], np.int64)]), "fixed/z": np.zeros((4, 2))}
    ck.save_checkpoint(path, arrays, {"step": 12, "metrics": {"fd": 1.5}})
    loaded, state = ck.load_checkpoint(path)
    assert state["step"] == 12 and state["metrics"] == {"fd": 1.5} and state["format"] == ck.FORMAT_VERSION
    assert loaded.keys() == arrays.keys()
    assert ck.unpack("g", loaded, [(2, 3), (2,)])[1].tolist() == [7, 9]
    assert [p.name for p in path.parent.iterdir()] == ["latest.npz"]  # no temp files left behind


def test_a_crash_mid_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = ck.checkpoint_path(tmp_path)
    ck.save_checkpoint(path, {"w/0000": np.zeros(3)}, {"step": 1})

    def dies_halfway(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(ck.np, "savez", dies_halfway)
    with pytest.raises(OSError, match="disk full"):
        ck.save_checkpoint(path, {"w/0000": np.ones(3)}, {"step": 2})
    monkeypatch.undo()
    arrays, state = ck.load_checkpoint(path)
    assert state["step"] == 1 and arrays["w/0000"].tolist() == [0, 0, 0]
    assert [p.name for p in path.parent.iterdir()] == ["latest.npz"]


def test_shape_and_count_mismatches_name_the_cause(tmp_path):
    arrays = ck.pack("generator", [np.zeros((2, 2)), np.zeros(3)])
    with pytest.raises(ConfigError, match="holds 2 generator variables but the model has 1"):
        ck.unpack("generator", arrays, [(2, 2)])
    with pytest.raises(ConfigError, match=r"generator/0001 has shape \(3,\) but the model expects \(4,\)"):
        ck.unpack("generator", arrays, [(2, 2), (4,)])
    with pytest.raises(ConfigError, match="no checkpoint at"):
        ck.load_checkpoint(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ck.CheckpointDamaged, match="junk.npz is damaged or incomplete"):
        ck.load_checkpoint(tmp_path / "junk.npz")


def test_all_finite_ignores_integers_and_catches_nan():
    assert ck.all_finite({"a": np.ones(2), "seed": np.array([3, 4])})
    assert not ck.all_finite({"a": np.array([1.0, np.inf])})


def test_arrays_keep_build_order_past_ten_thousand_and_in_both_key_forms():
    values = [np.full(1, i, np.float32) for i in range(10002)]
    named = ck.pack("g", values, [f"layer_{i}/kernel" for i in range(10002)])
    assert "g/0007/layer_7/kernel" in named and "g/10001/layer_10001/kernel" in named
    assert [int(v[0]) for v in ck.unpack("g", named, [(1,)] * 10002)] == list(range(10002))
    bare = ck.pack("g", values[:3])
    assert list(bare) == ["g/0000", "g/0001", "g/0002"]
    assert [int(v[0]) for v in ck.unpack("g", bare, [(1,)] * 3)] == [0, 1, 2]
    # A path with odd characters still makes a plain key.
    assert list(ck.pack("g", values[:1], ["sé q/x y"])) == ["g/0000/s__q/x_y"]


def test_a_model_gets_the_same_keys_in_every_process():
    # Dropout's seed generator is numbered per process (seed_generator_2 once a model was built
    # before): a checkpoint written by a pre-started worker must name it as a fresh process does.
    import keras

    def keys() -> list[str]:
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d"), keras.layers.Dropout(0.5)], name="disc")
        return list(ck.pack("discriminator", [np.zeros(1)] * len(model.variables), [v.path for v in model.variables]))

    first, second = keys(), keys()
    assert first == second
    assert "discriminator/0002/seed_generator/seed_generator_state" in first
