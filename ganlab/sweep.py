"""Sweeps: lists of values expanded to every combination, validated, and named.

A sweep is one or more :class:`Grid` blocks. Each block lists candidate
values per axis (plugin names, hyperparameters, seeds); its experiments are
the cartesian product. Every point is resolved by
:class:`ganlab.config.Resolver`, so a sweep is refused as a whole, before
anything is queued, if any of its points is invalid.

Sweep files are TOML (see ``docs/queue.md``)::

    name = "lr-study"              # base of the generated names (optional)
    priority = 0                   # optional
    tags = ["lr"]                  # optional
    seeds = [0, 1, 2]              # optional: repeat every experiment per seed

    [set]                          # optional: settings for every block below
    steps = 2000

    [grid]                         # every combination of the lists
    arch = "dcgan"
    loss = ["hinge", "wgan-gp"]
    augment = ["none", "diffaugment"]   # optional, like loss
    set = { lr_g = [1e-4, 2e-4] }

    [[experiments]]                # explicit experiments (lists expand too)
    name = "mlp-baseline"
    arch = "mlp"
    set = { lr_g = 1e-4 }
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganlab.config import DEFAULT_AUGMENT, ExperimentConfig, Resolver
from ganlab.errors import ConfigError, GanlabError
from ganlab.gcpause import cyclic_gc_paused
from ganlab.limits import DEFAULT_MAX_EXPERIMENTS, MAX_PRIORITY, MAX_SWEEP_FILE_BYTES, MIN_PRIORITY
from ganlab.names import check_name, slugify
from ganlab.params import suggest
from ganlab.search.distributions import Distribution, looks_like_distribution, parse_distribution

DEFAULT_ARCH = "dcgan"
DEFAULT_DATASET = "digits"
DEFAULT_LOSS = "non-saturating"
# Axes that are not ``--set`` keys; they are passed to the Resolver as its first arguments.
PLUGIN_AXES = ("arch", "dataset", "loss", "augment")

Scalar = str | int | float | bool


@dataclass(frozen=True)
class Grid:
    """One block of a sweep: every combination of its axes.

    ``sets`` maps a ``--set`` key (bare or ``section.``-prefixed) to its
    candidate values; ``seeds`` (if given) repeats every combination per seed.
    """

    archs: tuple[str, ...] = (DEFAULT_ARCH,)
    datasets: tuple[str, ...] = (DEFAULT_DATASET,)
    losses: tuple[str, ...] = (DEFAULT_LOSS,)
    augments: tuple[str, ...] = (DEFAULT_AUGMENT,)
    sets: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    seeds: tuple[int, ...] | None = None
    name: str | None = None
    priority: int = 0
    tags: tuple[str, ...] = ()

    def axes(self) -> dict[str, tuple[Any, ...]]:
        """Every axis in expansion order: plugins, then settings, then seed."""
        out: dict[str, tuple[Any, ...]] = {"arch": self.archs, "dataset": self.datasets, "loss": self.losses,
                                           "augment": self.augments}
        out.update(self.sets)
        if self.seeds is not None:
            out["train.seed"] = self.seeds
        return out

    def size(self) -> int:
        """How many experiments the block expands to (the product of its axes' lengths)."""
        return math.prod(len(values) for values in self.axes().values())


@dataclass(frozen=True)
class Planned:
    """One experiment of an expanded sweep, resolved and named, not yet stored."""

    config: ExperimentConfig
    name: str
    priority: int
    tags: tuple[str, ...]
    point: Mapping[str, Any]  # this experiment's value on each axis that varies in its block


# ------------------------------------------------------------ command-line lists


def split_list(option: str, value: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``; refuses empty items (a stray comma is a typo, not a value)."""
    items = tuple(part.strip() for part in value.split(","))
    if any(not item for item in items):
        raise ConfigError(f"{option} {value!r} has an empty item; separate values with single commas, e.g. a,b")
    return items


def parse_set(item: str) -> tuple[str, str]:
    """``"key=value"`` -> ``(key, value)``; ConfigError for anything else."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key or not value.strip() or any(c.isspace() for c in key):
        raise ConfigError(f"--set {item!r} is not key=value; write e.g. --set lr_g=2e-4 (lists: --set lr_g=1e-4,2e-4)")
    return key, value.strip()


#: Settings whose value is itself a comma list (``train.metrics=fd,kid,pr``): one value, never a sweep axis.
WHOLE_VALUE_KEYS = frozenset({"metrics", "train.metrics"})


def parse_sets(items: Iterable[str], *, lists: bool) -> dict[str, tuple[str, ...]]:
    """Parse repeated ``--set`` options; with ``lists``, ``a,b`` is two values of a sweep axis.

    Except for :data:`WHOLE_VALUE_KEYS`, whose commas separate the items of one value.
    """
    out: dict[str, tuple[str, ...]] = {}
    for item in items:
        key, value = parse_set(item)
        if key in out:
            raise ConfigError(
                f"--set {key} is given twice; give it once (for a sweep, list the values: --set {key}=a,b)"
            )
        if lists and looks_like_distribution(value):
            # Before the comma split: log(1e-5,1e-3) is one value, a range for --search random|tpe.
            out[key] = (parse_distribution(key, value),)
        else:
            out[key] = split_list(f"--set {key}=", value) if lists and key not in WHOLE_VALUE_KEYS else (value,)
    return out


def sampled_axes(grids: Sequence[Grid]) -> list[str]:
    """The ``--set`` keys given as a distribution in any block (only a search can sample them)."""
    return [k for grid in grids for k, values in grid.sets.items() if any(isinstance(v, Distribution) for v in values)]


def reject_distributions(grids: Sequence[Grid]) -> None:
    """ConfigError if a grid holds a distribution: a grid lists its values, only a search samples."""
    keys = sampled_axes(grids)
    if keys:
        raise ConfigError(f"--set {keys[0]} is a distribution, which a grid cannot expand; sample it with "
                          f"--search random or --search tpe (a grid takes a comma list, e.g. {keys[0]}=a,b)")


def parse_seeds(value: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)``."""
    seeds = []
    for item in split_list("--seeds", value):
        try:
            seeds.append(int(item))
        except ValueError:
            raise ConfigError(f"--seeds {value!r}: {item!r} is not an integer; write e.g. --seeds 0,1,2") from None
    return tuple(seeds)


# ------------------------------------------------------------------- expansion


def points(grid: Grid) -> Iterator[dict[str, Any]]:
    """Every combination of ``grid``'s axes, as ``axis -> value``."""
    axes = grid.axes()
    keys = list(axes)
    for combo in itertools.product(*(axes[k] for k in keys)):
        yield dict(zip(keys, combo))


def check_sweep_size(grids: Sequence[Grid], limit: int = DEFAULT_MAX_EXPERIMENTS) -> int:
    """The number of experiments ``grids`` expand to; ConfigError past ``limit``, counted without expanding."""
    total = sum(grid.size() for grid in grids)
    if total > limit:
        biggest = max(grids, key=Grid.size)
        axes = " x ".join(f"{len(v)} {k.rpartition('.')[2]}" for k, v in biggest.axes().items() if len(v) > 1)
        raise ConfigError(
            f"this sweep is {total:,} experiments{f' ({axes})' if axes else ''}, more than the limit of {limit:,}; "
            "queue it in parts, or raise the limit with --max-experiments N"
        )
    return total


def expand(resolver: Resolver, grids: Sequence[Grid], *, max_experiments: int = DEFAULT_MAX_EXPERIMENTS) -> list[Planned]:
    """Resolve every point of every block, in order; the first invalid point raises (naming it).

    A sweep larger than ``max_experiments`` is refused before any point is built.
    """
    reject_distributions(grids)
    check_sweep_size(grids, max_experiments)
    with cyclic_gc_paused():
        return _expand(resolver, grids)


def _expand(resolver: Resolver, grids: Sequence[Grid]) -> list[Planned]:
    resolved: list[tuple[ExperimentConfig, str, Grid, dict[str, Any]]] = []
    for grid in grids:
        if grid.seeds is not None and {"seed", "train.seed"} & set(grid.sets):
            raise ConfigError("the seed is given twice, as seeds (--seeds) and as a seed setting; keep one")
        axes = grid.axes()
        varying = [k for k, values in axes.items() if len(values) > 1]
        many = grid.size() > 1 or len(grids) > 1
        for point in points(grid):
            sets = {k: v for k, v in point.items() if k not in PLUGIN_AXES}
            try:
                config = resolver.resolve(point["arch"], point["dataset"], point["loss"], sets, point["augment"])
            except GanlabError as exc:
                if not many:
                    raise
                where = ", ".join(f"{k}={_fmt(v)}" for k, v in point.items() if k in varying or k in PLUGIN_AXES
                                  and (k != "augment" or v != DEFAULT_AUGMENT))
                raise type(exc)(f"{exc} (in sweep point {where})") from None
            label = {k: point[k] for k in varying}
            resolved.append((config, experiment_name(config, label, grid.name), grid, label))
    # Equal names come from equal configs in different blocks, or from values that differ only in
    # characters a name cannot hold (path=/a/b, path=/a_b); number them apart.
    seen: dict[str, int] = {}
    planned = []
    for config, name, grid, label in resolved:
        count = seen[name] = seen.get(name, 0) + 1
        numbered = name if count == 1 else slugify(f"{name}-{count}")
        planned.append(Planned(config, numbered, grid.priority, grid.tags, label))
    return planned


def experiment_name(config: ExperimentConfig, varying: Mapping[str, Any], base: str | None) -> str:
    """Readable name: the base (or ``arch-dataset-loss``) then each varying setting as ``key=value``.

    Values become part of a directory name, so the result is a slug
    (:func:`ganlab.names.slugify`): ``path=/data/faces`` reads ``path=_data_faces``.
    """
    plugins = [config.architecture, config.dataset, config.loss]
    if config.augmentation != DEFAULT_AUGMENT:
        plugins.append(config.augmentation)
    if base:
        parts = [base] + [point_value for key, point_value in varying.items() if key in PLUGIN_AXES]
    else:
        parts = plugins
    parts += [f"{key.rpartition('.')[2]}={_fmt(v)}" for key, v in varying.items() if key not in PLUGIN_AXES]
    return slugify("-".join(str(p) for p in parts))


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ------------------------------------------------------------------ sweep files

_TOP_KEYS = ("name", "priority", "tags", "seeds", "set", "grid", "experiments", "search")
SEARCH_KEYS = ("sampler", "trials", "objective", "prune", "study")
_BLOCK_KEYS = ("name", "priority", "tags", "seeds", "arch", "dataset", "loss", "augment", "set")


def load_sweep_file(path: str | Path) -> list[Grid]:
    """Read a TOML sweep file into blocks: the ``[grid]`` then each ``[[experiments]]`` entry."""
    return load_sweep(path)[0]


def load_sweep(path: str | Path) -> tuple[list[Grid], dict[str, Any]]:
    """The file's blocks and its ``[search]`` table (keys of :data:`SEARCH_KEYS`, checked for shape only)."""
    path = Path(path)
    try:
        # Read at most one byte past the limit: st_size says nothing for /dev/zero or a pipe.
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SWEEP_FILE_BYTES + 1)
        if len(raw) > MAX_SWEEP_FILE_BYTES:
            raise ConfigError(
                f"sweep file {path} is more than {MAX_SWEEP_FILE_BYTES // 10**6} MB; "
                "describe large sweeps with lists in [grid] rather than one [[experiments]] entry each"
            )
        data = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"sweep file {str(path)!r} does not exist; check the path given to -f") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"sweep file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read sweep file {path}: {exc.strerror}") from None
    except ValueError as exc:  # a NUL in the path
        raise ConfigError(f"cannot read sweep file {str(path)!r}: {exc}") from None
    where = str(path)
    _check_keys(data, _TOP_KEYS, where)
    defaults = {
        "name": _opt_name(data, where),
        "priority": _priority(data, where, 0),
        "tags": _str_list(data.get("tags", []), f"{where}: tags"),
        "seeds": _seeds(data.get("seeds"), f"{where}: seeds"),
        "set": _sets(data.get("set", {}), f"{where}: [set]"),
    }
    blocks: list[tuple[str, Mapping[str, Any]]] = []
    if "grid" in data:
        if not isinstance(data["grid"], dict):
            raise ConfigError(f"{where}: grid must be a table ([grid]), got {_kind(data['grid'])}")
        blocks.append((f"{where} [grid]", data["grid"]))
    experiments = data.get("experiments", [])
    if not isinstance(experiments, list) or not all(isinstance(e, dict) for e in experiments):
        raise ConfigError(f"{where}: experiments must be an array of tables ([[experiments]])")
    blocks += [(f"{where} [[experiments]] #{i + 1}", e) for i, e in enumerate(experiments)]
    if not blocks:
        raise ConfigError(f"sweep file {where} has no [grid] and no [[experiments]]; nothing to queue")
    return [_block(block, label, defaults) for label, block in blocks], _search_table(data.get("search", {}), where)


