"""Declared hyperparameters: coercion from the command line and the one-line errors."""

import pytest

from ganlab.errors import ConfigError
from ganlab.params import Param, resolve_params

DECLARED = (
    Param("units", int, 64, "hidden units", low=8, high=1024),
    Param("dropout", float, 0.3, "dropout rate", low=0.0, high=0.9),
    Param("norm", str, "batch", "normalisation", choices=("batch", "layer", "none")),
    Param("bias", bool, True, "use biases"),
    Param("path", str, None, "folder of images", required=True),
)


def test_defaults_are_filled_and_strings_coerced():
    got = resolve_params(DECLARED, {"units": "128", "dropout": "0.5", "bias": "off", "path": "/x"}, "architecture 'a'")
    assert got == {"units": 128, "dropout": 0.5, "norm": "batch", "bias": False, "path": "/x"}
    assert resolve_params(DECLARED, {"units": "1e2", "path": "p"}, "a")["units"] == 100


@pytest.mark.parametrize(
    "given, message",
    [
        ({"unit": 3, "path": "p"}, "architecture 'a' has no hyperparameter 'unit'; did you mean 'units'?"),
        ({"units": "many", "path": "p"}, "architecture 'a': units='many' is not a valid int"),
        ({"units": 2.5, "path": "p"}, "architecture 'a': units=2.5 is not a valid int"),
        ({"units": 4, "path": "p"}, "architecture 'a': units=4 is out of range; allowed [8, 1024]"),
        ({"dropout": "nan", "path": "p"}, "architecture 'a': dropout='nan' must be a finite number"),
        ({"norm": "group", "path": "p"}, "architecture 'a': norm='group' is not allowed; use one of batch, layer, none"),
        ({"bias": "maybe", "path": "p"}, "architecture 'a': bias='maybe' is not a valid bool"),
        ({}, "architecture 'a' needs path: folder of images"),
    ],
)
def test_bad_values_are_one_line_errors(given, message):
    with pytest.raises(ConfigError) as info:
        resolve_params(DECLARED, given, "architecture 'a'")
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_path_params_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    declared = (Param("path", str, None, "data", required=True, is_path=True),)
    assert resolve_params(declared, {"path": "data/x.npz"}, "dataset 'npz'") == {"path": str(tmp_path / "data/x.npz")}
