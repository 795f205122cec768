"""``ganlab plugins check``: run one plugin the way training will, and say what is wrong with it first.

An architecture is built for a dataset's shape and trained for a real step,
a loss is run on random logits, a dataset is loaded and described, an augmentation
is run and differentiated on random images. Each check
stops at the first problem with one line (:class:`CheckFailed`) and fills a
:class:`Report` with what it learned up to there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ganlab.config import Resolver
from ganlab.errors import PluginError
from ganlab.params import suggest
from ganlab.plugin_check.report import CheckFailed, ModelTable, Report
from ganlab.registry import Registry
from ganlab.sweep import DEFAULT_ARCH, DEFAULT_DATASET, DEFAULT_LOSS


def plugin_kind(registry: Registry, name: str, kind: str | None) -> str:
    """The kind of plugin ``name`` is (``kind`` when given); a one-line PluginError when unknown or ambiguous."""
    if kind is not None:
        registry.get(kind, name)
        return kind
    found = registry.find(name)
    if len(found) == 1:
        return found[0].kind
    if found:
        kinds = " and ".join(e.kind for e in found)
        raise PluginError(f"{name!r} is both {kinds}; say which with --kind {found[0].kind}")
    problem = registry.problem_for(name)
    if problem is not None:
        raise PluginError(problem.message)
    names = sorted({e.name for e in registry.entries()})
    raise PluginError(f"no plugin named {name!r}{suggest(name, names)} (run 'ganlab plugins' to list them)")


def run_check(
    registry: Registry,
    name: str,
    kind: str,
    *,
    dataset: str | None = None,
    loss: str | None = None,
    sets: Mapping[str, Any] | None = None,
    backend: str = "tensorflow",
    grid_path: str | None = None,
) -> Report:
    """Check plugin ``name`` of ``kind``; the report's ``problem`` holds the first problem found, if any.

    Bad arguments (unknown names, bad ``--set`` values) raise GanlabError instead: they are the user's, not the plugin's.
    """
    sets = {**(sets or {}), "train.backend": backend}
    report = Report(kind, name, backend if kind != "dataset" else None)
    if kind == "architecture":
        config = Resolver(registry).resolve(name, dataset or DEFAULT_DATASET, loss or DEFAULT_LOSS, sets)
        data = registry.dataset(config.dataset).load(config.dataset_params)
    elif kind == "augmentation":
        config = Resolver(registry, check_data=False).resolve(DEFAULT_ARCH, DEFAULT_DATASET, DEFAULT_LOSS, sets, name)
    elif kind == "metric":
        config = Resolver(registry).resolve(DEFAULT_ARCH, dataset or DEFAULT_DATASET, loss or DEFAULT_LOSS,
                                            {**sets, "train.metrics": name})
        data = registry.dataset(config.dataset).load(config.dataset_params)
    else:
        plugins = (DEFAULT_ARCH, name, DEFAULT_LOSS) if kind == "dataset" else (DEFAULT_ARCH, DEFAULT_DATASET, name)
        config = Resolver(registry, check_data=False).resolve(*plugins, sets)
    if kind != "dataset":
        from ganlab.training.backend import activate_backend

        activate_backend(backend)
    try:
        if kind == "architecture":
            from ganlab.plugin_check.architecture import check_architecture

            check_architecture(registry, config, data, report)
        elif kind == "augmentation":
            from ganlab.plugin_check.augmentation import check_augmentation

            check_augmentation(registry, name, config.augment_params, report)
        elif kind == "metric":
            from ganlab.plugin_check.metric import check_metric

            check_metric(registry, name, data, int(config.train["eval_samples"]), report)
        elif kind == "loss":
            from ganlab.plugin_check.loss import check_loss

            check_loss(registry, name, config.loss_params, report)
        else:
            from ganlab.plugin_check.dataset import check_dataset

            check_dataset(registry, name, config.dataset_params, report, grid_path)
    except CheckFailed as exc:
        report.problem = str(exc)
    return report


__all__ = ["CheckFailed", "ModelTable", "Report", "plugin_kind", "run_check"]