def _search_table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: search must be a table ([search]), got {_kind(value)}")
    _check_keys(value, SEARCH_KEYS, f"{where} [search]")
    for key, v in value.items():
        wanted = int if key == "trials" else str
        if not isinstance(v, wanted) or isinstance(v, bool):
            raise ConfigError(f"{where} [search]: {key} must be {'an integer' if wanted is int else 'a string'}, "
                              f"got {v!r}")
    return dict(value)


def _block(block: Mapping[str, Any], where: str, defaults: Mapping[str, Any]) -> Grid:
    _check_keys(block, _BLOCK_KEYS, where)
    sets = dict(defaults["set"])
    sets.update(_sets(block.get("set", {}), f"{where}: set"))
    seeds = _seeds(block.get("seeds"), f"{where}: seeds") if "seeds" in block else defaults["seeds"]
    name = _opt_name(block, where) or defaults["name"]
    return Grid(
        archs=_names(block.get("arch", DEFAULT_ARCH), f"{where}: arch"),
        datasets=_names(block.get("dataset", DEFAULT_DATASET), f"{where}: dataset"),
        losses=_names(block.get("loss", DEFAULT_LOSS), f"{where}: loss"),
        augments=_names(block.get("augment", DEFAULT_AUGMENT), f"{where}: augment"),
        sets=sets,
        seeds=seeds,
        name=name,
        priority=_priority(block, where, defaults["priority"]),
        tags=tuple(dict.fromkeys(defaults["tags"] + _str_list(block.get("tags", []), f"{where}: tags"))),
    )


