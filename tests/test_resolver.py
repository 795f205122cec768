"""The resolver's caches must never change what a config resolves to."""

from __future__ import annotations

import pytest

from ganlab.config import Resolver
from ganlab.errors import ConfigError
from ganlab.registry import load_plugins

REGISTRY = load_plugins(None)

# Values equal in Python (1 == 1.0 == True) but not to a Param: a cache keyed on values alone would mix them up.
SEQUENCE = [
    {"jit_compile": True},
    {"jit_compile": 1},
    {"steps": 5},
    {"steps": 5.0},
    {"steps": "5"},
    {"lr_g": 1},
    {"lr_g": True},
    {"train.seed": 3, "size": 16},
    {"seed": 3, "dataset.size": 16},
]


def _outcome(resolver: Resolver, sets: dict) -> object:
    try:
        return resolver.resolve("dcgan", "digits", "hinge", sets).to_json()
    except ConfigError as exc:
        return f"ConfigError: {exc}"


def test_cached_resolution_equals_fresh_resolution() -> None:
    shared = Resolver(REGISTRY)
    for sets in SEQUENCE + SEQUENCE[::-1]:
        assert _outcome(shared, sets) == _outcome(Resolver(REGISTRY), sets), sets


def test_configs_of_one_resolver_do_not_share_dicts() -> None:
    resolver = Resolver(REGISTRY)
    a = resolver.resolve("dcgan", "digits", "hinge", {"lr_g": 1e-4})
    b = resolver.resolve("dcgan", "digits", "hinge", {"lr_g": 1e-4})
    a.train["steps"] = 7
    a.arch_params["base_filters"] = 1
    assert b.train["steps"] == 1000 and b.arch_params != a.arch_params


def test_unknown_key_still_named_after_a_cached_success() -> None:
    resolver = Resolver(REGISTRY)
    resolver.resolve("dcgan", "digits", "hinge", {"lr_g": 1e-4})
    with pytest.raises(ConfigError, match="no such hyperparameter.*did you mean 'lr_g'"):
        resolver.resolve("dcgan", "digits", "hinge", {"lr_gg": 1e-4})
