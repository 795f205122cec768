"""Checking a metric plugin: its backbone builds, and its scores are finite and tell real images from noise."""

from __future__ import annotations

import math
import time

import numpy as np

from ganlab.errors import GanlabError
from ganlab.plugin_check.report import CheckFailed, Report
from ganlab.registry import Registry
from ganlab.specs import ImageData


def check_metric(registry: Registry, name: str, data: ImageData, n_samples: int, report: Report) -> None:
    """Fill ``report``; raise CheckFailed at the first problem.

    Scores held-out real images (the floor) and uniform noise against the
    real reference sample of ``data``, with the run's own machinery.
    """
    from ganlab.metrics.suite import MetricSuite

    spec = registry.metric(name)
    n = max(spec.min_samples, min(n_samples, len(data.images) // 2))
    started = time.perf_counter()
    try:
        suite = MetricSuite(data, [spec], n_real=n, seed=0)
        floor = suite.floor()
        noise = np.random.default_rng(0).uniform(-1, 1, (n, *data.images.shape[1:])).astype(np.float32)
        scores = suite.evaluate(noise)
    except GanlabError:
        raise
    except Exception as exc:  # noqa: BLE001 - the plugin's error, named in one line
        raise CheckFailed(f"metric {name!r} failed on {n} real and {n} noise images: {type(exc).__name__}: {exc}") from exc
    card = suite.cards()[name]
    report.facts["backbone"] = f"{card['backbone']} (weights {card['weights']}, resize: {card['resize']})"
    report.facts["samples"] = f"{len(suite.real_idx)} real, {len(suite.holdout_idx)} held out, {n} noise"
    report.facts["floor (real vs held-out real)"] = ", ".join(f"{k}={v:.4g}" for k, v in floor.items())
    report.facts["uniform noise"] = ", ".join(f"{k}={v:.4g}" for k, v in scores.items())
    report.facts["seconds"] = f"{time.perf_counter() - started:.2f} (backbone build, floor and one evaluation)"
    bad = [k for k, v in {**floor, **scores}.items() if not math.isfinite(v)]
    if bad:
        raise CheckFailed(f"metric {name!r}: {bad[0]} is not finite; scores must be finite numbers")
    same = [o for o in spec.outputs if floor[o] == scores[o]]
    if same:
        raise CheckFailed(f"metric {name!r}: {same[0]} is {floor[same[0]]:.4g} for held-out real images and for "
                          "uniform noise alike; it does not tell them apart")