def _check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}{suggest(key, allowed)} (allowed: {', '.join(allowed)})")


def _kind(value: Any) -> str:
    return type(value).__name__


def _opt_name(table: Mapping[str, Any], where: str) -> str | None:
    """A name the user typed in the file: refused, not rewritten, when it is not a valid name."""
    value = _opt_str(table, "name", where)
    return None if value is None else check_name(value, what=f"{where}: name")


def _opt_str(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{where}: {key} must be a non-empty string, got {value!r}")
    return value


def _priority(table: Mapping[str, Any], where: str, default: int) -> int:
    value = table.get("priority", default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{where}: priority must be an integer, got {value!r}")
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise ConfigError(f"{where}: priority {value} is out of range; use {MIN_PRIORITY} to {MAX_PRIORITY}")
    return value


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a string or a list of strings, got {value!r}")
    return tuple(value)


def _names(value: Any, where: str) -> tuple[str, ...]:
    names = _str_list(value, where)
    if not names:
        raise ConfigError(f"{where} is an empty list; give at least one name")
    return names


def _seeds(value: Any, where: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{where} must be an integer or a non-empty list of integers, got {value!r}")
    return tuple(value)


def _sets(value: Any, where: str) -> dict[str, tuple[Scalar, ...]]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of key = value, got {_kind(value)}")
    out: dict[str, tuple[Scalar, ...]] = {}
    for key, v in value.items():
        if isinstance(v, dict):
            # TOML reads `loss.gp_weight = 10` (unquoted) as a nested table; accept it as the prefixed key.
            for sub, sv in _sets(v, where).items():
                out[f"{key}.{sub}"] = sv
            continue
        if looks_like_distribution(v):
            out[key] = (parse_distribution(key, v),)
            continue
        values = v if isinstance(v, list) else [v]
        if not values or not all(isinstance(x, (str, int, float, bool)) for x in values):
            raise ConfigError(f"{where}: {key} must be a value or a non-empty list of values, got {v!r}")
        out[key] = tuple(values)
    return out


__all__ = [
    "DEFAULT_ARCH", "DEFAULT_DATASET", "DEFAULT_LOSS", "Grid", "Planned", "check_sweep_size", "expand", "experiment_name",
    "load_sweep", "load_sweep_file", "parse_seeds", "parse_set", "parse_sets", "points", "reject_distributions", "sampled_axes",
    "split_list",
]
